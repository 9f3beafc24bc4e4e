package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gradforge/gradforge/framework/onnx"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "onnx",
			Short: "Run ONNX models and the ONNX node conformance suite on the framework",
		}
		cmd.AddCommand(onnxRunCmd(), onnxConformanceCmd())
		return cmd
	})
}

func onnxRunCmd() *cobra.Command {
	var inputs []string
	var device, fill string
	cmd := &cobra.Command{
		Use:   "run MODEL.onnx",
		Short: "Run a model on inputs from .npy or TensorProto .pb files and print its outputs",
		Long: "Inputs are given as --input name=file.npy (or file.pb, a serialized TensorProto).\n" +
			"Inputs not given are an error unless --fill arange|zeros makes them (unknown\n" +
			"dimensions are 1; arange is float32 arange(n)/n, as the light conformance models expect).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := onnx.LoadModel(args[0])
			if err != nil {
				return err
			}
			given := map[string]onnx.Value{}
			for _, kv := range inputs {
				name, file, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--input %q: want name=file", kv)
				}
				v, err := loadInputFile(file)
				if err != nil {
					return fmt.Errorf("--input %s: %w", name, err)
				}
				given[name] = v
			}
			feed, err := onnx.Feed(m, given, fill)
			if err != nil {
				return err
			}
			outs, err := onnx.Run(cmd.Context(), m, feed, onnx.RunOptions{Device: device})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for i, o := range outs {
				fmt.Fprintf(w, "%s: %s\n", m.Graph.Outputs[i].Name, onnx.Format(o, 20))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "graph input as name=file.npy or name=file.pb (repeatable)")
	cmd.Flags().StringVar(&device, "device", "", "framework device: CPU, CUDA or CL (default $DEVICE or CPU)")
	cmd.Flags().StringVar(&fill, "fill", "", "make inputs that were not given: arange or zeros")
	return envHelp(cmd)
}

func loadInputFile(path string) (onnx.Value, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".npy") {
		return onnx.DecodeNpy(b)
	}
	return onnx.DecodeTensor(b)
}

func onnxConformanceCmd() *cobra.Command {
	var device, run string
	var workers int
	var quiet, isolate, worker bool
	cmd := &cobra.Command{
		Use:   "conformance DIR",
		Short: "Run an ONNX node-suite folder (or its .tgz) and print pass/fail/skip per case, then `passed N/M`",
		Long: "Each case runs in a child process of this binary (--isolate, the default), so a case\n" +
			"that crashes the process (a fault in generated code) fails alone and the run goes on.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if worker {
				return caseWorker(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), onnx.SuiteOptions{Device: device})
			}
			dir := args[0]
			if strings.HasSuffix(dir, ".tgz") || strings.HasSuffix(dir, ".tar.gz") {
				tmp, err := os.MkdirTemp("", "gradforge-onnx-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				if err := onnx.UnpackSuite(dir, tmp); err != nil {
					return err
				}
				dir = tmp
			}
			if _, err := os.Stat(filepath.Join(dir, "node")); err == nil {
				dir = filepath.Join(dir, "node")
			}
			opt := onnx.SuiteOptions{Device: device, Workers: workers}
			if run != "" {
				opt.Filter = func(name string) bool { return strings.Contains(name, run) }
			}
			if isolate {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("isolate cases: %w", err)
				}
				p := &isolated{argv: []string{exe, "onnx", "conformance", "--worker", "--device", device, dir}}
				defer p.Close()
				opt.Run = p.Run
			}
			results, err := onnx.RunSuite(cmd.Context(), dir, opt)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, r := range results {
				printResult(w, r, quiet)
			}
			fmt.Fprint(w, onnx.Summary(results))
			return nil
		},
	}
	cmd.Flags().StringVar(&device, "device", "", "framework device: CPU, CUDA or CL (default $DEVICE or CPU)")
	cmd.Flags().StringVar(&run, "run", "", "only cases whose name contains this")
	cmd.Flags().IntVar(&workers, "workers", 0, "cases run in parallel (default GOMAXPROCS)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "print failures only, then the summary")
	cmd.Flags().BoolVar(&isolate, "isolate", true, "run cases in child processes, so a crashing case fails alone")
	cmd.Flags().BoolVar(&worker, "worker", false, "run the case folders named on stdin (the child side of --isolate)")
	cmd.Flags().MarkHidden("worker")
	return envHelp(cmd)
}

func printResult(w io.Writer, r onnx.Result, quiet bool) {
	if quiet && r.Status == onnx.Pass {
		return
	}
	line := fmt.Sprintf("%-4s %-60s %-22s %6.0fms", r.Status, r.Case, r.Op, float64(r.Duration.Microseconds())/1000)
	if r.Err != nil {
		msg := strings.ReplaceAll(r.Err.Error(), "\n", " ")
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		line += "  " + msg
	}
	fmt.Fprintln(w, line)
}
