package bot

import "context"

func init() {
	register(Command{
		Name:  "reopen",
		Usage: "/reopen",
		Help:  "reopens the issue or pull request",
		Who:   Author,
		Run: func(ctx context.Context, c *Call) (string, error) {
			return setState(ctx, c, "open")
		},
	})
}
