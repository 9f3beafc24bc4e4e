package bot

import (
	"context"
	"strings"
)

// LGTMLabel says a reviewer looked and liked it.
const LGTMLabel = "lgtm"

func init() {
	register(Command{
		Name:  "lgtm",
		Usage: "/lgtm (or /lgtm cancel)",
		Help:  "marks a pull request as reviewed with the " + LGTMLabel + " label; not by its author",
		Who:   Trusted,
		Where: PullsOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			if strings.EqualFold(strings.TrimSpace(c.Inv.Args), "cancel") {
				if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, nil, []string{LGTMLabel}); err != nil {
					return "", err
				}
				return "`lgtm` removed.", nil
			}
			if c.Event.Author == c.Event.ThreadAuthor {
				return "", Refusef("you cannot `/lgtm` your own pull request; ask a reviewer.")
			}
			if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, []string{LGTMLabel}, nil); err != nil {
				return "", err
			}
			return "added `lgtm`.", nil
		},
	})
}
