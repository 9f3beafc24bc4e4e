package bot

import "context"

func init() {
	register(Command{
		Name:  "bounty",
		Usage: "/bounty $AMOUNT (USD, e.g. /bounty $1,000.50)",
		Help:  "puts a bounty on this issue, or adds to it",
		Who:   Maintainer,
		Where: IssuesOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				cents, err := ParseAmount(c.Inv.Args)
				if err != nil {
					return Refusef("%v", err)
				}
				r.Cents = cents
				return nil
			}, Bounties.Bounty)
		},
	})
}
