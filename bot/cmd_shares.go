package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

func init() {
	register(Command{
		Name:  "shares",
		Usage: "/shares @user=WEIGHT... (e.g. /shares @a=60 @b=40)",
		Help:  "divides a won bounty's payout among its recipients by weight, before approval",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				shares, err := ParseShares(c.Inv.Args)
				if err != nil {
					return Refusef("%v; write it like `/shares @alice=60 @bob=40`.", err)
				}
				r.Shares = shares
				return nil
			}, Bounties.SetShares)
		},
	})
}

// ParseShares reads "@a=60 @b=40" (commas allowed between pairs): each recipient once, each
// weight a whole number from 1 to 1000. Weights are relative, not percentages.
func ParseShares(args string) (map[string]int, error) {
	fields := strings.FieldsFunc(args, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("name each recipient with a weight")
	}
	out := make(map[string]int, len(fields))
	for _, f := range fields {
		who, w, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%q needs a weight after =", f)
		}
		l, err := ParseLogin(who)
		if err != nil {
			return nil, err
		}
		if _, dup := out[l]; dup {
			return nil, fmt.Errorf("@%s is named twice", l)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(w, "%"))
		if err != nil || w == "" || w[0] == '+' || w[0] == '-' || n < 1 || n > 1000 {
			return nil, fmt.Errorf("@%s's weight %q is not a whole number from 1 to 1000", l, w)
		}
		out[l] = n
	}
	return out, nil
}
