package bot

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
)

// Who says who may run a command. Each level includes the ones above it in trust.
type Who int

const (
	Anyone     Who = iota
	Author         // the issue's or PR's author, or a triager
	Trusted        // Trust.Trusted
	Triager        // Trust.Triager
	Maintainer     // Trust.Maintainer
)

// String is how a refusal names the people who may.
func (w Who) String() string {
	switch w {
	case Author:
		return "the author of this issue or pull request, or a maintainer or triager"
	case Trusted:
		return "maintainers, organization members and users listed under trusted_users in " + ConfigFile
	case Triager:
		return "maintainers and triagers (write, maintain, admin or triage access, or listed under maintainers in " + ConfigFile + ")"
	case Maintainer:
		return "maintainers (write, maintain or admin access, or listed under maintainers in " + ConfigFile + ")"
	}
	return "anyone"
}

// Where says on what a command works.
type Where int

const (
	Anywhere Where = iota
	IssuesOnly
	PullsOnly
)

// Command is one bot command: its grammar (Usage), who may run it, where, what it does and
// its help. Each lives in its own file and registers itself, so adding a command never
// edits a central switch.
type Command struct {
	Name    string
	Aliases []string
	Usage   string // e.g. "/label LABEL..."
	Help    string // one sentence
	Who     Who
	Where   Where
	// Run does the work and returns the sentence to reply with. Errors wrapping ErrRefused
	// become polite replies; other errors retry the delivery.
	Run func(ctx context.Context, c *Call) (string, error)
}

var registry = map[string]*Command{}

// register adds a command; a duplicate name is a programming error.
func register(c Command) {
	for _, n := range append([]string{c.Name}, c.Aliases...) {
		if _, dup := registry[n]; dup {
			panic("bot: command registered twice: " + n)
		}
		registry[n] = &c
	}
}

// Lookup returns the command a name (or alias) selects.
func Lookup(name string) (*Command, bool) {
	c, ok := registry[strings.ToLower(name)]
	return c, ok
}

// Commands lists the registered commands sorted by name.
func Commands() []*Command {
	var out []*Command
	for n, c := range registry {
		if n == c.Name {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CommentEvent is the one normalised shape of text that may hold commands: an issue or PR
// comment, an issue or PR body, or a review body.
type CommentEvent struct {
	Delivery       string
	InstallationID int64
	Repo           string
	Number         int
	IsPR           bool
	Source         string // "comment", "issue", "pull_request" or "review"
	Action         string // created, opened, edited, submitted
	Author         string // lower case
	Body           string
	OldBody        string // before an edit
	ThreadAuthor   string // the issue's or PR's author, lower case
}

// Call is one command invocation being run: the event, the invocation and lazily fetched
// facts shared by the commands of one delivery.
type Call struct {
	Bot   *Bot
	GH    *github.Client
	Event *CommentEvent
	Inv   Invocation
	Cmd   *Command
	// Key identifies this invocation across retries: delivery ID and line.
	Key string

	facts *facts
}

// facts caches what the commands of one delivery looked up.
type facts struct {
	config   *RepoConfig
	trust    map[string]Trust
	pull     *PullRequest
	accounts map[string]time.Time
}

// Config returns the repository's .gradforge.yml (the zero config when absent).
func (c *Call) Config(ctx context.Context) (*RepoConfig, error) {
	if c.facts.config == nil {
		cfg, err := LoadConfig(ctx, c.GH, c.Event.Repo)
		if errors.Is(err, ErrBadConfig) {
			return nil, Refusef("I cannot read this repository's `%s` (%v); a maintainer must fix it before I act on commands.", ConfigFile, err)
		}
		if err != nil {
			return nil, err
		}
		c.facts.config = cfg
	}
	return c.facts.config, nil
}

// TrustOf answers for any user in this repository.
func (c *Call) TrustOf(ctx context.Context, login string) (Trust, error) {
	login = strings.ToLower(login)
	if t, ok := c.facts.trust[login]; ok {
		return t, nil
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return Trust{}, err
	}
	t, err := TrustOf(ctx, c.GH, c.Event.Repo, login, cfg)
	if err != nil {
		return Trust{}, err
	}
	c.facts.trust[login] = t
	return t, nil
}

// Actor returns the trust of the person who wrote the command.
func (c *Call) Actor(ctx context.Context) (Trust, error) { return c.TrustOf(ctx, c.Event.Author) }

// AccountCreated returns when login's account was made.
func (c *Call) AccountCreated(ctx context.Context, login string) (time.Time, error) {
	if t, ok := c.facts.accounts[login]; ok {
		return t, nil
	}
	u, _, err := c.GH.Users.Get(ctx, login)
	if err != nil {
		return time.Time{}, fmt.Errorf("get user %s: %w", login, err)
	}
	c.facts.accounts[login] = u.GetCreatedAt().Time
	return u.GetCreatedAt().Time, nil
}

// Pull returns the facts of the pull request the command was written on.
func (c *Call) Pull(ctx context.Context) (*PullRequest, error) {
	if c.facts.pull != nil {
		return c.facts.pull, nil
	}
	pr, err := c.Bot.pullFacts(ctx, c.GH, c.Event.InstallationID, c.Event.Repo, c.Event.Number)
	if err != nil {
		return nil, err
	}
	c.facts.pull = pr
	return pr, nil
}

// owner and name split the repository.
func (c *Call) owner() string { o, _, _ := strings.Cut(c.Event.Repo, "/"); return o }
func (c *Call) name() string  { _, n, _ := strings.Cut(c.Event.Repo, "/"); return n }

// allowed applies the command's Who rule.
func (c *Call) allowed(ctx context.Context) (bool, error) {
	if c.Cmd.Who == Anyone {
		return true, nil
	}
	t, err := c.Actor(ctx)
	if err != nil {
		return false, err
	}
	switch c.Cmd.Who {
	case Author:
		return t.Triager() || strings.EqualFold(c.Event.Author, c.Event.ThreadAuthor), nil
	case Trusted:
		return t.Trusted(), nil
	case Triager:
		return t.Triager(), nil
	}
	return t.Maintainer(), nil
}

// run checks where and who, then runs the command; it returns the reply.
func (c *Call) run(ctx context.Context) (string, error) {
	switch {
	case c.Cmd.Where == PullsOnly && !c.Event.IsPR:
		return "", Refusef("`/%s` works on pull requests only.", c.Cmd.Name)
	case c.Cmd.Where == IssuesOnly && c.Event.IsPR:
		return "", Refusef("`/%s` works on issues only.", c.Cmd.Name)
	}
	ok, err := c.allowed(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", Refusef("sorry, only %s may use `/%s`.", c.Cmd.Who, c.Cmd.Name)
	}
	return c.Cmd.Run(ctx, c)
}

// unknownReply lists the valid commands for someone who typed an unknown one.
func unknownReply(name string) string {
	var names []string
	for _, c := range Commands() {
		names = append(names, "`/"+c.Name+"`")
	}
	return fmt.Sprintf("I don't know `/%s`. Commands I understand: %s. `/help` explains each.", name, strings.Join(names, ", "))
}

// isRefusal reports whether err is meant for people.
func isRefusal(err error) bool { return errors.Is(err, ErrRefused) }
