package bot

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	register(Command{
		Name:  "assign",
		Usage: "/assign [@user...] (no user: yourself)",
		Help:  "assigns people; anyone trusted may assign themselves, triagers may assign others",
		Who:   Trusted,
		Run: func(ctx context.Context, c *Call) (string, error) {
			users, err := assignees(ctx, c)
			if err != nil {
				return "", err
			}
			if _, _, err := c.GH.Issues.AddAssignees(ctx, c.owner(), c.name(), c.Event.Number, users); err != nil {
				return "", fmt.Errorf("assign %v: %w", users, err)
			}
			return fmt.Sprintf("assigned %s.", atList(users)), nil
		},
	})
}

// assignees reads the users of /assign and /unassign: none means the actor; naming others
// needs a triager.
func assignees(ctx context.Context, c *Call) ([]string, error) {
	if strings.TrimSpace(c.Inv.Args) == "" {
		return []string{c.Event.Author}, nil
	}
	users, err := ParseLogins(c.Inv.Args)
	if err != nil {
		return nil, Refusef("%v", err)
	}
	if len(users) == 1 && users[0] == c.Event.Author {
		return users, nil
	}
	t, err := c.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if !t.Triager() {
		return nil, Refusef("sorry, only %s may assign or unassign other people; you may `/%s` yourself.", Triager, c.Cmd.Name)
	}
	return users, nil
}

func atList(users []string) string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = "@" + u
	}
	return strings.Join(out, ", ")
}
