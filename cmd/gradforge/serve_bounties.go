package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/bounties"
	"github.com/spf13/pflag"
)

// bountiesFlags configures the bounties part of serve.
type bountiesFlags struct {
	stripeKey, stripeWebhookSecret, stripeAPIURL string
	baseURL                                      string
	tick                                         time.Duration
	maxCents                                     int64
	proposerMinPaid                              int
}

var bountyFlags bountiesFlags

func init() {
	registerServePart(servePart{
		name: "bounties",
		flags: func(fs *pflag.FlagSet) {
			f := &bountyFlags
			fs.StringVar(&f.stripeKey, "stripe-key", "", "Stripe secret key (sk_…); empty: no card funding, onboarding or transfers (payouts wait)")
			fs.StringVar(&f.stripeWebhookSecret, "stripe-webhook-secret", "", "signing secret of the /webhooks/stripe endpoint (whsec_…); empty refuses every Stripe webhook")
			fs.StringVar(&f.stripeAPIURL, "stripe-api-url", "", "Stripe API root (default https://api.stripe.com; e.g. a local stripe-mock)")
			fs.StringVar(&f.baseURL, "bounties-base-url", "", "public URL for Stripe Checkout and onboarding return links (default: the listen URL)")
			fs.DurationVar(&f.tick, "bounties-tick", 30*time.Second, "how often expired locks and bounties close, refunds go out and stuck transfers are retried")
			fs.Int64Var(&f.maxCents, "bounties-max-cents", 100_000_00, "largest bounty, tip or payout accepted, in cents")
			fs.IntVar(&f.proposerMinPaid, "bounties-proposer-min-paid", 3, "paid bounties that make a contributor a proposer")
		},
		start: startBounties,
	})
}

// bountyServices holds each server's one bounties.Service, so the bot part (which starts
// first) and the web part reach the same value.
var bountyServices sync.Map // *Server → *bountyPart

type bountyPart struct {
	svc      *bounties.Service
	notifier *notifierSlot
	signedIn *signedInSlot
	err      error
}

// bountiesService returns the server's bounties service, creating it on first use from the
// serve flags. The web part reads through it.
func bountiesService(s *Server) (*bounties.Service, error) {
	p := bountyPartOf(s)
	return p.svc, p.err
}

func bountyPartOf(s *Server) *bountyPart {
	if v, ok := bountyServices.Load(s); ok {
		return v.(*bountyPart)
	}
	f := bountyFlags
	p := &bountyPart{notifier: &notifierSlot{}, signedIn: &signedInSlot{}}
	cfg := bounties.Config{Notifier: p.notifier, SignedIn: p.signedIn.login, WebhookSecret: f.stripeWebhookSecret, BaseURL: f.baseURL, MaxCents: f.maxCents,
		ProposerMinPaid: f.proposerMinPaid, Log: s.Log.With("part", "bounties")}
	if cfg.BaseURL == "" {
		cfg.BaseURL = s.URL
	}
	if f.stripeKey != "" {
		cfg.Stripe, p.err = bounties.NewStripe(bounties.StripeOptions{Key: f.stripeKey, APIURL: f.stripeAPIURL})
	}
	p.svc = bounties.New(s.DB, cfg)
	v, _ := bountyServices.LoadOrStore(s, p)
	return v.(*bountyPart)
}

func startBounties(s *Server) error {
	p := bountyPartOf(s)
	if p.err != nil {
		return p.err
	}
	log := s.Log.With("part", "bounties")
	if bountyFlags.stripeKey == "" {
		log.Warn("no --stripe-key: card funding, onboarding and transfers are off; approved payouts wait")
	}
	if bountyFlags.stripeWebhookSecret == "" {
		log.Warn("no --stripe-webhook-secret: /webhooks/stripe refuses every event")
	}
	p.svc.Routes(s.Router)
	if bountyFlags.tick > 0 {
		s.Workers.Add(1)
		go func() {
			defer s.Workers.Done()
			p.svc.Run(s.Ctx, bountyFlags.tick)
		}()
	}
	return nil
}

