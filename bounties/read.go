package bounties

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Read functions for the web app. They return plain structs and paginate where lists grow.
// Amounts come from the ledger or the credits, except a bounty's pool, which is the
// bounties.pool_cents that every ledger post keeps equal to the ledger (and Audit checks), so
// the board can sort and filter by it through an index.

// BoardQuery filters, sorts and pages the bounty board.
type BoardQuery struct {
	Repo string
	// State is one bounty state, "all", or "" for open.
	State string
	// Label keeps bounties whose issue carries this label (any case).
	Label string
	// Search keeps bounties whose title or repository contains every word (case-insensitive),
	// or whose issue number is the search.
	Search             string
	MinCents, MaxCents int64 // 0: no bound
	// Sort is "amount" (largest pool first, the default), "newest" (or "new"), "oldest" (or
	// "age") or "expiring".
	Sort    string
	Page    int // 1-based; default 1
	PerPage int // default 25, at most 100
	// Offset, when set, replaces Page: skip that many bounties.
	Offset int
}

// BoardPage is one page of the board.
type BoardPage struct {
	Items   []Bounty
	Total   int64
	Page    int
	PerPage int
}

// Board lists bounties for the public board.
func (s *Service) Board(ctx context.Context, q BoardQuery) (BoardPage, error) {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PerPage < 1 {
		q.PerPage = 25
	}
	q.PerPage = min(q.PerPage, 100)
	where, args := []string{"1 = 1"}, []any{}
	switch q.State {
	case "":
		where = append(where, "b.state = 'open'")
	case "all":
	case BountyOpen, BountyClaimed, BountyPaid, BountyCancelled, BountyExpired:
		where, args = append(where, "b.state = ?"), append(args, q.State)
	default:
		return BoardPage{}, refuse(ErrBadInput, "unknown bounty state %q", q.State)
	}
	if q.Repo != "" {
		where, args = append(where, "b.repo = ?"), append(args, q.Repo)
	}
	if l := strings.TrimSpace(q.Label); l != "" {
		where, args = append(where, "EXISTS (SELECT 1 FROM bounty_issue_labels l WHERE l.repo = b.repo AND l.issue = b.issue AND l.folded = ?)"), append(args, strings.ToLower(l))
	}
	if t := strings.TrimSpace(strings.TrimPrefix(q.Search, "#")); t != "" {
		words := []string{}
		for _, w := range strings.Fields(strings.ToLower(t)) {
			like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(w) + "%"
			words, args = append(words, `(LOWER(b.title) LIKE ? ESCAPE '\' OR LOWER(b.repo) LIKE ? ESCAPE '\')`), append(args, like, like)
		}
		where, args = append(where, `((`+strings.Join(words, " AND ")+`) OR CAST(b.issue AS TEXT) = ?)`), append(args, t)
	}
	if q.MinCents > 0 {
		where, args = append(where, "b.pool_cents >= ?"), append(args, q.MinCents)
	}
	if q.MaxCents > 0 {
		where, args = append(where, "b.pool_cents <= ?"), append(args, q.MaxCents)
	}
	order := "b.pool_cents DESC, b.id DESC"
	switch q.Sort {
	case "", "amount":
	case "newest", "new":
		order = "b.created_at DESC, b.id DESC"
	case "oldest", "age":
		order = "b.created_at ASC, b.id ASC"
	case "expiring":
		order = "CASE WHEN b.expires_at IS NULL THEN 1 ELSE 0 END, b.expires_at ASC, b.id ASC"
	default:
		return BoardPage{}, refuse(ErrBadInput, "unknown sort %q: use amount, newest, oldest or expiring", q.Sort)
	}
	cond := strings.Join(where, " AND ")
	db := s.db.WithContext(ctx)
	page := BoardPage{Page: q.Page, PerPage: q.PerPage}
	if err := db.Raw(`SELECT COUNT(*) FROM bounties b WHERE `+cond, args...).Scan(&page.Total).Error; err != nil {
		return page, fmt.Errorf("count board: %w", err)
	}
	offset := (q.Page - 1) * q.PerPage
	if q.Offset > 0 {
		offset = q.Offset
	}
	err := db.Raw(`SELECT b.* FROM bounties b WHERE `+cond+` ORDER BY `+order+` LIMIT ? OFFSET ?`, append(args, q.PerPage, offset)...).Scan(&page.Items).Error
	if err != nil {
		return page, fmt.Errorf("list board: %w", err)
	}
	return page, withLabels(db, page.Items)
}

// withLabels adds each bounty's issue labels, with one query for the whole list.
func withLabels(db *gorm.DB, bs []Bounty) error {
	if len(bs) == 0 {
		return nil
	}
	repos, issues := make([]string, len(bs)), make([]int, len(bs))
	for i, b := range bs {
		repos[i], issues[i] = b.Repo, b.Issue
	}
	var labels []struct {
		Repo  string
		Issue int
		Name  string
	}
	if err := db.Raw(`SELECT repo, issue, name FROM bounty_issue_labels WHERE repo IN ? AND issue IN ? ORDER BY folded`, repos, issues).Scan(&labels).Error; err != nil {
		return fmt.Errorf("labels of %d bounties: %w", len(bs), err)
	}
	for i := range bs {
		for _, l := range labels {
			if l.Repo == bs[i].Repo && l.Issue == bs[i].Issue {
				bs[i].Labels = append(bs[i].Labels, l.Name)
			}
		}
	}
	return nil
}

