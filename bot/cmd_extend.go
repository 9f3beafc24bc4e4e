package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

func init() {
	register(Command{
		Name:  "extend",
		Usage: "/extend [#ISSUE] DAYS (no issue: this one)",
		Help:  "gives the person holding a bounty's lock more days",
		Who:   Maintainer,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, func(r *BountyRequest) error {
				ref, days, err := ParseExtend(c.Inv.Args, c.Event.Repo)
				if err != nil {
					return Refusef("%v; write it like `/extend #12 3 days`.", err)
				}
				if ref == nil && c.Event.IsPR {
					return Refusef("name the issue whose lock to extend: `/extend #12 3 days`.")
				}
				if ref != nil {
					r.Target = *ref
				}
				r.Days = days
				return nil
			}, Bounties.Extend)
		},
	})
}

// ParseExtend reads /extend's arguments: an optional issue reference, then a whole number of
// days ("3", "3 days", "1 day", "3d"). The reference is nil when none is given.
func ParseExtend(args, repo string) (*Ref, int, error) {
	f := strings.Fields(args)
	var ref *Ref
	if len(f) > 0 && (strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "/")) {
		r, err := ParseRef(f[0], repo)
		if err != nil {
			return nil, 0, err
		}
		ref, f = &r, f[1:]
	}
	if len(f) == 2 && (strings.EqualFold(f[1], "day") || strings.EqualFold(f[1], "days")) {
		f = f[:1]
	}
	if len(f) != 1 {
		return nil, 0, fmt.Errorf("name the number of days once")
	}
	num := strings.TrimSuffix(strings.ToLower(f[0]), "d")
	days, err := strconv.Atoi(num)
	if err != nil || num == "" || num[0] == '+' || num[0] == '-' {
		return nil, 0, fmt.Errorf("%q is not a whole number of days", f[0])
	}
	if days < 1 || days > 365 {
		return nil, 0, fmt.Errorf("a lock is extended by 1 to 365 days, not %d", days)
	}
	return ref, days, nil
}
