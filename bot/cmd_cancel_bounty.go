package bot

import "context"

func init() {
	register(Command{
		Name:  "cancel-bounty",
		Usage: "/cancel-bounty",
		Help:  "cancels this issue's bounty and refunds its sponsors",
		Who:   Maintainer,
		Where: IssuesOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, noArgs(c), Bounties.CancelBounty)
		},
	})
}
