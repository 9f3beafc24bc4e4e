package bot

import "context"

func init() {
	register(Command{
		Name:  "split",
		Usage: "/split @user...",
		Help:  "shares this pull request's bounty equally with co-authors",
		Who:   Author,
		Where: PullsOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				users, err := ParseLogins(c.Inv.Args)
				if err != nil {
					return Refusef("%v", err)
				}
				r.Users = users
				return nil
			}, Bounties.Split)
		},
	})
}