// notifierSlot forwards notices to the bot once the bot part has attached itself; before
// that (or without a bot) they are dropped, the status being rebuilt on the next change.
type notifierSlot struct {
	mu sync.RWMutex
	to bounties.Notifier
}

func (n *notifierSlot) Notify(ctx context.Context, no bounties.Notice) error {
	n.mu.RLock()
	to := n.to
	n.mu.RUnlock()
	if to == nil {
		return nil
	}
	return to.Notify(ctx, no)
}

// signedInSlot answers who is signed in on a request once the web part has said how; until
// then nobody is, and the onboarding pages refuse (a Stripe onboarding link must only reach
// the person it pays).
type signedInSlot struct {
	mu sync.RWMutex
	f  func(*http.Request) string
}

func (s *signedInSlot) login(r *http.Request) (string, bool) {
	s.mu.RLock()
	f := s.f
	s.mu.RUnlock()
	if f == nil {
		return "", false
	}
	return f(r), true
}

// bountiesSignIn tells the bounties part how to read the signed-in GitHub login from a web
// request; serve_web.go calls it with the web app's session lookup:
//
//	bountiesSignIn(s, app.SignedIn)
func bountiesSignIn(s *Server, f func(*http.Request) string) {
	p := bountyPartOf(s)
	p.signedIn.mu.Lock()
	p.signedIn.f = f
	p.signedIn.mu.Unlock()
}

// botNotifier shows bounty news in the "bounty" section of the bot's one comment per thread.
type botNotifier struct{ b *bot.Bot }

func (n botNotifier) Notify(ctx context.Context, no bounties.Notice) error {
	md := no.Markdown
	if no.Event != "" {
		md += "\n\n_Latest:_ " + strings.ReplaceAll(no.Event, "\n", " ")
	}
	return n.b.Post(ctx, no.Repo, no.Number, "bounty", md, no.AddLabels, no.RemoveLabels)
}

// bountiesForBot attaches the bot to the bounties service (its replies and labels) and
// returns what the bot calls for bounty commands. serve_bot.go calls it:
//
//	b.Bounties = bountiesForBot(s, b)
func bountiesForBot(s *Server, b *bot.Bot) bot.Bounties {
	p := bountyPartOf(s)
	p.notifier.mu.Lock()
	p.notifier.to = botNotifier{b}
	p.notifier.mu.Unlock()
	return botBounties{svc: p.svc, clientFor: b.ClientFor}
}

// botBounties adapts bounties.Service to the bot's Bounties interface: it applies the
// repository's .gradforge.yml policy, gathers the GitHub facts the claim-flood rules need,
// and turns refusals into replies.
type botBounties struct {
	svc       *bounties.Service
	clientFor func(ctx context.Context, repo string) (*github.Client, error)
}

// reply turns a bounties result into the bot's (reply, error): refusals become bot refusals
// with their sentence, anything else stays an error so the delivery is retried.
func reply(r bounties.Result, err error) (string, error) {
	var ref *bounties.Refusal
	if errors.As(err, &ref) {
		return "", bot.Refusef("%s", ref.Reason)
	}
	if err != nil {
		return "", err
	}
	return r.Message, nil
}

// policy stores the request's repository policy (from .gradforge.yml) and returns it.
func (a botBounties) policy(ctx context.Context, r bot.BountyRequest) (bounties.Policy, error) {
	p, err := a.svc.Policy(ctx, r.Repo)
	if err != nil {
		return p, err
	}
	want := p
	want.FirstPRCanClaim = !r.Policy.FirstPRCannotClaim
	want.MinAccountAgeDays = r.Policy.MinAccountAgeDays
	if r.Policy.MaxActiveAttempts > 0 {
		want.MaxActiveAttempts = r.Policy.MaxActiveAttempts
	} else {
		want.MaxActiveAttempts = bounties.DefaultPolicy.MaxActiveAttempts
	}
	want.AutoApprove = r.AutoApprove
	if want != p {
		if err := a.svc.SetPolicy(ctx, r.Repo, ".gradforge.yml", want); err != nil {
			return p, err
		}
	}
	return want, nil
}

