package bot

import "context"

func init() {
	register(Command{
		Name:  "retry-payout",
		Usage: "/retry-payout",
		Help:  "sends this issue's or pull request's failed payouts again (Stripe refused them, e.g. before the account was fixed)",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, noArgs(c), Bounties.RetryPayout)
		},
	})
}
