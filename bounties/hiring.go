package bounties

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Stages of the hiring pipeline, in order. A person's stage is computed from their record —
// paid bounties, a maintainer's candidate mark, an accepted offer — never set by hand, and
// each change is kept as a StageEvent with who caused it and when.
const (
	StageContributor = "contributor"
	StageHunter      = "hunter"   // at least one paid bounty
	StageProposer    = "proposer" // ProposerMinPaid paid bounties: may /propose bounties
	StageCandidate   = "candidate"
	StageHired       = "hired"
)

// Stages lists the stages in pipeline order.
var Stages = []string{StageContributor, StageHunter, StageProposer, StageCandidate, StageHired}

func stageRank(s string) int {
	for i, x := range Stages {
		if x == s {
			return i
		}
	}
	return -1
}

// StageEvent is one change of a person's stage.
type StageEvent struct {
	ID        int64
	Login     string
	FromStage string
	ToStage   string
	Actor     string
	Reason    string
	CreatedAt time.Time
}

// record is what a stage is computed from.
type record struct {
	PaidBounties      int64
	AcceptedProposals int64
	Candidate         bool
	Hired             bool
}

func recordOf(tx *gorm.DB, l string) (record, error) {
	var r record
	err := tx.Raw(`SELECT
		(SELECT COUNT(DISTINCT bounty_id) FROM bounty_credits WHERE recipient = ? AND kind = 'bounty' AND state = 'paid') AS paid_bounties,
		(SELECT COUNT(*) FROM bounty_proposals WHERE proposer = ? AND state = 'accepted') AS accepted_proposals,
		COALESCE((SELECT candidate FROM bounty_people WHERE login = ?), FALSE) AS candidate,
		EXISTS (SELECT 1 FROM bounty_offers WHERE login = ? AND state = 'accepted') AS hired`, l, l, l, l).Scan(&r).Error
	if err != nil {
		return r, fmt.Errorf("record of @%s: %w", l, err)
	}
	return r, nil
}

// stageFor computes a stage from a record.
func (s *Service) stageFor(r record) string {
	min := int64(s.cfg.ProposerMinPaid)
	switch {
	case r.Hired:
		return StageHired
	case r.Candidate:
		return StageCandidate
	case r.PaidBounties >= min:
		return StageProposer
	case r.PaidBounties >= 1:
		return StageHunter
	}
	return StageContributor
}

// recomputeStage recomputes a person's stage and, when it changed, records the change with
// the actor ("" for the system) and the reason.
func (s *Service) recomputeStage(tx *gorm.DB, l, actor, reason string) error {
	r, err := recordOf(tx, l)
	if err != nil {
		return err
	}
	to := s.stageFor(r)
	var cur []string
	if err := tx.Raw(`SELECT stage FROM bounty_people WHERE login = ?`, l).Scan(&cur).Error; err != nil {
		return fmt.Errorf("stage of @%s: %w", l, err)
	}
	from := StageContributor
	if len(cur) > 0 {
		from = cur[0]
	}
	now := s.now()
	if len(cur) == 0 {
		if err := tx.Exec(`INSERT INTO bounty_people (login, stage, stage_at) VALUES (?, ?, ?) ON CONFLICT (login) DO NOTHING`, l, StageContributor, now).Error; err != nil {
			return fmt.Errorf("add @%s to the pipeline: %w", l, err)
		}
	}
	if from == to {
		return nil
	}
	if n, err := exec(tx, `UPDATE bounty_people SET stage = ?, stage_at = ? WHERE login = ? AND stage = ?`, to, now, l, from); err != nil || n == 0 {
		return fmt.Errorf("move @%s from %s to %s (changed %d): %w", l, from, to, n, err)
	}
	return tx.Exec(`INSERT INTO bounty_stage_events (login, from_stage, to_stage, actor, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)`, l, from, to, actor, reason, now).Error
}

// ProposeInput is /propose $N title by a proposer: a bounty they think should exist.
type ProposeInput struct {
	Repo        string
	Issue       int
	Proposer    string
	Title       string
	AmountCents int64
	RequestKey  string
}

