package bot

import (
	"context"
	"strings"
)

func init() {
	register(Command{
		Name:  "bounty",
		Usage: "/bounty $AMOUNT (USD, e.g. /bounty $1,000.50)",
		Help:  "puts a bounty on this issue, or adds to it",
		Who:   Maintainer,
		Where: IssuesOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				cents, rest, err := amountArg(c.Inv.Args)
				if err != nil {
					return err
				}
				if strings.TrimSpace(rest) != "" {
					return Refusef("`/bounty` takes only an amount, like `/bounty $250`.")
				}
				r.Cents = cents
				return nil
			}, Bounties.Bounty)
		},
	})
}
