package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gradforge/gradforge/framework/examples/bench"
	"github.com/gradforge/gradforge/framework/runtime"
)

func init() {
	register(func() *cobra.Command {
		var o bench.Options
		var jsonOut string
		c := &cobra.Command{
			Use:   "bench",
			Short: "Time the CUDA backend against PyTorch on this GPU (copy, fused product, sum, softmax, matmul)",
			Long: `bench runs each case through the framework and through hand-written kernels on the CUDA
runtime, and the same cases through PyTorch (--python) in the same run, then prints a markdown
table: median device time over --reps runs, GB/s or TFLOP/s, speed relative to PyTorch and the
share of the measured device-to-device copy bandwidth.`,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				d, err := runtime.Get("CUDA")
				if err != nil {
					return fmt.Errorf("bench needs a CUDA GPU: %w", err)
				}
				dev := d.(*runtime.CUDA)
				sz := bench.SizesFor(o.Small)
				start := time.Now()
				var rs []bench.Result
				header := fmt.Sprintf("card: %s; sizes: N=%d, softmax %d×%d, matmul %d³; median of %d runs", dev.Info(), sz.N, sz.Rows, sz.Rows, sz.MM, o.Reps)
				if o.Python != "" {
					name, ver, trs, err := bench.Torch(ctx, o)
					if err != nil {
						return err
					}
					header += fmt.Sprintf("; reference: PyTorch %s on %s", ver, name)
					rs = append(rs, trs...)
				}
				rs = append(rs, bench.Framework(dev, o, sz)...)
				rs = append(rs, bench.Runtime(dev, o, sz)...)
				rs = append(rs, bench.TrainStep(dev, o, sz), bench.TrainStepJIT(dev, o, sz))
				rs = bench.Order(rs)
				w := cmd.OutOrStdout()
				fmt.Fprintln(w, header)
				fmt.Fprintln(w)
				bench.Table(w, rs)
				fmt.Fprintf(w, "\n(%s)\n", time.Since(start).Round(time.Second))
				if jsonOut != "" {
					b, _ := json.MarshalIndent(map[string]any{"header": header, "results": rs}, "", "  ")
					if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
						return fmt.Errorf("write %s: %w", jsonOut, err)
					}
				}
				return nil
			},
		}
		c.Flags().BoolVar(&o.Small, "small", false, "small sizes, to check the harness quickly")
		c.Flags().IntVar(&o.Reps, "reps", 20, "timed runs per case; the median is reported")
		c.Flags().StringVar(&o.Python, "python", "python3", "Python with torch for the reference timings (\"\" skips them)")
		c.Flags().StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
		return c
	})
}
