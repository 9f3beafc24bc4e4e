package bot

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	register(Command{
		Name:  "label",
		Usage: "/label LABEL... (quote labels with spaces: /label \"good first issue\")",
		Help:  "adds labels",
		Who:   Triager,
		Run: func(ctx context.Context, c *Call) (string, error) {
			labels, err := labelArgs(c.Inv.Args)
			if err != nil {
				return "", err
			}
			if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, labels, nil); err != nil {
				return "", err
			}
			return fmt.Sprintf("added %s.", quoteList(labels)), nil
		},
	})
}

// labelArgs reads one or more label names.
func labelArgs(args string) ([]string, error) {
	labels, err := Fields(args)
	if err != nil {
		return nil, Refusef("%v; write labels like `/label bug \"good first issue\"`.", err)
	}
	if len(labels) == 0 {
		return nil, Refusef("name at least one label, like `/label bug`.")
	}
	for _, l := range labels {
		if len(l) > 50 || strings.TrimSpace(l) == "" {
			return nil, Refusef("%q is not a label name GitHub accepts (1 to 50 characters).", l)
		}
	}
	return labels, nil
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "`" + s + "`"
	}
	return strings.Join(q, ", ")
}
