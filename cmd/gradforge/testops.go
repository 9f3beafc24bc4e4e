package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/testops"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var device, report, torchDevice string
		var verbose bool
		cmd := &cobra.Command{
			Use:   "testops",
			Short: "Run the parity suite against PyTorch and write a JSON report",
			Long: `testops runs every parity case on a framework device and compares outputs and
gradients with PyTorch, which runs in a python3 process that must be able to import torch
(set TESTOPS_PYTHON to pick the interpreter). TESTOPS_SEED replays a run's random inputs;
TESTOPS_FILTER=regex runs a subset. It exits non-zero when any case fails.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if device == "" {
					device = runtime.DefaultName()
				}
				if _, err := runtime.Get(device); err != nil {
					return err
				}
				if torchDevice == "" {
					torchDevice = "cpu"
					if strings.EqualFold(device, "CUDA") {
						torchDevice = "cuda"
					}
				}
				os.Setenv("DEVICE", device)
				cases, err := testops.Select(testops.Cases())
				if err != nil {
					return err
				}
				o, err := testops.StartOracle(torchDevice)
				if err != nil {
					return err
				}
				defer o.Close()
				seed := testops.Seed()
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "testops: %d cases on %s against torch %s (%s), TESTOPS_SEED=%d\n", len(cases), device, o.Version, o.Device, seed)
				rep := testops.Suite(o, device, seed, cases, func(r testops.Result) {
					if r.Status == "fail" || verbose {
						fmt.Fprintf(out, "%-4s %-50s %8.2fms %s\n", r.Status, r.Name, r.Ms, r.Error)
					}
				})
				if report != "" {
					if err := rep.WriteJSON(report); err != nil {
						return fmt.Errorf("write report: %w", err)
					}
				}
				fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", rep.Passed, rep.Failed, rep.Skip)
				if rep.Failed > 0 {
					return fmt.Errorf("%d parity case(s) failed; replay with TESTOPS_SEED=%d", rep.Failed, seed)
				}
				return nil
			},
		}
		cmd.Flags().StringVar(&device, "device", "", "framework device to test: CPU, CUDA or CL (default $DEVICE or CPU)")
		cmd.Flags().StringVar(&report, "json", "", "write the machine-readable report to this file")
		cmd.Flags().StringVar(&torchDevice, "torch-device", "", "device PyTorch computes on: cpu or cuda (default: cuda when testing CUDA)")
		cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every case, not only failures")
		return envHelp(cmd)
	})
}
