package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gradforge/gradforge/ci"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"gorm.io/gorm"
)

// Bot acts on stored deliveries: it is the Handler the Workers run. CI and Bounties may be
// nil; their commands then answer that the feature is not enabled on this forge.
type Bot struct {
	DB       *gorm.DB
	Clients  Clients
	CI       CI
	Bounties Bounties
	Log      *slog.Logger
	// Login is the bot's own login (e.g. "gradforge[bot]"); its comments are never read as
	// commands.
	Login string

	threads sync.Map // repo#number → *sync.Mutex, serialising edits of one comment
}

func (b *Bot) log() *slog.Logger {
	if b.Log == nil {
		return slog.Default()
	}
	return b.Log
}

// Handle processes one delivery; it is idempotent (see Handler).
func (b *Bot) Handle(ctx context.Context, d Delivery) error {
	if err := d.ParseHead(); err != nil {
		return Permanent(err)
	}
	if d.Repo != "" && d.InstallationID > 0 {
		if err := b.rememberRepo(ctx, d.Repo, d.InstallationID); err != nil {
			return err
		}
	}
	if d.Event == "check_suite" || d.Event == "check_run" {
		return b.onCheck(ctx, d)
	}
	ev, err := github.ParseWebHook(d.Event, d.Payload)
	if err != nil {
		if strings.Contains(err.Error(), "unknown X-Github-Event") {
			b.log().DebugContext(ctx, "event not handled", "event", d.Event)
			return nil
		}
		return Permanent(fmt.Errorf("parse %s payload: %w", d.Event, err))
	}
	switch e := ev.(type) {
	case *github.InstallationEvent:
		return b.onInstallation(ctx, e)
	case *github.InstallationRepositoriesEvent:
		return b.onInstallationRepos(ctx, e)
	case *github.IssuesEvent:
		return b.onIssue(ctx, d, e)
	case *github.IssueCommentEvent:
		return b.onIssueComment(ctx, d, e)
	case *github.PullRequestEvent:
		return b.onPullRequest(ctx, d, e)
	case *github.PullRequestReviewEvent:
		return b.onReview(ctx, d, e)
	}
	b.log().DebugContext(ctx, "event not handled", "event", d.Event, "action", d.Action)
	return nil
}

func (b *Bot) rememberRepo(ctx context.Context, repo string, inst int64) error {
	err := b.DB.WithContext(ctx).Exec(`INSERT INTO bot_repos (repo, installation_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id, updated_at = excluded.updated_at`,
		repo, inst, time.Now().UTC()).Error
	if err != nil {
		return fmt.Errorf("remember installation of %s: %w", repo, err)
	}
	return nil
}

func (b *Bot) forgetRepo(ctx context.Context, repo string) error {
	if err := b.DB.WithContext(ctx).Exec(`DELETE FROM bot_repos WHERE repo = ?`, repo).Error; err != nil {
		return fmt.Errorf("forget %s: %w", repo, err)
	}
	return nil
}

// InstallationOf returns the installation that covers repo, as learnt from deliveries.
func (b *Bot) InstallationOf(ctx context.Context, repo string) (int64, error) {
	var ids []int64
	if err := b.DB.WithContext(ctx).Raw(`SELECT installation_id FROM bot_repos WHERE repo = ?`, repo).Scan(&ids).Error; err != nil {
		return 0, fmt.Errorf("installation of %s: %w", repo, err)
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("no installation of the App covers %s", repo)
	}
	return ids[0], nil
}

// ClientFor returns the installation client for a repository.
func (b *Bot) ClientFor(ctx context.Context, repo string) (*github.Client, error) {
	id, err := b.InstallationOf(ctx, repo)
	if err != nil {
		return nil, err
	}
	return b.Clients.Installation(ctx, id)
}

func (b *Bot) onInstallation(ctx context.Context, e *github.InstallationEvent) error {
	id := e.GetInstallation().GetID()
	for _, r := range e.Repositories {
		var err error
		if e.GetAction() == "deleted" {
			err = b.forgetRepo(ctx, r.GetFullName())
		} else {
			err = b.rememberRepo(ctx, r.GetFullName(), id)
		}
		if err != nil {
			return err
		}
	}
	b.log().InfoContext(ctx, "installation", "action", e.GetAction(), "installation", id, "account", e.GetInstallation().GetAccount().GetLogin(), "repos", len(e.Repositories))
	return nil
}

