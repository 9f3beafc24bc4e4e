package bot

import (
	"context"
	"strings"
)

// HoldLabel blocks merging while present.
const HoldLabel = "do-not-merge/hold"

func init() {
	register(Command{
		Name:  "hold",
		Usage: "/hold (or /hold cancel)",
		Help:  "blocks merging with the " + HoldLabel + " label",
		Who:   Trusted,
		Run: func(ctx context.Context, c *Call) (string, error) {
			if strings.EqualFold(strings.TrimSpace(c.Inv.Args), "cancel") {
				return unhold(ctx, c)
			}
			if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, []string{HoldLabel}, nil); err != nil {
				return "", err
			}
			return "on hold: `/unhold` releases it.", nil
		},
	})
}