// Propose records a proposal for maintainers to accept or decline. Only people at the
// proposer stage or beyond may propose.
func (s *Service) Propose(ctx context.Context, in ProposeInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	who, err := login(in.Proposer)
	if err != nil {
		return Result{}, err
	}
	if in.Issue <= 0 {
		return Result{}, refuse(ErrBadInput, "a proposal goes on an issue, not #%d", in.Issue)
	}
	title := strings.TrimSpace(in.Title)
	if title == "" || len(title) > 200 {
		return Result{}, refuse(ErrBadInput, "a proposal needs a title of 1 to 200 characters: /propose $N what should be built")
	}
	if err := s.checkAmount(in.AmountCents); err != nil {
		return Result{}, err
	}
	if strings.TrimSpace(in.RequestKey) == "" {
		return Result{}, refuse(ErrBadInput, "a proposal needs a request key so a retry cannot propose twice")
	}
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		r, err := recordOf(tx, who)
		if err != nil {
			return err
		}
		if stage := s.stageFor(r); stageRank(stage) < stageRank(StageProposer) {
			return refuse(ErrRefused, "@%s is a %s with %d paid bounty(ies); proposing bounties opens at %d paid bounties", who, stage, r.PaidBounties, s.cfg.ProposerMinPaid)
		}
		n, err := exec(tx, `INSERT INTO bounty_proposals (repo, issue, proposer, title, amount_cents, state, request_key, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (request_key) DO NOTHING`,
			in.Repo, in.Issue, who, title, in.AmountCents, in.RequestKey, now)
		if err != nil {
			return fmt.Errorf("record proposal: %w", err)
		}
		res = Result{Changed: n > 0, Message: fmt.Sprintf("@%s proposes a %s bounty on %s#%d: %q. Maintainers can accept or decline it.", who, Cents(in.AmountCents), in.Repo, in.Issue, title)}
		if n == 0 {
			res.Message = "This proposal was already recorded."
			return nil
		}
		o.add(in.Repo, in.Issue, res.Message)
		return event(tx, now, nil, in.Repo, in.Issue, "propose", who, who, res.Message)
	})
	return res, err
}

// Proposal is a proposed bounty.
type Proposal struct {
	ID          int64
	Repo        string
	Issue       int
	Proposer    string
	Title       string
	AmountCents int64
	State       string
	DecidedBy   string
	DecidedAt   *time.Time
	Reason      string
	BountyID    *int64
	CreatedAt   time.Time
}

// DecideInput is a maintainer's answer to a proposal.
type DecideInput struct {
	ID         int64
	Actor      string
	Maintainer bool
	Accept     bool
	// Reason is required to decline, so the proposer learns why.
	Reason string
}

// DecideProposal accepts a proposal — it becomes a real bounty funded from the platform
// balance — or declines it with a reason. Deciding again changes nothing; an accepted
// proposal whose funding failed is funded on the next call.
func (s *Service) DecideProposal(ctx context.Context, in DecideInput) (Result, error) {
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers may accept or decline proposals")
	}
	actor, err := login(in.Actor)
	if err != nil {
		return Result{}, err
	}
	reason := strings.TrimSpace(in.Reason)
	if !in.Accept && reason == "" {
		return Result{}, refuse(ErrBadInput, "declining a proposal needs a reason the proposer can read")
	}
	now := s.now()
	var p Proposal
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		var ps []Proposal
		if err := tx.Raw(`SELECT * FROM bounty_proposals WHERE id = ?`, in.ID).Scan(&ps).Error; err != nil {
			return fmt.Errorf("proposal %d: %w", in.ID, err)
		}
		if len(ps) == 0 {
			return refuse(ErrNotFound, "proposal %d does not exist", in.ID)
		}
		p = ps[0]
		to := "declined"
		if in.Accept {
			to = "accepted"
		}
		n, err := exec(tx, `UPDATE bounty_proposals SET state = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ? AND state = 'pending'`, to, actor, now, reason, p.ID)
		if err != nil {
			return fmt.Errorf("decide proposal %d: %w", p.ID, err)
		}
		if n == 0 {
			if p.State == to {
				res = Result{Message: fmt.Sprintf("Proposal %d was already %s.", p.ID, p.State)}
				return nil
			}
			return refuse(ErrRefused, "proposal %d was already %s by @%s", p.ID, p.State, p.DecidedBy)
		}
		p.State = to
		res = Result{Changed: true, Message: fmt.Sprintf("@%s %s @%s's proposal of %s on %s#%d.", actor, to, p.Proposer, Cents(p.AmountCents), p.Repo, p.Issue)}
		if reason != "" {
			res.Message += " Reason: " + reason
		}
		o.add(p.Repo, p.Issue, res.Message)
		if err := event(tx, now, nil, p.Repo, p.Issue, "proposal-"+to, actor, p.Proposer, res.Message); err != nil {
			return err
		}
		return s.recomputeStage(tx, p.Proposer, actor, "proposal "+to)
	})
	if err != nil || p.State != "accepted" || p.BountyID != nil {
		return res, err
	}
	fr, err := s.Fund(ctx, FundInput{Repo: p.Repo, Issue: p.Issue, Title: p.Title, Sponsor: actor, AmountCents: p.AmountCents, FromPlatform: true, Maintainer: true, RequestKey: fmt.Sprintf("proposal:%d", p.ID)})
	if err != nil {
		return res, fmt.Errorf("proposal %d accepted but funding its bounty failed (decide again to retry): %w", p.ID, err)
	}
	if err := s.db.WithContext(ctx).Exec(`UPDATE bounty_proposals SET bounty_id = (SELECT bounty_id FROM bounty_fundings WHERE request_key = ?) WHERE id = ?`, fmt.Sprintf("proposal:%d", p.ID), p.ID).Error; err != nil {
		return res, fmt.Errorf("link proposal %d to its bounty: %w", p.ID, err)
	}
	res.Message += " " + fr.Message
	return res, nil
}

