package bot

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	register(Command{
		Name:  "help",
		Usage: "/help",
		Help:  "lists the commands",
		Run: func(ctx context.Context, c *Call) (string, error) {
			return HelpText(), nil
		},
	})
}

// HelpText lists every command with its usage, who may use it and what it does.
func HelpText() string {
	var sb strings.Builder
	sb.WriteString("commands (one per line, anywhere in a comment, PR description or review):")
	for _, c := range Commands() {
		fmt.Fprintf(&sb, "<br>`%s` — %s (%s)", c.Usage, c.Help, c.Who)
	}
	return sb.String()
}
