package bot

import "context"

func init() {
	register(Command{
		Name:  "bounty-unban",
		Usage: "/bounty-unban @user",
		Help:  "lifts a /bounty-ban, so the person may attempt and claim bounties again",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, oneUser(c, "/bounty-unban @octocat"), Bounties.Unban)
		},
	})
}
