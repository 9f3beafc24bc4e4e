package bot

import (
	"context"
	"strings"
)

// ApprovedLabel says a maintainer approved the change for merge.
const ApprovedLabel = "approved"

func init() {
	register(Command{
		Name:  "approve",
		Usage: "/approve (or /approve cancel)",
		Help:  "approves a pull request for merge with the " + ApprovedLabel + " label",
		Who:   Maintainer,
		Where: PullsOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			if strings.EqualFold(strings.TrimSpace(c.Inv.Args), "cancel") {
				if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, nil, []string{ApprovedLabel}); err != nil {
					return "", err
				}
				return "`approved` removed.", nil
			}
			if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, []string{ApprovedLabel}, nil); err != nil {
				return "", err
			}
			return "added `approved`.", nil
		},
	})
}
