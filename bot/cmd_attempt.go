package bot

import "context"

func init() {
	register(Command{
		Name:  "attempt",
		Usage: "/attempt [#ISSUE] (no issue: this one)",
		Help:  "locks a bounty for you while you work on it",
		Who:   Anyone,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, refArg(c, c.Event.IsPR), Bounties.Attempt)
		},
	})
}