// CandidateInput marks (or unmarks) a person as a hiring candidate.
type CandidateInput struct {
	Login      string
	Actor      string
	Maintainer bool
	Unmark     bool
}

// MarkCandidate sets the maintainers' candidate mark; the stage follows from it.
func (s *Service) MarkCandidate(ctx context.Context, in CandidateInput) (Result, error) {
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers may mark hiring candidates")
	}
	who, err := login(in.Login)
	if err != nil {
		return Result{}, err
	}
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		if err := s.recomputeStage(tx, who, "", "joined the pipeline"); err != nil {
			return err
		}
		want := !in.Unmark
		n, err := exec(tx, `UPDATE bounty_people SET candidate = ?, candidate_by = ?, candidate_at = ? WHERE login = ? AND candidate <> ?`, want, in.Actor, now, who, want)
		if err != nil {
			return fmt.Errorf("mark @%s: %w", who, err)
		}
		verb := "marked"
		if in.Unmark {
			verb = "unmarked"
		}
		res = Result{Changed: n > 0, Message: fmt.Sprintf("@%s %s @%s as a hiring candidate.", in.Actor, verb, who)}
		if n == 0 {
			res.Message = fmt.Sprintf("@%s was already %s.", who, verb)
			return nil
		}
		return s.recomputeStage(tx, who, in.Actor, verb+" as candidate")
	})
	return res, err
}

// Offer is a private offer of employment: visible only to maintainers and its person.
type Offer struct {
	ID            int64
	Login         string
	StipendCents  int64
	StipendPeriod string // "month" or "year"
	EquityBps     int    // basis points: 100 = 1%
	VestingStart  time.Time
	CliffMonths   int
	VestingMonths int
	State         string // offered, accepted, declined, withdrawn
	Note          string
	CreatedBy     string
	CreatedAt     time.Time
	DecidedBy     string
	DecidedAt     *time.Time
}

// OfferInput records an offer.
type OfferInput struct {
	Login         string
	Actor         string
	Maintainer    bool
	StipendCents  int64
	StipendPeriod string
	EquityBps     int
	VestingStart  time.Time
	CliffMonths   int
	VestingMonths int
	Note          string
}

