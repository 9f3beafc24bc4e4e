package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gradforge/gradforge/bounties"
)

// BountySource fits the bounties package to Bounties, Console and Settings. Every amount
// comes from the bounties package's ledger reads; nothing is recomputed here.
type BountySource struct{ S *bounties.Service }

// bountiesErr maps the bounties package's sentinels to the web app's answers: its refusal
// sentences are meant for people, so bad input and refusals show them as they are.
func bountiesErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bounties.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, bounties.ErrForbidden):
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	case errors.Is(err, bounties.ErrBadInput), errors.Is(err, bounties.ErrRefused):
		return BadInput("%s", bounties.Reason(err))
	}
	return err
}

func bountyOf(b bounties.Bounty) Bounty {
	return Bounty{ID: b.ID, Repo: b.Repo, Issue: b.Issue, Title: b.Title, Labels: b.Labels, AmountCents: b.PoolCents, Status: b.State, CreatedAt: b.CreatedAt}
}

// FiltersLabels is true: the bounties package keeps each issue's labels as GitHub reports them.
func (s BountySource) FiltersLabels() bool { return true }

func payoutOf(c bounties.Credit) Payout {
	p := Payout{ID: c.ID, Repo: c.Repo, Issue: c.Number, Login: c.Recipient, AmountCents: c.AmountCents, Status: c.State, Reason: c.Failure, CreatedAt: c.CreatedAt}
	if c.PaidAt != nil {
		p.CreatedAt = *c.PaidAt
	}
	if c.Kind == "tip" {
		p.Title = "Tip"
	}
	return p
}

// List is one page of the board.
func (s BountySource) List(ctx context.Context, f BountyFilter) ([]Bounty, int, error) {
	state := f.Status
	if state == "" {
		state = "all"
	}
	sort := map[string]string{"amount": "amount", "new": "newest", "age": "oldest"}[f.Sort]
	page, err := s.S.Board(ctx, bounties.BoardQuery{Repo: f.Repo, Label: f.Label, State: state, Search: f.Query, MinCents: f.MinCents, MaxCents: f.MaxCents, Sort: sort, PerPage: f.Limit, Offset: f.Offset})
	if err != nil {
		return nil, 0, bountiesErr(err)
	}
	out := make([]Bounty, len(page.Items))
	for i, b := range page.Items {
		out[i] = bountyOf(b)
	}
	return out, int(page.Total), nil
}

// Get is a bounty with its sponsors, attempts, claims, payouts and history.
func (s BountySource) Get(ctx context.Context, repo string, issue int) (Bounty, error) {
	d, err := s.S.BountyDetail(ctx, repo, issue)
	if err != nil {
		return Bounty{}, bountiesErr(err)
	}
	b := bountyOf(d.Bounty)
	for _, f := range d.Fundings {
		if f.State == bounties.FundingFunded {
			b.Sponsors = append(b.Sponsors, Sponsor{Login: f.Sponsor, AmountCents: f.AmountCents, At: f.CreatedAt})
		}
	}
	for _, a := range d.Attempts {
		b.Attempts = append(b.Attempts, Attempt{Login: a.Login, StartedAt: a.StartedAt, ExpiresAt: a.ExpiresAt, Active: a.State == bounties.AttemptActive})
	}
	for _, c := range d.Claims {
		b.Claims = append(b.Claims, Claim{PR: c.PR, Author: c.Author, Status: c.State, Reason: c.Reason})
	}
	for _, c := range d.Credits {
		p := payoutOf(c)
		p.Title = b.Title
		b.Payouts = append(b.Payouts, p)
	}
	for _, e := range d.History {
		b.History = append(b.History, Event{At: e.CreatedAt, Text: e.Message}) // the message names its actor
	}
	return b, nil
}

// Leaderboard ranks people by money paid, all time.
func (s BountySource) Leaderboard(ctx context.Context, limit int) ([]Leader, error) {
	rows, err := s.S.Leaderboard(ctx, time.Time{}, limit)
	if err != nil {
		return nil, bountiesErr(err)
	}
	out := make([]Leader, len(rows))
	for i, r := range rows {
		out[i] = Leader{Login: r.Login, PaidCents: r.PaidCents, Bounties: int(r.PaidBounties)}
	}
	return out, nil
}

// Contributor is a person's public record: no offers.
func (s BountySource) Contributor(ctx context.Context, login string) (Contributor, error) {
	p, err := s.S.Profile(ctx, login)
	if err != nil {
		return Contributor{}, bountiesErr(err)
	}
	c := Contributor{Login: p.Login, Stage: p.Stage, PaidCents: p.PaidCents}
	for _, cr := range p.Credits {
		if cr.State == bounties.CreditPaid {
			c.Paid = append(c.Paid, payoutOf(cr))
		}
	}
	if err := s.titles(ctx, c.Paid); err != nil {
		return c, err
	}
	for _, pr := range p.Proposals {
		c.Proposals = append(c.Proposals, proposalOf(pr))
	}
	for _, e := range p.StageEvents {
		c.History = append(c.History, Event{At: e.CreatedAt, Actor: e.Actor, Text: fmt.Sprintf("%s → %s: %s", stageName(e.FromStage), stageName(e.ToStage), e.Reason)})
	}
	return c, nil
}