// contributor gathers the claim-flood facts about a user; the merged-PR count is asked of
// GitHub only when the repository's policy uses it.
func (a botBounties) contributor(ctx context.Context, repo, login string, created time.Time, p bounties.Policy, excludePR int) (bounties.Contributor, error) {
	c := bounties.Contributor{Login: login, CreatedAt: created, MergedPRs: 1}
	if p.FirstPRCanClaim {
		return c, nil
	}
	gh, err := a.clientFor(ctx, repo)
	if err != nil {
		return c, err
	}
	res, _, err := gh.Search.Issues(ctx, fmt.Sprintf("repo:%s is:pr is:merged author:%s", repo, login), &github.SearchOptions{ListOptions: github.ListOptions{PerPage: 100}})
	if err != nil {
		return c, fmt.Errorf("count merged pull requests of @%s in %s: %w", login, repo, err)
	}
	n := 0
	for _, it := range res.Issues {
		if it.GetNumber() != excludePR {
			n++
		}
	}
	if res.GetTotal() > len(res.Issues) {
		n += res.GetTotal() - len(res.Issues)
	}
	c.MergedPRs = n
	return c, nil
}

// issue is the issue's title and labels for the board, best effort: when GitHub does not
// answer, the title is empty and the labels nil (which keeps the ones stored).
func (a botBounties) issue(ctx context.Context, repo string, number int) (title string, labels []string) {
	gh, err := a.clientFor(ctx, repo)
	if err != nil {
		return "", nil
	}
	owner, name, _ := strings.Cut(repo, "/")
	is, _, err := gh.Issues.Get(ctx, owner, name, number)
	if err != nil {
		return "", nil
	}
	labels = []string{}
	for _, l := range is.Labels {
		labels = append(labels, l.GetName())
	}
	return is.GetTitle(), labels
}

// IssueLabeled keeps the board's copy of an issue's labels (bot.IssueLabels).
func (a botBounties) IssueLabeled(ctx context.Context, repo string, issue int, label string, removed bool) error {
	_, err := a.svc.Relabel(ctx, bounties.LabelInput{Repo: repo, Issue: issue, Label: label, Removed: removed})
	_, err = reply(bounties.Result{}, err)
	return err
}

func (a botBounties) Bounty(ctx context.Context, r bot.BountyRequest) (string, error) {
	if _, err := a.policy(ctx, r); err != nil {
		return "", err
	}
	if r.IsPR {
		return "", bot.Refusef("bounties go on issues, not pull requests: put `/bounty $N` on the issue the work solves.")
	}
	title, labels := a.issue(ctx, r.Repo, r.Number)
	return reply(a.svc.Fund(ctx, bounties.FundInput{Repo: r.Repo, Issue: r.Number, Title: title, Labels: labels, Sponsor: r.Actor,
		AmountCents: r.Cents, FromPlatform: r.ActorMaintainer, Maintainer: r.ActorMaintainer, RequestKey: r.Key}))
}

func (a botBounties) Attempt(ctx context.Context, r bot.BountyRequest) (string, error) {
	p, err := a.policy(ctx, r)
	if err != nil {
		return "", err
	}
	who, err := a.contributor(ctx, r.Repo, r.Actor, r.ActorCreatedAt, p, 0)
	if err != nil {
		return "", err
	}
	return reply(a.svc.Attempt(ctx, bounties.AttemptInput{Repo: r.Target.Repo, Issue: r.Target.Number, Who: who}))
}

func (a botBounties) Claim(ctx context.Context, r bot.BountyRequest) (string, error) {
	if _, err := a.policy(ctx, r); err != nil {
		return "", err
	}
	if !r.IsPR || r.PR == nil {
		return "", bot.Refusef("`/claim` goes in a pull request (its description or a comment), naming the issue it solves.")
	}
	return reply(a.svc.Claim(ctx, bounties.ClaimInput{Repo: r.Repo, PR: r.Number, Issue: r.Target.Number, Author: r.PR.Author, Actor: r.Actor,
		Maintainer: r.ActorMaintainer, CoAuthors: r.PR.CoAuthors}))
}

