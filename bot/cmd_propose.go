package bot

import (
	"context"
	"strings"
)

func init() {
	register(Command{
		Name:  "propose",
		Usage: "/propose $AMOUNT TITLE",
		Help:  "proposes a new bounty for maintainers to accept (for contributors who reached the proposer stage)",
		Who:   Anyone,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				cents, rest, err := amountArg(c.Inv.Args)
				if err != nil {
					return err
				}
				title := strings.TrimSpace(rest)
				if title == "" || len(title) > 200 {
					return Refusef("give the proposal a title of 1 to 200 characters, like `/propose $300 Fuse softmax backward`.")
				}
				r.Cents, r.Title = cents, title
				return nil
			}, Bounties.Propose)
		},
	})
}
