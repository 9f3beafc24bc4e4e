package bot

import (
	"context"
	"fmt"
)

// NeedsOkToTestLabel marks a pull request from an untrusted author whose code has not run.
const NeedsOkToTestLabel = "needs-ok-to-test"

func init() {
	register(Command{
		Name:  "ok-to-test",
		Usage: "/ok-to-test",
		Help:  "lets CI run the code of a pull request from an author who is not yet trusted",
		Who:   Trusted,
		Where: PullsOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			if c.Bot.CI == nil {
				return "", Refusef("CI is not enabled on this forge.")
			}
			pr, err := c.Pull(ctx)
			if err != nil {
				return "", err
			}
			pr.Action = "ok-to-test"
			if err := c.Bot.CI.OkToTest(ctx, *pr, c.Event.Author); err != nil {
				return "", err
			}
			if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, nil, []string{NeedsOkToTestLabel}); err != nil {
				return "", err
			}
			return fmt.Sprintf("ok to test %.7s.", pr.HeadSHA), nil
		},
	})
}