// Detail is a bounty with everything that happened to it.
type Detail struct {
	Bounty   Bounty
	Fundings []Funding
	Attempts []Attempt
	Claims   []Claim
	Credits  []Credit
	// History is every event, oldest first: who did what, when.
	History []Event
}

// BountyDetail returns an issue's latest bounty with its history.
func (s *Service) BountyDetail(ctx context.Context, repo string, issue int) (Detail, error) {
	db := s.db.WithContext(ctx)
	var d Detail
	b, err := liveBounty(db, repo, issue)
	if err != nil {
		return d, err
	}
	bs := []Bounty{b}
	if err := withLabels(db, bs); err != nil {
		return d, err
	}
	d.Bounty = bs[0]
	if err := db.Raw(`SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_fundings WHERE bounty_id = ? AND state = 'pending'`, b.ID).Scan(&d.Bounty.PledgedCents).Error; err != nil {
		return d, fmt.Errorf("pledges of bounty %d: %w", b.ID, err)
	}
	for _, q := range []struct {
		sql  string
		into any
	}{
		{`SELECT * FROM bounty_fundings WHERE bounty_id = ? ORDER BY id`, &d.Fundings},
		{`SELECT * FROM bounty_attempts WHERE bounty_id = ? ORDER BY id`, &d.Attempts},
		{`SELECT * FROM bounty_claims WHERE bounty_id = ? ORDER BY id`, &d.Claims},
		{`SELECT * FROM bounty_credits WHERE bounty_id = ? ORDER BY id`, &d.Credits},
		{`SELECT * FROM bounty_events WHERE bounty_id = ? ORDER BY id`, &d.History},
	} {
		if err := db.Raw(q.sql, b.ID).Scan(q.into).Error; err != nil {
			return d, fmt.Errorf("detail of bounty %d: %w", b.ID, err)
		}
	}
	return d, nil
}

// LeaderRow is one person on the leaderboard.
type LeaderRow struct {
	Login        string
	PaidCents    int64
	PaidBounties int64
	Tips         int64
	Stage        string
}

// Leaderboard ranks people by money paid to them (reversed transfers excluded) since a time
// (zero: all time).
func (s *Service) Leaderboard(ctx context.Context, since time.Time, limit int) ([]LeaderRow, error) {
	if limit < 1 || limit > 500 {
		limit = 50
	}
	var rows []LeaderRow
	err := s.db.WithContext(ctx).Raw(`SELECT c.recipient AS login, SUM(c.amount_cents) AS paid_cents,
		COUNT(DISTINCT c.bounty_id) AS paid_bounties, SUM(CASE WHEN c.kind = 'tip' THEN 1 ELSE 0 END) AS tips,
		COALESCE(MAX(p.stage), 'contributor') AS stage
		FROM bounty_credits c LEFT JOIN bounty_people p ON p.login = c.recipient
		WHERE c.state = 'paid' AND c.paid_at >= ? GROUP BY c.recipient ORDER BY paid_cents DESC, login LIMIT ?`, since.UTC(), limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("leaderboard: %w", err)
	}
	return rows, nil
}

// Profile is a contributor's public record. Offers are not in it (see Offers).
type Profile struct {
	Login        string
	Stage        string
	Candidate    bool
	PaidCents    int64 // from the ledger: what left through Stripe to them
	OwedCents    int64 // from the ledger: approved, not yet transferred
	PaidBounties int64
	Onboarded    bool // Stripe payouts enabled
	Credits      []Credit
	Attempts     []Attempt
	Claims       []Claim
	Proposals    []Proposal
	StageEvents  []StageEvent
}

// Profile returns a contributor's record, stage and history.
func (s *Service) Profile(ctx context.Context, who string) (Profile, error) {
	l, err := login(who)
	if err != nil {
		return Profile{}, err
	}
	db := s.db.WithContext(ctx)
	p := Profile{Login: l}
	r, err := recordOf(db, l)
	if err != nil {
		return p, err
	}
	p.Stage, p.Candidate, p.PaidBounties = s.stageFor(r), r.Candidate, r.PaidBounties
	if p.PaidCents, err = balance(db, acctPaid(l)); err != nil {
		return p, err
	}
	if p.OwedCents, err = balance(db, acctPayable(l)); err != nil {
		return p, err
	}
	if a, err := accountOf(db, l); err != nil {
		return p, err
	} else if a != nil {
		p.Onboarded = a.PayoutsEnabled
	}
	for _, q := range []struct {
		sql  string
		into any
	}{
		{`SELECT * FROM bounty_credits WHERE recipient = ? ORDER BY id DESC`, &p.Credits},
		{`SELECT * FROM bounty_attempts WHERE login = ? ORDER BY id DESC`, &p.Attempts},
		{`SELECT * FROM bounty_claims WHERE author = ? ORDER BY id DESC`, &p.Claims},
		{`SELECT * FROM bounty_proposals WHERE proposer = ? ORDER BY id DESC`, &p.Proposals},
		{`SELECT * FROM bounty_stage_events WHERE login = ? ORDER BY id`, &p.StageEvents},
	} {
		if err := db.Raw(q.sql, l).Scan(q.into).Error; err != nil {
			return p, fmt.Errorf("profile of @%s: %w", l, err)
		}
	}
	return p, nil
}

