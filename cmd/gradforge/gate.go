package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gradforge/gradforge/ci"
	"github.com/spf13/cobra"
)

// errGateFailed makes the process exit non-zero after a gate printed its table.
var errGateFailed = errors.New("gate failed")

// gateRefs holds the flags every gate shares.
type gateRefs struct {
	repo, base, head, jsonOut string
}

func (g *gateRefs) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.repo, "repo", ".", "a folder inside the git repository to judge")
	cmd.Flags().StringVar(&g.base, "base", "", "base ref (default: the head's first parent)")
	cmd.Flags().StringVar(&g.head, "head", "HEAD", "head ref, or WORKTREE for the files on disk")
	cmd.Flags().StringVar(&g.jsonOut, "json", "", "also write the gate's result as JSON to this file")
}

// resolve turns the flags into commit SHAs; an empty base means the head's parent, or the
// empty tree for a root commit.
func (g *gateRefs) resolve(cmd *cobra.Command) (ci.Repo, string, string, error) {
	ctx := cmd.Context()
	repo := ci.Repo{Dir: g.repo}
	head := ci.Worktree
	if g.head != ci.Worktree {
		h, err := repo.Resolve(ctx, g.head)
		if err != nil {
			return repo, "", "", fmt.Errorf("--head: %w", err)
		}
		head = h
	}
	if g.base != "" {
		b, err := repo.Resolve(ctx, g.base)
		if err != nil {
			return repo, "", "", fmt.Errorf("--base: %w", err)
		}
		return repo, b, head, nil
	}
	if head == ci.Worktree {
		h, err := repo.Resolve(ctx, "HEAD")
		if err != nil {
			return repo, "", "", fmt.Errorf("working tree without a HEAD commit: %w", err)
		}
		return repo, h, head, nil // uncommitted work is judged against HEAD
	}
	p, err := repo.Parent(ctx, head)
	if err != nil {
		return repo, "", "", fmt.Errorf("parent of %s: %w", head, err)
	}
	return repo, p, head, nil
}

// gateResult is what every gate's report offers the command line.
type gateResult interface {
	WriteText(w io.Writer) error
	Title() string
	Conclusion() string
}

// emit saves the result as JSON when asked, prints the table, and turns a failed gate into a
// non-zero exit (neutral and success exit 0).
func (g *gateRefs) emit(cmd *cobra.Command, rep gateResult) error {
	if err := writeJSON(g.jsonOut, rep); err != nil {
		return err
	}
	if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
		return err
	}
	if rep.Conclusion() == ci.Failure {
		return fmt.Errorf("%w: %s", errGateFailed, rep.Title())
	}
	return nil
}

