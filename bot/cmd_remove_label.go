package bot

import (
	"context"
	"fmt"
)

func init() {
	register(Command{
		Name:  "remove-label",
		Usage: "/remove-label LABEL...",
		Help:  "removes labels",
		Who:   Triager,
		Run: func(ctx context.Context, c *Call) (string, error) {
			labels, err := labelArgs(c.Inv.Args)
			if err != nil {
				return "", err
			}
			if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, nil, labels); err != nil {
				return "", err
			}
			return fmt.Sprintf("removed %s.", quoteList(labels)), nil
		},
	})
}