// Payouts lists credits in the given states (none: awaiting approval) for a repository (""
// for all), oldest first: the maintainer console's approval queue.
func (s *Service) Payouts(ctx context.Context, repo string, states ...string) ([]Credit, error) {
	if len(states) == 0 {
		states = []string{CreditAwaiting}
	}
	q := s.db.WithContext(ctx).Table("bounty_credits").Where("state IN ?", states)
	if repo != "" {
		q = q.Where("repo = ?", repo)
	}
	var out []Credit
	if err := q.Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("payouts: %w", err)
	}
	return out, nil
}

// Proposals lists a repository's ("" for all) proposals in a state ("" for pending), oldest
// first.
func (s *Service) Proposals(ctx context.Context, repo, state string) ([]Proposal, error) {
	if state == "" {
		state = "pending"
	}
	var out []Proposal
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_proposals WHERE state = ? AND (? = '' OR repo = ?) ORDER BY id`, state, repo, repo).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("proposals: %w", err)
	}
	return out, nil
}

// Person is one card on the pipeline board.
type Person struct {
	Login        string
	Stage        string
	StageAt      time.Time
	PaidBounties int64
	PaidCents    int64
	Candidate    bool
}

// Pipeline returns everyone in the hiring pipeline grouped by stage (every stage present as
// a key), most paid first within a stage.
func (s *Service) Pipeline(ctx context.Context) (map[string][]Person, error) {
	var ps []Person
	err := s.db.WithContext(ctx).Raw(`SELECT p.login, p.stage, p.stage_at, p.candidate,
		(SELECT COUNT(DISTINCT bounty_id) FROM bounty_credits c WHERE c.recipient = p.login AND c.kind = 'bounty' AND c.state = 'paid') AS paid_bounties,
		(SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_credits c WHERE c.recipient = p.login AND c.state = 'paid') AS paid_cents
		FROM bounty_people p ORDER BY paid_cents DESC, p.login`).Scan(&ps).Error
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	out := map[string][]Person{}
	for _, st := range Stages {
		out[st] = nil
	}
	for _, p := range ps {
		out[p.Stage] = append(out[p.Stage], p)
	}
	return out, nil
}

// MonthTotal is money paid out in one calendar month (UTC).
type MonthTotal struct {
	Month   string // "2026-11"
	Cents   int64
	Payouts int
}

// PaidByMonth totals credits paid in a repository ("" for all) per month for the last n
// months, oldest first, with empty months included so charts have no gaps.
func (s *Service) PaidByMonth(ctx context.Context, repo string, months int) ([]MonthTotal, error) {
	if months < 1 || months > 120 {
		months = 12
	}
	now := s.now()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -(months - 1), 0)
	var rows []struct {
		PaidAt      time.Time
		AmountCents int64
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT paid_at, amount_cents FROM bounty_credits WHERE state = 'paid' AND paid_at >= ? AND (? = '' OR repo = ?)`, start, repo, repo).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("paid by month: %w", err)
	}
	out := make([]MonthTotal, months)
	idx := map[string]int{}
	for i := range out {
		m := start.AddDate(0, i, 0).Format("2006-01")
		out[i].Month, idx[m] = m, i
	}
	for _, r := range rows {
		if i, ok := idx[r.PaidAt.UTC().Format("2006-01")]; ok {
			out[i].Cents += r.AmountCents
			out[i].Payouts++
		}
	}
	return out, nil
}

// Events lists the newest events across all bounties (an activity feed).
func (s *Service) Events(ctx context.Context, limit int) ([]Event, error) {
	if limit < 1 || limit > 500 {
		limit = 50
	}
	var out []Event
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_events ORDER BY id DESC LIMIT ?`, limit).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}

// OpenTotal is the money in a repository's open bounties and how many there are, for its
// badge.
func (s *Service) OpenTotal(ctx context.Context, repo string) (int64, int, error) {
	var r struct {
		Cents int64
		N     int
	}
	err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(SUM(pool_cents), 0) AS cents, COUNT(*) AS n FROM bounties WHERE repo = ? AND state = 'open'`, repo).Scan(&r).Error
	if err != nil {
		return 0, 0, fmt.Errorf("open total of %s: %w", repo, err)
	}
	return r.Cents, r.N, nil
}

// Repos lists the repositories that have ever had a bounty, alphabetically.
func (s *Service) Repos(ctx context.Context) ([]string, error) {
	var out []string
	if err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT repo FROM bounties ORDER BY repo`).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("bounty repositories: %w", err)
	}
	return out, nil
}