func (b *Bot) onInstallationRepos(ctx context.Context, e *github.InstallationRepositoriesEvent) error {
	id := e.GetInstallation().GetID()
	for _, r := range e.RepositoriesAdded {
		if err := b.rememberRepo(ctx, r.GetFullName(), id); err != nil {
			return err
		}
	}
	for _, r := range e.RepositoriesRemoved {
		if err := b.forgetRepo(ctx, r.GetFullName()); err != nil {
			return err
		}
	}
	return nil
}

// isBot reports whether a user is a bot account (ours or another's): bots' text is never
// read as commands, so two bots cannot loop.
func (b *Bot) isBot(u *github.User) bool {
	return u.GetType() == "Bot" || strings.EqualFold(u.GetLogin(), b.Login) || strings.HasSuffix(u.GetLogin(), "[bot]")
}

// writer is who wrote the text an event carries: the sender, who is the author on creation
// and the editor on an edit (a maintainer editing someone's comment speaks for themselves,
// and an author cannot borrow a maintainer's words by editing them back); the content's
// author when a payload has no sender.
func writer(sender, author *github.User) *github.User {
	if sender.GetLogin() != "" {
		return sender
	}
	return author
}

func (b *Bot) onIssue(ctx context.Context, d Delivery, e *github.IssuesEvent) error {
	if a := e.GetAction(); a == "labeled" || a == "unlabeled" {
		return b.onLabel(ctx, e)
	}
	if a := e.GetAction(); (a != "opened" && a != "edited") || b.isBot(writer(e.GetSender(), e.GetIssue().GetUser())) {
		return nil
	}
	if e.GetAction() == "edited" && e.GetChanges().GetBody() == nil {
		return nil // title-only edit
	}
	is := e.GetIssue()
	return b.runCommands(ctx, &CommentEvent{Delivery: d.ID, InstallationID: e.GetInstallation().GetID(), Repo: e.GetRepo().GetFullName(),
		Number: is.GetNumber(), IsPR: is.IsPullRequest(), Source: "issue", Action: e.GetAction(),
		Author: strings.ToLower(writer(e.GetSender(), is.GetUser()).GetLogin()), Body: is.GetBody(), OldBody: e.GetChanges().GetBody().GetFrom(),
		ThreadAuthor: strings.ToLower(is.GetUser().GetLogin())})
}

// onLabel passes a label change on an issue to Bounties when it keeps labels, whoever made
// the change (the bot's own bounty labels included: they are the issue's labels too).
func (b *Bot) onLabel(ctx context.Context, e *github.IssuesEvent) error {
	il, ok := b.Bounties.(IssueLabels)
	if !ok || e.GetIssue().IsPullRequest() || e.GetLabel().GetName() == "" {
		return nil
	}
	repo, number, label := e.GetRepo().GetFullName(), e.GetIssue().GetNumber(), e.GetLabel().GetName()
	err := il.IssueLabeled(ctx, repo, number, label, e.GetAction() == "unlabeled")
	if errors.Is(err, ErrRefused) {
		b.log().WarnContext(ctx, "label change not recorded", "repo", repo, "issue", number, "label", label, "err", err)
		return nil
	}
	return err
}

func (b *Bot) onIssueComment(ctx context.Context, d Delivery, e *github.IssueCommentEvent) error {
	if a := e.GetAction(); (a != "created" && a != "edited") || b.isBot(writer(e.GetSender(), e.GetComment().GetUser())) {
		return nil
	}
	is := e.GetIssue()
	return b.runCommands(ctx, &CommentEvent{Delivery: d.ID, InstallationID: e.GetInstallation().GetID(), Repo: e.GetRepo().GetFullName(),
		Number: is.GetNumber(), IsPR: is.IsPullRequest(), Source: "comment", Action: e.GetAction(),
		Author: strings.ToLower(writer(e.GetSender(), e.GetComment().GetUser()).GetLogin()), Body: e.GetComment().GetBody(), OldBody: e.GetChanges().GetBody().GetFrom(),
		ThreadAuthor: strings.ToLower(is.GetUser().GetLogin())})
}

