package bot

import (
	"context"
	"fmt"
)

func init() {
	register(Command{
		Name:  "unassign",
		Usage: "/unassign [@user...] (no user: yourself)",
		Help:  "unassigns people",
		Who:   Trusted,
		Run: func(ctx context.Context, c *Call) (string, error) {
			users, err := assignees(ctx, c)
			if err != nil {
				return "", err
			}
			if _, _, err := c.GH.Issues.RemoveAssignees(ctx, c.owner(), c.name(), c.Event.Number, users); err != nil {
				return "", fmt.Errorf("unassign %v: %w", users, err)
			}
			return fmt.Sprintf("unassigned %s.", atList(users)), nil
		},
	})
}
