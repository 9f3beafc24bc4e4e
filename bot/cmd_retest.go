package bot

import (
	"context"
	"fmt"
)

func init() {
	register(Command{
		Name:  "retest",
		Usage: "/retest",
		Help:  "re-runs the pull request's checks",
		Who:   Author,
		Where: PullsOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			if c.Bot.CI == nil {
				return "", Refusef("CI is not enabled on this forge.")
			}
			pr, err := c.Pull(ctx)
			if err != nil {
				return "", err
			}
			pr.Action = "retest"
			if err := c.Bot.CI.Retest(ctx, *pr, c.Event.Author); err != nil {
				return "", err
			}
			return fmt.Sprintf("re-running the checks on %.7s.", pr.HeadSHA), nil
		},
	})
}
