package bot

import "context"

func init() {
	register(Command{
		Name:  "bounty-ban",
		Usage: "/bounty-ban @user",
		Help:  "bars someone from attempting and claiming bounties in this repository",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				users, err := ParseLogins(c.Inv.Args)
				if err != nil || len(users) != 1 {
					return Refusef("name one person, like `/bounty-ban @spammer`.")
				}
				r.Users = users
				return nil
			}, Bounties.Ban)
		},
	})
}