func proposalOf(p bounties.Proposal) Proposal {
	return Proposal{ID: p.ID, Repo: p.Repo, Login: p.Proposer, Title: p.Title, AmountCents: p.AmountCents, Status: p.State, Reason: p.Reason, CreatedAt: p.CreatedAt}
}

// PaidPerMonth is the last two years, empty months included.
func (s BountySource) PaidPerMonth(ctx context.Context, repo string) ([]MonthTotal, error) {
	ms, err := s.S.PaidByMonth(ctx, repo, 24)
	if err != nil {
		return nil, bountiesErr(err)
	}
	// Leading empty months say nothing; start at the first month with money.
	for len(ms) > 1 && ms[0].Cents == 0 {
		ms = ms[1:]
	}
	out := make([]MonthTotal, 0, len(ms))
	for _, m := range ms {
		t, err := time.Parse("2006-01", m.Month)
		if err != nil {
			return nil, fmt.Errorf("paid per month: month %q: %w", m.Month, err)
		}
		out = append(out, MonthTotal{Month: t, Cents: m.Cents})
	}
	return out, nil
}

// OpenTotal is the money on a repository's open bounties.
func (s BountySource) OpenTotal(ctx context.Context, repo string) (int64, int, error) {
	c, n, err := s.S.OpenTotal(ctx, repo)
	return c, n, bountiesErr(err)
}

// Repos lists repositories that have had bounties.
func (s BountySource) Repos(ctx context.Context) ([]string, error) {
	r, err := s.S.Repos(ctx)
	return r, bountiesErr(err)
}

// AwaitingPayouts is the repository's approval queue.
func (s BountySource) AwaitingPayouts(ctx context.Context, repo string) ([]Payout, error) {
	cs, err := s.S.Payouts(ctx, repo)
	if err != nil {
		return nil, bountiesErr(err)
	}
	out := make([]Payout, len(cs))
	for i, c := range cs {
		out[i] = payoutOf(c)
	}
	return out, s.titles(ctx, out)
}

// titles fills in the bounty titles of payouts (credits carry only the issue number), one
// look-up per distinct issue and at most maxTitleLookups of them; the rest show repo#number.
func (s BountySource) titles(ctx context.Context, ps []Payout) error {
	const maxTitleLookups = 50
	seen := map[string]string{}
	for i, p := range ps {
		if p.Title != "" {
			continue
		}
		key := fmt.Sprintf("%s#%d", p.Repo, p.Issue)
		t, ok := seen[key]
		if !ok && len(seen) < maxTitleLookups {
			d, err := s.S.BountyDetail(ctx, p.Repo, p.Issue)
			switch {
			case err == nil:
				t = d.Bounty.Title
			case !errors.Is(err, bounties.ErrNotFound):
				return bountiesErr(err)
			}
			seen[key] = t
		}
		ps[i].Title = t
	}
	return nil
}

// creditIn checks that a credit belongs to the repository whose console acts on it, so a
// maintainer of one repository cannot approve another's payouts by editing the URL.
func (s BountySource) creditIn(ctx context.Context, repo string, id int64) error {
	cs, err := s.S.Payouts(ctx, repo, bounties.CreditAwaiting, bounties.CreditApproved, bounties.CreditTransferring,
		bounties.CreditPaid, bounties.CreditFailed, bounties.CreditReversed, bounties.CreditDeclined)
	if err != nil {
		return bountiesErr(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return nil
		}
	}
	return fmt.Errorf("payout %d in %s: %w", id, repo, ErrNotFound)
}

// ApprovePayout approves one credit of the repository.
func (s BountySource) ApprovePayout(ctx context.Context, repo string, id int64, by string) error {
	if err := s.creditIn(ctx, repo, id); err != nil {
		return err
	}
	_, err := s.S.ApproveCredit(ctx, id, by, true)
	return bountiesErr(err)
}

// DeclinePayout declines one credit of the repository, with the reason the contributor reads.
func (s BountySource) DeclinePayout(ctx context.Context, repo string, id int64, by, reason string) error {
	if err := s.creditIn(ctx, repo, id); err != nil {
		return err
	}
	_, err := s.S.DeclinePayout(ctx, bounties.DeclineInput{CreditID: id, Actor: by, Maintainer: true, Reason: reason})
	return bountiesErr(err)
}

// Proposals is the repository's pending proposals.
func (s BountySource) Proposals(ctx context.Context, repo string) ([]Proposal, error) {
	ps, err := s.S.Proposals(ctx, repo, "")
	if err != nil {
		return nil, bountiesErr(err)
	}
	out := make([]Proposal, len(ps))
	for i, p := range ps {
		out[i] = proposalOf(p)
	}
	return out, nil
}