func (b *Bot) onReview(ctx context.Context, d Delivery, e *github.PullRequestReviewEvent) error {
	if a := e.GetAction(); (a != "submitted" && a != "edited") || b.isBot(writer(e.GetSender(), e.GetReview().GetUser())) {
		return nil
	}
	pr := e.GetPullRequest()
	return b.runCommands(ctx, &CommentEvent{Delivery: d.ID, InstallationID: e.GetInstallation().GetID(), Repo: e.GetRepo().GetFullName(),
		Number: pr.GetNumber(), IsPR: true, Source: "review", Action: e.GetAction(),
		Author: strings.ToLower(writer(e.GetSender(), e.GetReview().GetUser()).GetLogin()), Body: e.GetReview().GetBody(), OldBody: oldBody(d.Payload),
		ThreadAuthor: strings.ToLower(pr.GetUser().GetLogin())})
}

// oldBody reads changes.body.from, for events whose go-github type lacks Changes.
func oldBody(payload []byte) string {
	var p struct {
		Changes struct {
			Body struct {
				From string `json:"from"`
			} `json:"body"`
		} `json:"changes"`
	}
	json.Unmarshal(payload, &p)
	return p.Changes.Body.From
}

func (b *Bot) onPullRequest(ctx context.Context, d Delivery, e *github.PullRequestEvent) error {
	p := e.GetPullRequest()
	repo, inst, action := e.GetRepo().GetFullName(), e.GetInstallation().GetID(), e.GetAction()
	switch action {
	case "opened", "edited", "reopened", "synchronize", "closed":
	default:
		return nil
	}
	gh, err := b.Clients.Installation(ctx, inst)
	if err != nil {
		return err
	}
	pr, err := b.pullFromEvent(ctx, gh, inst, repo, p)
	if err != nil {
		return err
	}
	pr.Action = action
	if (action == "opened" || action == "edited") && !b.isBot(writer(e.GetSender(), p.GetUser())) &&
		(action == "opened" || e.GetChanges().GetBody() != nil) {
		if err := b.runCommands(ctx, &CommentEvent{Delivery: d.ID, InstallationID: inst, Repo: repo, Number: p.GetNumber(), IsPR: true,
			Source: "pull_request", Action: action, Author: strings.ToLower(writer(e.GetSender(), p.GetUser()).GetLogin()), Body: p.GetBody(), OldBody: e.GetChanges().GetBody().GetFrom(),
			ThreadAuthor: pr.Author}); err != nil {
			return err
		}
	}
	switch action {
	case "opened", "reopened", "synchronize":
		if b.CI != nil {
			if err := b.CI.OnPullRequest(ctx, *pr); err != nil {
				return fmt.Errorf("ci on %s#%d %s: %w", repo, pr.Number, action, err)
			}
		}
	case "closed":
		// CI first: cancelling is idempotent, so a retry after a bounties error repeats
		// nothing harmful, and a closed PR stops holding runners at once.
		if b.CI != nil {
			if err := b.CI.OnClosed(ctx, *pr); err != nil {
				return fmt.Errorf("ci on %s#%d closed: %w", repo, pr.Number, err)
			}
		}
		if b.Bounties != nil {
			if pr.Merged {
				pr.CoAuthors, err = coAuthors(ctx, gh, repo, pr.Number)
				if err != nil {
					return err
				}
			}
			if err := b.Bounties.PullClosed(ctx, *pr); err != nil && !isRefusal(err) {
				return fmt.Errorf("bounties on %s#%d closed: %w", repo, pr.Number, err)
			}
		}
	}
	return nil
}

// pullFromEvent turns a webhook's pull request into plain facts, adding the author's trust
// and account age from the API.
func (b *Bot) pullFromEvent(ctx context.Context, gh *github.Client, inst int64, repo string, p *github.PullRequest) (*PullRequest, error) {
	author := strings.ToLower(p.GetUser().GetLogin())
	pr := &PullRequest{InstallationID: inst, Repo: repo, Number: p.GetNumber(), Title: p.GetTitle(), Body: p.GetBody(), Author: author,
		HeadSHA: p.GetHead().GetSHA(), HeadRef: p.GetHead().GetRef(), HeadRepo: p.GetHead().GetRepo().GetFullName(),
		BaseSHA: p.GetBase().GetSHA(), BaseRef: p.GetBase().GetRef(), Merged: p.GetMerged(), MergedBy: strings.ToLower(p.GetMergedBy().GetLogin())}
	cfg, err := LoadConfig(ctx, gh, repo)
	if err != nil {
		b.log().WarnContext(ctx, "repository config unreadable; using defaults", "repo", repo, "err", err)
		cfg = DefaultConfig()
	}
	pr.Config = cfg
	t, err := TrustOf(ctx, gh, repo, author, cfg)
	if err != nil {
		return nil, err
	}
	pr.Trusted = t.Trusted()
	if u, _, err := gh.Users.Get(ctx, author); err == nil {
		pr.AuthorCreatedAt = u.GetCreatedAt().Time
	} else {
		return nil, fmt.Errorf("get user %s: %w", author, err)
	}
	return pr, nil
}