// writeJSON saves a gate result for the runner to upload.
func writeJSON(file string, v any) error {
	if file == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", file, err)
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func init() {
	register(func() *cobra.Command {
		gate := &cobra.Command{
			Use:   "gate lines|parity|speed",
			Short: "Run a CI gate locally on a git checkout and print its table",
			Long: `gate runs one of the pull-request gates on a git repository, comparing a base and a head
commit exactly as CI does, and prints the same table CI posts. It exits non-zero when the
gate fails.`,
		}
		gate.AddCommand(gateLinesCmd(), gateParityCmd(), gateSpeedCmd())
		return gate
	})
}

func gateLinesCmd() *cobra.Command {
	var g gateRefs
	var budget int
	cmd := &cobra.Command{
		Use:   "lines",
		Short: "Count the framework core's code lines at base and head against the budget",
		Long: `lines counts the non-blank, non-comment Go lines (with go/scanner) of every framework core
file — framework/ minus nn, optim, onnx, models, examples and _test.go files — at base and
head, read from git objects, and prints a per-file table with diffs. The last line is
"total N", the head's count. It fails when the head is over the budget.

CI judges a pull request with the gradforge built from the BASE branch, pointed at the
head commit, so a pull request cannot change the rule that judges it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, base, head, err := g.resolve(cmd)
			if err != nil {
				return err
			}
			rep, err := ci.Lines(cmd.Context(), repo, ci.Core{}, base, head, budget)
			if err != nil {
				return err
			}
			return g.emit(cmd, rep)
		},
	}
	g.flags(cmd)
	cmd.Flags().IntVar(&budget, "budget", ci.DefaultBudget, "most core lines the head may have")
	return envHelp(cmd)
}

func gateParityCmd() *cobra.Command {
	var g gateRefs
	var o ci.ParityOptions
	var report string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "parity",
		Short: "Build gradforge at head, run the testops parity suite, and print the table by op family",
		Long: `parity exports the head commit into a temporary folder, builds its gradforge, runs
"gradforge testops --json" there (PyTorch must be importable by python3), and prints the
summary by op family with every failing case, its errors and the command that replays it.
With --report it reads an existing testops report instead of running the suite. With
--compare-base the failing cases are replayed at base with the same seed: failures that
base has too make the gate neutral instead of failed (exit 0).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var rep *ci.ParityReport
			if report != "" {
				f, err := os.Open(report)
				if err != nil {
					return fmt.Errorf("--report: %w", err)
				}
				defer f.Close()
				if rep, err = ci.ReadParity(f); err != nil {
					return err
				}
				if g.head != "" && g.head != ci.Worktree {
					repo := ci.Repo{Dir: g.repo}
					if sha, err := repo.Resolve(ctx, g.head); err == nil {
						_ = rep.Locate(ctx, repo, sha) // annotations only; the table needs no repository
					}
				}
				if o.CompareBase {
					// This binary is the base's build (CI runs the base's gradforge), so its own
					// suite is the base suite.
					self, err := os.Executable()
					if err != nil {
						return fmt.Errorf("--compare-base: %w", err)
					}
					dir, err := os.MkdirTemp("", "gradforge-parity-base-")
					if err != nil {
						return err
					}
					defer os.RemoveAll(dir)
					if err := rep.ReplayAtBase(ctx, self, filepath.Join(dir, "base.json"), o); err != nil {
						return err
					}
				}
			} else {
				repo, base, head, err := g.resolve(cmd)
				if err != nil {
					return err
				}
				if !quiet {
					o.Log = cmd.ErrOrStderr()
				}
				if rep, err = ci.Parity(ctx, repo, base, head, o); err != nil {
					return err
				}
			}
			return g.emit(cmd, rep)
		},
	}
	g.flags(cmd)
	cmd.Flags().BoolVar(&o.CompareBase, "compare-base", false, "replay failing cases at base with the same seed to tell new failures from old (with --report: this binary's own suite is the base's)")
	cmd.Flags().StringVar(&o.Device, "device", "", "framework device for the suite: CPU, CUDA or CL")
	cmd.Flags().StringVar(&o.Filter, "filter", "", "run only cases matching this regexp (TESTOPS_FILTER)")
	cmd.Flags().StringVar(&o.Seed, "seed", "", "replay this seed (TESTOPS_SEED)")
	cmd.Flags().StringVar(&report, "report", "", "read this testops JSON report instead of running the suite")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show the suite's own output")
	return envHelp(cmd)
}

func gateSpeedCmd() *cobra.Command {
	var g gateRefs
	var o ci.SpeedOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "speed",
		Short: "Build base and head benchmarks here, run them interleaved, and judge each ratio",
		Long: `speed exports base and head into temporary folders, builds the test binaries of the
packages that hold benchmarks, runs them interleaved (base, head, base, head, …) for
--warmup unmeasured and --pairs measured rounds, and prints per benchmark the median times,
the ratio head/base, its confidence interval (Wilcoxon signed-rank on log ratios) and a
verdict: slower (the whole interval beyond --threshold: fails), inconclusive (neutral), ok,
or faster. Then process replay: the kernels printed under DEBUG=4 that differ.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, base, head, err := g.resolve(cmd)
			if err != nil {
				return err
			}
			o.Log = io.Discard
			if !quiet {
				o.Log = cmd.ErrOrStderr()
			}
			rep, err := ci.Speed(cmd.Context(), repo, base, head, o)
			if err != nil {
				return err
			}
			return g.emit(cmd, rep)
		},
	}
	g.flags(cmd)
	cmd.Flags().StringSliceVar(&o.Packages, "pkg", []string{"./framework/..."}, "packages whose benchmarks count")
	cmd.Flags().StringVar(&o.Bench, "bench", ".", "benchmarks to run (regexp, as go test -bench)")
	cmd.Flags().IntVar(&o.Pairs, "pairs", 10, "measured base/head pairs after warm-up (at least 6)")
	cmd.Flags().IntVar(&o.Warmup, "warmup", 1, "unmeasured pairs first")
	cmd.Flags().StringVar(&o.Benchtime, "benchtime", "100ms", "time or NNNx iterations per run (go test -benchtime)")
	cmd.Flags().Float64Var(&o.Threshold, "threshold", 0.05, "slowdown that fails, as a fraction")
	cmd.Flags().BoolVar(&o.NoReplay, "no-replay", false, "skip process replay")
	cmd.Flags().StringSliceVar(&o.Paths, "paths", []string{"framework", "go.mod", "go.sum"}, "run only when one of these changed between base and head")
	cmd.Flags().BoolVar(&o.Always, "always", false, "run the benchmarks even when nothing under --paths changed")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	return envHelp(cmd)
}
