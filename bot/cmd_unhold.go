package bot

import "context"

func init() {
	register(Command{
		Name:  "unhold",
		Usage: "/unhold",
		Help:  "removes the hold",
		Who:   Trusted,
		Run:   unhold,
	})
}

func unhold(ctx context.Context, c *Call) (string, error) {
	if err := Label(ctx, c.GH, c.Event.Repo, c.Event.Number, nil, []string{HoldLabel}); err != nil {
		return "", err
	}
	return "hold removed.", nil
}
