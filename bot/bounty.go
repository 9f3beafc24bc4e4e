package bot

import (
	"context"
	"strings"
)

// bountyCall gathers what the bounties package needs for one command, lets fill add the
// command's own arguments, and calls run.
func bountyCall(ctx context.Context, c *Call, fill func(r *BountyRequest) error, run func(Bounties, context.Context, BountyRequest) (string, error)) (string, error) {
	if c.Bot.Bounties == nil {
		return "", Refusef("bounties are not enabled on this forge.")
	}
	t, err := c.Actor(ctx)
	if err != nil {
		return "", err
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return "", err
	}
	created, err := c.AccountCreated(ctx, c.Event.Author)
	if err != nil {
		return "", err
	}
	r := BountyRequest{Key: c.Key, Repo: c.Event.Repo, Number: c.Event.Number, IsPR: c.Event.IsPR, Actor: c.Event.Author,
		ActorMaintainer: t.Maintainer(), ActorCreatedAt: created, Target: Ref{Repo: c.Event.Repo, Number: c.Event.Number},
		Policy: cfg.Bounties, AutoApprove: cfg.AutoApprovePayouts}
	if c.Event.IsPR {
		if r.PR, err = c.Pull(ctx); err != nil {
			return "", err
		}
	}
	if err := fill(&r); err != nil {
		return "", err
	}
	return run(c.Bot.Bounties, ctx, r)
}

// noArgs refuses arguments for commands that take none.
func noArgs(c *Call) func(*BountyRequest) error {
	return func(*BountyRequest) error {
		if strings.TrimSpace(c.Inv.Args) != "" {
			return Refusef("`/%s` takes no arguments.", c.Cmd.Name)
		}
		return nil
	}
}

// refArg reads an optional issue reference: "#N", "owner/repo#N" or an issue URL; none
// means the issue the command was written on when allowed.
func refArg(c *Call, required bool) func(*BountyRequest) error {
	return func(r *BountyRequest) error {
		args := strings.TrimSpace(c.Inv.Args)
		if args == "" {
			if required {
				return Refusef("name the issue: `%s`.", c.Cmd.Usage)
			}
			return nil
		}
		ref, err := ParseRef(strings.Fields(args)[0], c.Event.Repo)
		if err != nil {
			return Refusef("%v", err)
		}
		r.Target = ref
		return nil
	}
}

// amountArg reads the leading amount of the arguments and returns the rest.
func amountArg(args string) (int64, string, error) {
	f := strings.Fields(args)
	if len(f) == 0 {
		return 0, "", Refusef("name an amount, like `$100`.")
	}
	n := 1
	if len(f) > 1 && strings.EqualFold(f[1], "usd") {
		n = 2
	} else if strings.EqualFold(f[0], "usd") && len(f) > 1 {
		n = 2
	}
	cents, err := ParseAmount(strings.Join(f[:n], " "))
	if err != nil {
		return 0, "", Refusef("%v", err)
	}
	return cents, strings.Join(f[n:], " "), nil
}

// oneUser reads exactly one login into the request's Users, refusing with example otherwise.
func oneUser(c *Call, example string) func(*BountyRequest) error {
	return func(r *BountyRequest) error {
		users, err := ParseLogins(c.Inv.Args)
		if err != nil || len(users) != 1 {
			return Refusef("name one person, like `%s`.", example)
		}
		r.Users = users
		return nil
	}
}