func (a botBounties) Split(ctx context.Context, r bot.BountyRequest) (string, error) {
	if !r.IsPR || r.PR == nil {
		return "", bot.Refusef("`/split` goes on the pull request whose bounty is shared.")
	}
	return reply(a.svc.Split(ctx, bounties.SplitInput{Repo: r.Repo, PR: r.Number, Author: r.PR.Author, Actor: r.Actor, Maintainer: r.ActorMaintainer,
		Users: r.Users, CoAuthors: r.PR.CoAuthors}))
}

func (a botBounties) Tip(ctx context.Context, r bot.BountyRequest) (string, error) {
	if len(r.Users) != 1 {
		return "", bot.Refusef("tip one person at a time, like `/tip $50 @someone`.")
	}
	return reply(a.svc.Tip(ctx, bounties.TipInput{Repo: r.Repo, Number: r.Number, From: r.Actor, To: r.Users[0], AmountCents: r.Cents,
		Maintainer: r.ActorMaintainer, RequestKey: r.Key}))
}

func (a botBounties) Propose(ctx context.Context, r bot.BountyRequest) (string, error) {
	return reply(a.svc.Propose(ctx, bounties.ProposeInput{Repo: r.Repo, Issue: r.Number, Proposer: r.Actor, Title: r.Title, AmountCents: r.Cents, RequestKey: r.Key}))
}

func (a botBounties) ApprovePayout(ctx context.Context, r bot.BountyRequest) (string, error) {
	if _, err := a.policy(ctx, r); err != nil {
		return "", err
	}
	return reply(a.svc.ApprovePayout(ctx, bounties.ApproveInput{Repo: r.Repo, Number: r.Number, Actor: r.Actor, Maintainer: r.ActorMaintainer}))
}

func (a botBounties) CancelBounty(ctx context.Context, r bot.BountyRequest) (string, error) {
	return reply(a.svc.Cancel(ctx, bounties.CloseInput{Repo: r.Repo, Issue: r.Number, Actor: r.Actor, Maintainer: r.ActorMaintainer}))
}

func (a botBounties) Unlock(ctx context.Context, r bot.BountyRequest) (string, error) {
	return reply(a.svc.Unlock(ctx, bounties.LockInput{Repo: r.Target.Repo, Issue: r.Target.Number, Actor: r.Actor, Maintainer: r.ActorMaintainer}))
}

func (a botBounties) Ban(ctx context.Context, r bot.BountyRequest) (string, error) {
	if len(r.Users) != 1 {
		return "", bot.Refusef("name one person, like `/bounty-ban @spammer`.")
	}
	return reply(a.svc.Ban(ctx, bounties.BanInput{Repo: r.Repo, Login: r.Users[0], Actor: r.Actor, Maintainer: r.ActorMaintainer}))
}

func (a botBounties) Unban(ctx context.Context, r bot.BountyRequest) (string, error) {
	if len(r.Users) != 1 {
		return "", bot.Refusef("name one person, like `/bounty-unban @octocat`.")
	}
	return reply(a.svc.Ban(ctx, bounties.BanInput{Repo: r.Repo, Login: r.Users[0], Actor: r.Actor, Maintainer: r.ActorMaintainer, Lift: true}))
}

func (a botBounties) Extend(ctx context.Context, r bot.BountyRequest) (string, error) {
	return reply(a.svc.Extend(ctx, bounties.LockInput{Repo: r.Target.Repo, Issue: r.Target.Number, Actor: r.Actor, Maintainer: r.ActorMaintainer, Days: r.Days}))
}

