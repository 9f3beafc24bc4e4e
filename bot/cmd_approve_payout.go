package bot

import "context"

func init() {
	register(Command{
		Name:  "approve-payout",
		Usage: "/approve-payout",
		Help:  "approves paying the bounty claimed by this merged pull request (or on this issue)",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, noArgs(c), Bounties.ApprovePayout)
		},
	})
}
