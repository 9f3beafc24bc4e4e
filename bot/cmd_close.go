package bot

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"
)

func init() {
	register(Command{
		Name:  "close",
		Usage: "/close",
		Help:  "closes the issue or pull request",
		Who:   Author,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return setState(ctx, c, "closed")
		},
	})
}

func setState(ctx context.Context, c *Call, state string) (string, error) {
	if c.Inv.Args != "" {
		return "", Refusef("`/%s` takes no arguments.", c.Cmd.Name)
	}
	if _, _, err := c.GH.Issues.Edit(ctx, c.owner(), c.name(), c.Event.Number, &github.IssueRequest{State: &state}); err != nil {
		return "", fmt.Errorf("set state %s: %w", state, err)
	}
	return state + ".", nil
}