// pullFacts fetches a pull request by number and returns its facts.
func (b *Bot) pullFacts(ctx context.Context, gh *github.Client, inst int64, repo string, number int) (*PullRequest, error) {
	owner, name, _ := strings.Cut(repo, "/")
	p, _, err := gh.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		return nil, fmt.Errorf("get pull request %s#%d: %w", repo, number, err)
	}
	pr, err := b.pullFromEvent(ctx, gh, inst, repo, p)
	if err != nil {
		return nil, err
	}
	if pr.Merged {
		if pr.CoAuthors, err = coAuthors(ctx, gh, repo, number); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

var coAuthorRE = regexp.MustCompile(`(?mi)^co-authored-by:\s*([^<\n]*?)\s*<([^>\n]+)>\s*$`)

// coAuthors reads the Co-authored-by trailers of a pull request's commits. Logins come from
// GitHub's noreply addresses (ID+login@users.noreply.github.com) or, failing that, from the
// commit author login when the name matches it; other names are skipped.
func coAuthors(ctx context.Context, gh *github.Client, repo string, number int) ([]string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	commits, _, err := gh.PullRequests.ListCommits(ctx, owner, name, number, &github.ListOptions{PerPage: 100})
	if err != nil {
		return nil, fmt.Errorf("list commits of %s#%d: %w", repo, number, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range commits {
		for _, m := range coAuthorRE.FindAllStringSubmatch(c.GetCommit().GetMessage(), -1) {
			login := ""
			if local, ok := strings.CutSuffix(strings.ToLower(m[2]), "@users.noreply.github.com"); ok {
				if _, l, ok := strings.Cut(local, "+"); ok {
					local = l
				}
				login = local
			} else if l, err := ParseLogin(m[1]); err == nil {
				login = l
			}
			if login != "" && !seen[login] {
				seen[login] = true
				out = append(out, login)
			}
		}
	}
	return out, nil
}

// checkEvent is the part of check_suite and check_run payloads the bot reads. It is decoded
// here rather than with go-github's types because real payloads carry timestamps in a
// format those types reject ("2018-04-25 20:42:10").
type checkEvent struct {
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
	CheckSuite *struct {
		ID           int64          `json:"id"`
		HeadSHA      string         `json:"head_sha"`
		HeadBranch   string         `json:"head_branch"`
		PullRequests []checkPullRef `json:"pull_requests"`
	} `json:"check_suite"`
	CheckRun *struct {
		ID         int64  `json:"id"`
		Name       string `json:"name"`
		HeadSHA    string `json:"head_sha"`
		ExternalID string `json:"external_id"`
		CheckSuite struct {
			ID int64 `json:"id"`
		} `json:"check_suite"`
		PullRequests []checkPullRef `json:"pull_requests"`
	} `json:"check_run"`
	RequestedAction struct {
		Identifier string `json:"identifier"`
	} `json:"requested_action"`
}

type checkPullRef struct {
	Number int `json:"number"`
}

// onCheck hands check_suite requested/rerequested and check_run rerequested/requested_action
// to CI.
func (b *Bot) onCheck(ctx context.Context, d Delivery) error {
	var e checkEvent
	if err := json.Unmarshal(d.Payload, &e); err != nil {
		return Permanent(fmt.Errorf("parse %s payload: %w", d.Event, err))
	}
	req := CheckRequest{InstallationID: d.InstallationID, Repo: d.Repo, Action: d.Action, Sender: strings.ToLower(e.Sender.Login)}
	var pulls []checkPullRef
	switch {
	case d.Event == "check_suite" && e.CheckSuite != nil && (d.Action == "requested" || d.Action == "rerequested"):
		s := e.CheckSuite
		req.HeadSHA, req.HeadBranch, req.SuiteID, pulls = s.HeadSHA, s.HeadBranch, s.ID, s.PullRequests
	case d.Event == "check_run" && e.CheckRun != nil && (d.Action == "rerequested" || d.Action == "requested_action"):
		r := e.CheckRun
		req.HeadSHA, req.SuiteID, req.CheckRunID, req.Name, req.ExternalID, pulls = r.HeadSHA, r.CheckSuite.ID, r.ID, r.Name, r.ExternalID, r.PullRequests
		req.Identifier = e.RequestedAction.Identifier
	default:
		return nil
	}
	for _, p := range pulls {
		req.PullNumbers = append(req.PullNumbers, p.Number)
	}
	if b.CI == nil {
		return nil
	}
	err := b.CI.OnCheckRequest(ctx, req)
	if errors.Is(err, ci.ErrUnknownRun) || errors.Is(err, ci.ErrUnknownPull) {
		// a run or pull request ci never saw (made before the App was installed, or by
		// another App): nothing to re-run, and retrying will not change that
		b.log().InfoContext(ctx, "check request for something ci does not know; ignored", "repo", req.Repo, "check_run", req.CheckRunID, "err", err)
		return nil
	}
	if err != nil && !isRefusal(err) {
		return fmt.Errorf("ci on %s %s: %w", d.Event, d.Action, err)
	}
	return nil
}

// runCommands runs every command in an event's text, in order, each at most once across
// retries, and records the replies in the thread's comment. On an edit only commands that
// were not in the text before run, so fixing a typo does not repeat the rest.
func (b *Bot) runCommands(ctx context.Context, ev *CommentEvent) error {
	invs := Parse(ev.Body)
	if ev.Action == "edited" {
		before := map[string]int{}
		for _, i := range Parse(ev.OldBody) {
			before[strings.ToLower(i.String())]++
		}
		kept := invs[:0]
		for _, i := range invs {
			k := strings.ToLower(i.String())
			if before[k] > 0 {
				before[k]--
				continue
			}
			kept = append(kept, i)
		}
		invs = kept
	}
	if len(invs) == 0 {
		return nil
	}
	gh, err := b.Clients.Installation(ctx, ev.InstallationID)
	if err != nil {
		return err
	}
	f := &facts{trust: map[string]Trust{}, accounts: map[string]time.Time{}}
	var entries []logEntry
	for _, inv := range invs {
		key := fmt.Sprintf("%s:%s:%d", ev.Delivery, ev.Source, inv.Line)
		reply, done, err := b.commandDone(ctx, key)
		if err != nil {
			return err
		}
		if !done {
			reply, err = b.runOne(ctx, gh, ev, inv, key, f)
			if err != nil {
				return fmt.Errorf("%s on %s#%d: %w", inv.String(), ev.Repo, ev.Number, err)
			}
			if err := b.recordCommand(ctx, key, ev, inv, reply); err != nil {
				return err
			}
		}
		if reply != "" {
			entries = append(entries, logEntry{key: key, text: fmt.Sprintf("@%s `%s`: %s", ev.Author, clip(inv.String(), 80), reply)})
		}
	}
	return b.appendLog(ctx, gh, ev.Repo, ev.Number, entries)
}

func (b *Bot) runOne(ctx context.Context, gh *github.Client, ev *CommentEvent, inv Invocation, key string, f *facts) (string, error) {
	cmd, ok := Lookup(inv.Name)
	if !ok {
		return unknownReply(inv.Name), nil
	}
	c := &Call{Bot: b, GH: gh, Event: ev, Inv: inv, Cmd: cmd, Key: key, facts: f}
	reply, err := c.run(ctx)
	if isRefusal(err) {
		return err.Error(), nil
	}
	return reply, err
}

func (b *Bot) commandDone(ctx context.Context, key string) (string, bool, error) {
	var replies []string
	if err := b.DB.WithContext(ctx).Raw(`SELECT reply FROM bot_commands WHERE key = ?`, key).Scan(&replies).Error; err != nil {
		return "", false, fmt.Errorf("look up command %s: %w", key, err)
	}
	if len(replies) == 0 {
		return "", false, nil
	}
	return replies[0], true, nil
}

func (b *Bot) recordCommand(ctx context.Context, key string, ev *CommentEvent, inv Invocation, reply string) error {
	err := b.DB.WithContext(ctx).Exec(`INSERT INTO bot_commands (key, repo, number, actor, command, reply, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`, key, ev.Repo, ev.Number, ev.Author, clip(inv.String(), 500), reply, time.Now().UTC()).Error
	if err != nil {
		return fmt.Errorf("record command %s: %w", key, err)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