// threadCredits lists the payouts shown on an issue or pull request in the given states: an
// issue's own, or on a pull request those of the claims it won (a bounty credit's Number is
// the bounty's issue, so the pull request is found through the claim).
func (a botBounties) threadCredits(ctx context.Context, r bot.BountyRequest, states ...string) ([]bounties.Credit, error) {
	all, err := a.svc.Payouts(ctx, r.Repo, states...)
	if err != nil {
		return nil, err
	}
	var out []bounties.Credit
	won := map[int64]bool{} // claim IDs of this pull request, looked up per bounty issue
	seen := map[int]bool{}
	for _, c := range all {
		if c.Number == r.Number {
			out = append(out, c)
			continue
		}
		if !r.IsPR || c.ClaimID == nil || c.Kind != "bounty" {
			continue
		}
		if !seen[c.Number] {
			seen[c.Number] = true
			d, err := a.svc.BountyDetail(ctx, r.Repo, c.Number)
			if err != nil && !errors.Is(err, bounties.ErrNotFound) {
				return nil, err
			}
			for _, cl := range d.Claims {
				if cl.PR == r.Number {
					won[cl.ID] = true
				}
			}
		}
		if won[*c.ClaimID] {
			out = append(out, c)
		}
	}
	return out, nil
}

// SetShares re-divides the bounty on this issue, or the one this pull request won.
func (a botBounties) SetShares(ctx context.Context, r bot.BountyRequest) (string, error) {
	issue := r.Number
	if r.IsPR {
		cs, err := a.threadCredits(ctx, r, bounties.CreditAwaiting)
		if err != nil {
			return "", err
		}
		if len(cs) == 0 {
			return "", bot.Refusef("this pull request has no payout awaiting approval to divide.")
		}
		issue = cs[0].Number
	}
	return reply(a.svc.SetShares(ctx, bounties.SharesInput{Repo: r.Repo, Issue: issue, Actor: r.Actor, Maintainer: r.ActorMaintainer, Shares: r.Shares}))
}

// RetryPayout retries every failed payout shown on the thread, saying what each did.
func (a botBounties) RetryPayout(ctx context.Context, r bot.BountyRequest) (string, error) {
	if !r.ActorMaintainer {
		return "", bot.Refusef("only maintainers may retry a payout.")
	}
	cs, err := a.threadCredits(ctx, r, bounties.CreditFailed)
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "", bot.Refusef("there is no failed payout on %s#%d to retry.", r.Repo, r.Number)
	}
	var msgs []string
	for _, c := range cs {
		msg, err := reply(a.svc.Retry(ctx, bounties.RetryInput{CreditID: c.ID, Actor: r.Actor, Maintainer: r.ActorMaintainer}))
		if errors.Is(err, bot.ErrRefused) {
			msg, err = err.Error(), nil // e.g. retried meanwhile by someone else
		}
		if err != nil {
			return "", fmt.Errorf("retry payout %d: %w", c.ID, err)
		}
		msgs = append(msgs, fmt.Sprintf("@%s's %s: %s", c.Recipient, bounties.Cents(c.AmountCents), msg))
	}
	return strings.Join(msgs, " "), nil
}

// PullClosed settles a closed pull request's claims.
func (a botBounties) PullClosed(ctx context.Context, pr bot.PullRequest) error {
	p, err := a.svc.Policy(ctx, pr.Repo)
	if err != nil {
		return err
	}
	if pr.Config != nil {
		if p, err = a.policy(ctx, bot.BountyRequest{Repo: pr.Repo, Policy: pr.Config.Bounties, AutoApprove: pr.Config.AutoApprovePayouts}); err != nil {
			return err
		}
	}
	who := bounties.Contributor{Login: pr.Author, CreatedAt: pr.AuthorCreatedAt, MergedPRs: 1}
	if pr.Merged {
		if who, err = a.contributor(ctx, pr.Repo, pr.Author, pr.AuthorCreatedAt, p, pr.Number); err != nil {
			return err
		}
	}
	_, err = a.svc.OnMerged(ctx, bounties.MergedPR{Repo: pr.Repo, Number: pr.Number, Merged: pr.Merged, Author: who, CoAuthors: pr.CoAuthors})
	return err
}
