package bot

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"
)

func init() {
	register(Command{
		Name:  "cc",
		Usage: "/cc @user...",
		Help:  "asks people to look: requests their review on a pull request, mentions them on an issue",
		Who:   Trusted,
		Run: func(ctx context.Context, c *Call) (string, error) {
			users, err := ParseLogins(c.Inv.Args)
			if err != nil {
				return "", Refusef("%v", err)
			}
			if !c.Event.IsPR {
				return fmt.Sprintf("cc %s.", atList(users)), nil
			}
			if _, _, err := c.GH.PullRequests.RequestReviewers(ctx, c.owner(), c.name(), c.Event.Number, github.ReviewersRequest{Reviewers: users}); err != nil {
				return "", fmt.Errorf("request reviewers %v: %w", users, err)
			}
			return fmt.Sprintf("requested review from %s.", atList(users)), nil
		},
	})
}