// RecordOffer records an offer to a candidate; maintainers only, one live offer per person.
func (s *Service) RecordOffer(ctx context.Context, in OfferInput) (Offer, error) {
	if !in.Maintainer {
		return Offer{}, refuse(ErrForbidden, "only maintainers may record offers")
	}
	who, err := login(in.Login)
	if err != nil {
		return Offer{}, err
	}
	switch {
	case in.StipendCents < 0 || in.StipendCents > 10_000_000_00:
		return Offer{}, refuse(ErrBadInput, "stipend %s is not between $0 and $10,000,000", Cents(in.StipendCents))
	case in.StipendPeriod != "month" && in.StipendPeriod != "year":
		return Offer{}, refuse(ErrBadInput, "stipend period must be month or year, not %q", in.StipendPeriod)
	case in.EquityBps < 0 || in.EquityBps > 10000:
		return Offer{}, refuse(ErrBadInput, "equity is in basis points between 0 and 10000 (100%%), not %d", in.EquityBps)
	case in.VestingStart.IsZero():
		return Offer{}, refuse(ErrBadInput, "an offer needs a vesting start date")
	case in.VestingMonths < 1 || in.VestingMonths > 240:
		return Offer{}, refuse(ErrBadInput, "vesting lasts 1 to 240 months, not %d", in.VestingMonths)
	case in.CliffMonths < 0 || in.CliffMonths > in.VestingMonths:
		return Offer{}, refuse(ErrBadInput, "the cliff (%d months) must be between 0 and the vesting period (%d months)", in.CliffMonths, in.VestingMonths)
	}
	now := s.now()
	off := Offer{Login: who, StipendCents: in.StipendCents, StipendPeriod: in.StipendPeriod, EquityBps: in.EquityBps, VestingStart: in.VestingStart.UTC(),
		CliffMonths: in.CliffMonths, VestingMonths: in.VestingMonths, State: "offered", Note: in.Note, CreatedBy: in.Actor, CreatedAt: now}
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		r, err := recordOf(tx, who)
		if err != nil {
			return err
		}
		if !r.Candidate {
			return refuse(ErrRefused, "@%s is not marked as a candidate; mark them first", who)
		}
		n, err := exec(tx, `INSERT INTO bounty_offers (login, stipend_cents, stipend_period, equity_bps, vesting_start, cliff_months, vesting_months, state, note, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'offered', ?, ?, ?) ON CONFLICT DO NOTHING`, who, off.StipendCents, off.StipendPeriod, off.EquityBps, off.VestingStart, off.CliffMonths, off.VestingMonths, off.Note, off.CreatedBy, now)
		if err != nil {
			return fmt.Errorf("record offer: %w", err)
		}
		if n == 0 {
			return refuse(ErrRefused, "@%s already has a live offer; withdraw it first", who)
		}
		return tx.Raw(`SELECT id FROM bounty_offers WHERE login = ? AND state = 'offered'`, who).Scan(&off.ID).Error
	})
	return off, err
}

// DecideOffer moves an offer from offered to accepted (the person is hired), declined or
// withdrawn; maintainers record it.
func (s *Service) DecideOffer(ctx context.Context, id int64, to, actor string, maintainer bool) (Result, error) {
	if !maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers may record the answer to an offer")
	}
	if to != "accepted" && to != "declined" && to != "withdrawn" {
		return Result{}, refuse(ErrBadInput, "an offer is accepted, declined or withdrawn, not %q", to)
	}
	now := s.now()
	var res Result
	err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		var who string
		if err := tx.Raw(`SELECT login FROM bounty_offers WHERE id = ?`, id).Scan(&who).Error; err != nil {
			return fmt.Errorf("offer %d: %w", id, err)
		}
		if who == "" {
			return refuse(ErrNotFound, "offer %d does not exist", id)
		}
		n, err := exec(tx, `UPDATE bounty_offers SET state = ?, decided_by = ?, decided_at = ? WHERE id = ? AND state = 'offered'`, to, actor, now, id)
		if err != nil {
			return fmt.Errorf("decide offer %d: %w", id, err)
		}
		if n == 0 {
			return refuse(ErrRefused, "offer %d is no longer open", id)
		}
		res = Result{Changed: true, Message: fmt.Sprintf("Offer %d to @%s %s.", id, who, to)}
		return s.recomputeStage(tx, who, actor, "offer "+to)
	})
	return res, err
}

// Offers lists a person's offers for a viewer: the person themself or a maintainer. Anyone
// else is refused, because offers are private.
func (s *Service) Offers(ctx context.Context, viewer string, viewerMaintainer bool, who string) ([]Offer, error) {
	l, err := login(who)
	if err != nil {
		return nil, err
	}
	v := strings.ToLower(strings.TrimPrefix(viewer, "@"))
	if !viewerMaintainer && v != l {
		return nil, refuse(ErrForbidden, "offers are visible only to maintainers and to @%s", l)
	}
	var out []Offer
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_offers WHERE login = ? ORDER BY id DESC`, l).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("offers of @%s: %w", l, err)
	}
	return out, nil
}
