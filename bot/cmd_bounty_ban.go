package bot

import "context"

func init() {
	register(Command{
		Name:  "bounty-ban",
		Usage: "/bounty-ban @user",
		Help:  "bars someone from attempting and claiming bounties in this repository",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, oneUser(c, "/bounty-ban @spammer"), Bounties.Ban)
		},
	})
}
