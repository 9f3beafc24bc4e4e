package bot

import "context"

func init() {
	register(Command{
		Name:  "unlock",
		Usage: "/unlock [#ISSUE] (no issue: this one)",
		Help:  "releases the attempt lock on a bounty",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, refArg(c, c.Event.IsPR), Bounties.Unlock)
		},
	})
}