func (s BountySource) decide(ctx context.Context, repo string, id int64, by string, accept bool, reason string) error {
	ps, err := s.S.Proposals(ctx, repo, "")
	if err != nil {
		return bountiesErr(err)
	}
	found := false
	for _, p := range ps {
		found = found || p.ID == id
	}
	if !found {
		return fmt.Errorf("pending proposal %d in %s: %w", id, repo, ErrNotFound)
	}
	_, err = s.S.DecideProposal(ctx, bounties.DecideInput{ID: id, Actor: by, Maintainer: true, Accept: accept, Reason: reason})
	return bountiesErr(err)
}

// AcceptProposal turns a pending proposal of the repository into a bounty.
func (s BountySource) AcceptProposal(ctx context.Context, repo string, id int64, by string) error {
	return s.decide(ctx, repo, id, by, true, "")
}

// DeclineProposal declines a pending proposal of the repository with a reason.
func (s BountySource) DeclineProposal(ctx context.Context, repo string, id int64, by, reason string) error {
	return s.decide(ctx, repo, id, by, false, reason)
}

// Pipeline is everyone with a record, with whether they have a live offer.
func (s BountySource) Pipeline(ctx context.Context) ([]PipelineEntry, error) {
	by, err := s.S.Pipeline(ctx)
	if err != nil {
		return nil, bountiesErr(err)
	}
	var out []PipelineEntry
	for _, st := range bounties.Stages {
		for _, p := range by[st] {
			e := PipelineEntry{Login: p.Login, Stage: p.Stage, PaidCents: p.PaidCents, Bounties: int(p.PaidBounties)}
			if st == bounties.StageCandidate || st == bounties.StageHired {
				o, err := s.Offer(ctx, p.Login, "", true)
				if err != nil {
					return nil, err
				}
				e.HasOffer = o != nil
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// Offer is the person's newest offer that is not withdrawn or declined.
func (s BountySource) Offer(ctx context.Context, login, viewer string, viewerMaintainer bool) (*Offer, error) {
	os, err := s.S.Offers(ctx, viewer, viewerMaintainer, login)
	if err != nil {
		return nil, bountiesErr(err)
	}
	var best *bounties.Offer
	for i, o := range os {
		if (o.State == "offered" || o.State == "accepted") && (best == nil || o.ID > best.ID) {
			best = &os[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	stipend := best.StipendCents
	if best.StipendPeriod == "year" {
		stipend /= 12
	}
	return &Offer{Login: best.Login, StipendCents: stipend, EquityBps: best.EquityBps, VestingStart: best.VestingStart, CliffMonths: best.CliffMonths,
		VestingMonths: best.VestingMonths, RecordedBy: best.CreatedBy, RecordedAt: best.CreatedAt}, nil
}

// RecordOffer records a monthly-stipend offer.
func (s BountySource) RecordOffer(ctx context.Context, o Offer) error {
	_, err := s.S.RecordOffer(ctx, bounties.OfferInput{Login: o.Login, Actor: o.RecordedBy, Maintainer: true, StipendCents: o.StipendCents, StipendPeriod: "month",
		EquityBps: o.EquityBps, VestingStart: o.VestingStart, CliffMonths: o.CliffMonths, VestingMonths: o.VestingMonths})
	return bountiesErr(err)
}

// MarkCandidate marks a person as a hiring candidate.
func (s BountySource) MarkCandidate(ctx context.Context, login, by string) error {
	_, err := s.S.MarkCandidate(ctx, bounties.CandidateInput{Login: login, Actor: by, Maintainer: true})
	return bountiesErr(err)
}

// Load is the repository's bounty policy.
func (s BountySource) Load(ctx context.Context, repo string) (RepoSettings, error) {
	p, err := s.S.Policy(ctx, repo)
	if err != nil {
		return RepoSettings{}, bountiesErr(err)
	}
	return RepoSettings{Repo: repo, AutoApprove: p.AutoApprove, FirstPRCanClaim: p.FirstPRCanClaim, MaxActiveAttempts: p.MaxActiveAttempts,
		MinAccountAgeDays: p.MinAccountAgeDays, AttemptDays: p.AttemptDays, BountyDays: p.BountyDays}, nil
}

// Save stores the repository's bounty policy.
func (s BountySource) Save(ctx context.Context, r RepoSettings, by string) error {
	return bountiesErr(s.S.SetPolicy(ctx, r.Repo, by, bounties.Policy{AutoApprove: r.AutoApprove, FirstPRCanClaim: r.FirstPRCanClaim,
		MaxActiveAttempts: r.MaxActiveAttempts, MinAccountAgeDays: r.MinAccountAgeDays, AttemptDays: r.AttemptDays, BountyDays: r.BountyDays}))
}
