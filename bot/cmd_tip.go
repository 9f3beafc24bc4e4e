package bot

import "context"

func init() {
	register(Command{
		Name:  "tip",
		Usage: "/tip $AMOUNT @user",
		Help:  "pays someone a tip, without a bounty",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				cents, rest, err := amountArg(c.Inv.Args)
				if err != nil {
					return err
				}
				users, err := ParseLogins(rest)
				if err != nil || len(users) != 1 {
					return Refusef("name one person to tip, like `/tip $20 @octocat`.")
				}
				r.Cents, r.Users = cents, users
				return nil
			}, Bounties.Tip)
		},
	})
}
