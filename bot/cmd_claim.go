package bot

import "context"

func init() {
	register(Command{
		Name:  "claim",
		Usage: "/claim #ISSUE (or owner/repo#ISSUE, or the issue's URL)",
		Help:  "says this pull request earns an issue's bounty once merged; in the PR description or a comment by its author",
		Who:   Author,
		Where: PullsOnly,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return bountyCall(ctx, c, refArg(c, true), Bounties.Claim)
		},
	})
}
