package bot

import "context"

func init() {
	register(Command{
		Name:  "bounty-unban",
		Usage: "/bounty-unban @user",
		Help:  "lifts a /bounty-ban, so the person may attempt and claim bounties again",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				users, err := ParseLogins(c.Inv.Args)
				if err != nil || len(users) != 1 {
					return Refusef("name one person, like `/bounty-unban @octocat`.")
				}
				r.Users = users
				return nil
			}, Bounties.Unban)
		},
	})
}
