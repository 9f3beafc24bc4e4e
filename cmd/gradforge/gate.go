package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

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
		gate.AddCommand(gateLinesCmd())
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
			if err := writeJSON(g.jsonOut, rep); err != nil {
				return err
			}
			if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if rep.Over() {
				return fmt.Errorf("%w: %d core lines, budget %d", errGateFailed, rep.Head, rep.Budget)
			}
			return nil
		},
	}
	g.flags(cmd)
	cmd.Flags().IntVar(&budget, "budget", ci.DefaultBudget, "most core lines the head may have")
	return envHelp(cmd)
}
