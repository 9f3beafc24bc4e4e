package bounties

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// ClaimInput is /claim #N (with optional /split @u…) in a pull request's body or comments.
type ClaimInput struct {
	Repo string
	// PR is the pull request that claims; Issue the bounty's issue.
	PR    int
	Issue int
	// Author is the PR's author; Actor who wrote the command (the author, or a maintainer).
	Author     string
	Actor      string
	Maintainer bool
	// Split names people to share the bounty with, besides the author, in equal shares; each
	// must be a co-author of the PR (CoAuthors, from its commits' Co-authored-by trailers).
	// When CoAuthors is nil (not known before the merge) the split is checked at the merge.
	Split     []string
	CoAuthors []string
}

// Claim records a pending claim of a bounty by a pull request. It pays nothing: payment comes
// only when the PR merges (OnMerged). Repeating a claim updates its split.
func (s *Service) Claim(ctx context.Context, in ClaimInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	if in.PR <= 0 || in.Issue <= 0 {
		return Result{}, refuse(ErrBadInput, "a claim names a pull request and an issue, not #%d and #%d", in.PR, in.Issue)
	}
	author, err := login(in.Author)
	if err != nil {
		return Result{}, err
	}
	actor, err := login(in.Actor)
	if err != nil {
		return Result{}, err
	}
	if actor != author && !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only the pull request's author @%s (or a maintainer) can claim a bounty with #%d; @%s can claim with their own PR", author, in.PR, actor)
	}
	split, err := splitOf(author, in.Split, in.CoAuthors, in.CoAuthors != nil)
	if err != nil {
		return Result{}, err
	}
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		b, err := liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		var prev []Claim
		if err := tx.Raw(`SELECT * FROM bounty_claims WHERE bounty_id = ? AND pr = ?`, b.ID, in.PR).Scan(&prev).Error; err != nil {
			return fmt.Errorf("claims of #%d: %w", in.PR, err)
		}
		if len(prev) > 0 && prev[0].State != ClaimPending {
			res = Result{Message: fmt.Sprintf("#%d's claim on %s#%d is already %s: %s.", in.PR, b.Repo, b.Issue, prev[0].State, prev[0].Reason)}
			return nil
		}
		if b.State != BountyOpen {
			return refuse(ErrRefused, "the bounty on %s#%d is %s and takes no more claims", b.Repo, b.Issue, b.State)
		}
		if ban, err := activeBan(tx, in.Repo, author); err != nil {
			return err
		} else if ban != nil {
			return refuse(ErrRefused, "@%s is banned from bounties in %s by @%s", author, in.Repo, ban.BannedBy)
		}
		var c Claim
		keepSplit := false
		if len(prev) > 0 {
			c = prev[0]
			// A repeated claim without a split (an edited PR body) keeps the split /split set.
			keepSplit = in.Split == nil
			if !keepSplit {
				if err := tx.Exec(`DELETE FROM bounty_claim_splits WHERE claim_id = ?`, c.ID).Error; err != nil {
					return fmt.Errorf("reset split: %w", err)
				}
			}
		} else {
			c = Claim{BountyID: b.ID, Repo: b.Repo, PR: in.PR, Author: author, State: ClaimPending, CreatedAt: now}
			if err := tx.Table("bounty_claims").Create(&c).Error; err != nil {
				return fmt.Errorf("record claim: %w", err)
			}
		}
		if keepSplit {
			if err := tx.Raw(`SELECT login FROM bounty_claim_splits WHERE claim_id = ? ORDER BY login`, c.ID).Scan(&split).Error; err != nil {
				return fmt.Errorf("split of claim %d: %w", c.ID, err)
			}
		}
		for _, l := range split {
			if keepSplit {
				break
			}
			if err := tx.Exec(`INSERT INTO bounty_claim_splits (claim_id, login, shares) VALUES (?, ?, 1)`, c.ID, l).Error; err != nil {
				return fmt.Errorf("record split: %w", err)
			}
		}
		msg := fmt.Sprintf("#%d by @%s claims the bounty on %s#%d", in.PR, author, b.Repo, b.Issue)
		if len(split) > 1 {
			msg += " split equally between @" + strings.Join(split, ", @")
		}
		msg += "; it pays when the PR merges."
		var held []Attempt
		if err := tx.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active' AND login <> ?`, b.ID, author).Scan(&held).Error; err != nil {
			return fmt.Errorf("lock of bounty %d: %w", b.ID, err)
		}
		if len(held) > 0 {
			msg += fmt.Sprintf(" Note: @%s holds the lock until %s.", held[0].Login, day(held[0].ExpiresAt))
		}
		res = Result{Changed: len(prev) == 0, Message: msg}
		o.add(b.Repo, b.Issue, msg)
		return event(tx, now, &b.ID, b.Repo, b.Issue, "claim", actor, author, msg)
	})
	return res, err
}

// splitOf returns the sorted, de-duplicated recipients of a claim: the author plus the split,
// refusing (when verify) anyone not among the PR's authors.
func splitOf(author string, split, coAuthors []string, verify bool) ([]string, error) {
	co := map[string]bool{author: true}
	for _, c := range coAuthors {
		l, err := login(c)
		if err != nil {
			return nil, err
		}
		co[l] = true
	}
	out := []string{author}
	for _, u := range split {
		l, err := login(u)
		if err != nil {
			return nil, err
		}
		if verify && !co[l] {
			return nil, refuse(ErrRefused, "@%s is not an author of this pull request (no commit by them or with a Co-authored-by trailer naming them), so the bounty cannot be split with them", l)
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// SplitInput is /split @u… on a pull request: share its claims with co-authors.
type SplitInput struct {
	Repo       string
	PR         int
	Author     string
	Actor      string
	Maintainer bool
	Users      []string
	// CoAuthors as in ClaimInput: nil defers the check to the merge.
	CoAuthors []string
}

// Split sets who shares the pending claims of a pull request (equal shares; a maintainer can
// weight them after the merge with SetShares).
func (s *Service) Split(ctx context.Context, in SplitInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	var issues []int
	if err := s.db.WithContext(ctx).Raw(`SELECT b.issue FROM bounty_claims c JOIN bounties b ON b.id = c.bounty_id WHERE c.repo = ? AND c.pr = ? AND c.state = 'pending' ORDER BY c.id`, in.Repo, in.PR).Scan(&issues).Error; err != nil {
		return Result{}, fmt.Errorf("claims of %s#%d: %w", in.Repo, in.PR, err)
	}
	if len(issues) == 0 {
		return Result{}, refuse(ErrRefused, "#%d claims no bounty yet: add `/claim #ISSUE` to its description first", in.PR)
	}
	if in.Users == nil {
		in.Users = []string{}
	}
	var msgs []string
	for _, issue := range issues {
		r, err := s.Claim(ctx, ClaimInput{Repo: in.Repo, PR: in.PR, Issue: issue, Author: in.Author, Actor: in.Actor, Maintainer: in.Maintainer, Split: in.Users, CoAuthors: in.CoAuthors})
		if err != nil {
			return Result{}, err
		}
		msgs = append(msgs, r.Message)
	}
	return Result{Changed: true, Message: strings.Join(msgs, " ")}, nil
}

// MergedPR is what the bot knows about a pull request that was closed, merged or not.
type MergedPR struct {
	Repo   string
	Number int
	Merged bool
	// Author is the PR's author with the facts the claim-flood rules need.
	Author Contributor
	// CoAuthors are logins from the commits' Co-authored-by trailers.
	CoAuthors []string
	// Claims are issue numbers the final PR body claims; Split the final /split list. Both
	// are recorded (as by Claim) before the merge is processed, so edits up to the merge count.
	Claims []int
	Split  []string
}

// Outcome is what became of one claim when its PR closed.
type Outcome struct {
	Issue  int
	Won    bool
	Reason string
	// Credits are the payouts created for a won claim.
	Credits []Credit
}

// OnMerged settles a closed pull request's pending claims. An unmerged PR's claims lose (they
// never pay). For a merged PR each claim is checked against the author and the repository's
// rules; the first merged claim on a bounty wins, the bounty becomes claimed, and the pool is
// divided into credits (equal shares, remainders to the first logins alphabetically) that
// await approval — or are approved at once when the repository auto-approves. Calling it again
// for the same PR changes nothing.
func (s *Service) OnMerged(ctx context.Context, pr MergedPR) ([]Outcome, error) {
	if err := validRepo(pr.Repo); err != nil {
		return nil, err
	}
	author, err := login(pr.Author.Login)
	if err != nil {
		return nil, err
	}
	pr.Author.Login = author
	var refused []Outcome
	if pr.Merged {
		for _, issue := range pr.Claims {
			_, err := s.Claim(ctx, ClaimInput{Repo: pr.Repo, PR: pr.Number, Issue: issue, Author: author, Actor: author, Split: pr.Split, CoAuthors: pr.CoAuthors})
			var r *Refusal
			switch {
			case errors.As(err, &r):
				refused = append(refused, Outcome{Issue: issue, Reason: r.Reason})
			case err != nil:
				return nil, err
			}
		}
	}
	now := s.now()
	var out []Outcome
	var approve []int64
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		out, approve = nil, nil
		var claims []Claim
		if err := tx.Raw(`SELECT * FROM bounty_claims WHERE repo = ? AND pr = ? AND state = 'pending' ORDER BY id`, pr.Repo, pr.Number).Scan(&claims).Error; err != nil {
			return fmt.Errorf("claims of %s#%d: %w", pr.Repo, pr.Number, err)
		}
		p, err := policyOf(tx, pr.Repo)
		if err != nil {
			return err
		}
		for _, c := range claims {
			b, err := bountyByID(tx, c.BountyID)
			if err != nil {
				return err
			}
			lose := func(why string) error {
				out = append(out, Outcome{Issue: b.Issue, Reason: why})
				return loseClaim(tx, o, c, why, now)
			}
			if !pr.Merged {
				if err := lose(fmt.Sprintf("#%d was closed without merging; only merged pull requests are paid", pr.Number)); err != nil {
					return err
				}
				continue
			}
			if c.Author != author {
				if err := lose(fmt.Sprintf("the claim was made for @%s but #%d was authored by @%s", c.Author, pr.Number, author)); err != nil {
					return err
				}
				continue
			}
			if err := s.floodCheck(tx, pr.Repo, p, pr.Author, "Claiming a bounty"); err != nil {
				if err := lose(Reason(err)); err != nil {
					return err
				}
				continue
			}
			var split []string
			if err := tx.Raw(`SELECT login FROM bounty_claim_splits WHERE claim_id = ? ORDER BY login`, c.ID).Scan(&split).Error; err != nil {
				return fmt.Errorf("split of claim %d: %w", c.ID, err)
			}
			if _, err := splitOf(author, split, pr.CoAuthors, true); err != nil {
				if err := lose(Reason(err)); err != nil {
					return err
				}
				continue
			}
			if b.State != BountyOpen {
				if err := lose(fmt.Sprintf("the bounty on %s#%d was already %s", b.Repo, b.Issue, b.State)); err != nil {
					return err
				}
				continue
			}
			credits, err := s.award(tx, o, b, c, p, now)
			if err != nil {
				return err
			}
			out = append(out, Outcome{Issue: b.Issue, Won: true, Reason: fmt.Sprintf("#%d won the bounty on %s#%d", pr.Number, b.Repo, b.Issue), Credits: credits})
			if p.AutoApprove {
				for _, cr := range credits {
					approve = append(approve, cr.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = append(out, refused...)
	for _, id := range approve {
		if _, err := s.approveCredit(ctx, id, "auto-approve"); err != nil && !errors.Is(err, ErrRefused) {
			s.log.ErrorContext(ctx, "auto-approve", "credit", id, "err", err)
		}
	}
	return out, nil
}

// award is the one place a claim wins: the bounty goes open → claimed, the claim pending →
// won (a unique index allows one winner), rival claims lose, the lock ends, and the pool is
// divided into credits awaiting approval.
func (s *Service) award(tx *gorm.DB, o *outbox, b Bounty, c Claim, p Policy, now time.Time) ([]Credit, error) {
	n, err := exec(tx, `UPDATE bounties SET state = 'claimed', updated_at = ? WHERE id = ? AND state = 'open'`, now, b.ID)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("claim bounty %d (changed %d): %w", b.ID, n, err)
	}
	if n, err := exec(tx, `UPDATE bounty_claims SET state = 'won', decided_at = ?, reason = 'first merged claim' WHERE id = ? AND state = 'pending'`, now, c.ID); err != nil || n == 0 {
		return nil, fmt.Errorf("win claim %d (changed %d): %w", c.ID, n, err)
	}
	var rivals []Claim
	if err := tx.Raw(`SELECT * FROM bounty_claims WHERE bounty_id = ? AND state = 'pending'`, b.ID).Scan(&rivals).Error; err != nil {
		return nil, fmt.Errorf("rival claims: %w", err)
	}
	for _, r := range rivals {
		if err := loseClaim(tx, o, r, fmt.Sprintf("#%d merged first and won the bounty", c.PR), now); err != nil {
			return nil, err
		}
	}
	var locks []Attempt
	if err := tx.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active'`, b.ID).Scan(&locks).Error; err != nil {
		return nil, fmt.Errorf("locks: %w", err)
	}
	for _, a := range locks {
		if err := endAttempt(tx, o, a, AttemptFinished, "", fmt.Sprintf("#%d won the bounty", c.PR), now); err != nil {
			return nil, err
		}
	}
	var shares []struct {
		Login  string
		Shares int64
	}
	if err := tx.Raw(`SELECT login, shares FROM bounty_claim_splits WHERE claim_id = ? ORDER BY login`, c.ID).Scan(&shares).Error; err != nil {
		return nil, fmt.Errorf("split of claim %d: %w", c.ID, err)
	}
	if len(shares) == 0 {
		shares = append(shares, struct {
			Login  string
			Shares int64
		}{c.Author, 1})
	}
	total, err := balance(tx, acctBounty(b.ID))
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("#%d by @%s merged and won the bounty on %s#%d.", c.PR, c.Author, b.Repo, b.Issue)
	var credits []Credit
	if total > 0 {
		weights := make([]int64, len(shares))
		for i, sh := range shares {
			weights[i] = sh.Shares
		}
		for i, amt := range splitCents(total, weights) {
			if amt == 0 {
				continue
			}
			cr := Credit{Kind: "bounty", BountyID: &b.ID, ClaimID: &c.ID, Repo: b.Repo, Number: b.Issue, Recipient: shares[i].Login, AmountCents: amt,
				Currency: "usd", State: CreditAwaiting, IdempotencyKey: "pending", CreatedBy: c.Author, CreatedAt: now, UpdatedAt: now}
			if err := insertCredit(tx, &cr); err != nil {
				return nil, err
			}
			credits = append(credits, cr)
			msg += fmt.Sprintf(" @%s: %s.", cr.Recipient, Cents(amt))
			if a, err := accountOf(tx, cr.Recipient); err != nil {
				return nil, err
			} else if a == nil || !a.PayoutsEnabled {
				msg += fmt.Sprintf(" @%s, set up payouts now so the money can move once approved: sign in at %s.", cr.Recipient, s.onboardURL(cr.Recipient))
			}
		}
		if p.AutoApprove {
			msg += " This repository approves payouts automatically."
		} else {
			msg += " A maintainer approves the payout with /approve-payout."
		}
	} else {
		msg += " Nothing had been funded yet, so there is nothing to pay; maintainers can /tip instead."
	}
	o.add(b.Repo, b.Issue, msg)
	o.add(b.Repo, c.PR, msg)
	return credits, event(tx, now, &b.ID, b.Repo, b.Issue, "award", "", c.Author, msg)
}

// insertCredit stores a credit and sets its idempotency key from its id, which is what makes
// the key unique per credit and stable across retries.
func insertCredit(tx *gorm.DB, cr *Credit) error {
	var tmp [12]byte
	rand.Read(tmp[:])
	cr.IdempotencyKey = "unset-" + hex.EncodeToString(tmp[:]) // replaced below, in the same transaction
	if err := tx.Table("bounty_credits").Create(cr).Error; err != nil {
		return fmt.Errorf("record credit for @%s: %w", cr.Recipient, err)
	}
	cr.IdempotencyKey = fmt.Sprintf("gradforge-credit-%d", cr.ID)
	if err := tx.Exec(`UPDATE bounty_credits SET idempotency_key = ? WHERE id = ?`, cr.IdempotencyKey, cr.ID).Error; err != nil {
		return fmt.Errorf("key credit %d: %w", cr.ID, err)
	}
	return nil
}

// loseClaim is the one place a claim loses, always with its reason.
func loseClaim(tx *gorm.DB, o *outbox, c Claim, why string, now time.Time) error {
	n, err := exec(tx, `UPDATE bounty_claims SET state = 'lost', reason = ?, decided_at = ? WHERE id = ? AND state = 'pending'`, why, now, c.ID)
	if err != nil {
		return fmt.Errorf("close claim %d: %w", c.ID, err)
	}
	if n == 0 {
		return nil
	}
	b, err := bountyByID(tx, c.BountyID)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("#%d's claim on %s#%d will not be paid: %s.", c.PR, b.Repo, b.Issue, why)
	o.add(c.Repo, c.PR, msg)
	return event(tx, now, &b.ID, b.Repo, b.Issue, "claim-lost", "", c.Author, msg)
}

// SharesInput sets unequal shares of a won claim's payout before it is approved.
type SharesInput struct {
	Repo       string
	Issue      int
	Actor      string
	Maintainer bool
	// Shares maps each recipient (the same people as the split) to a positive weight.
	Shares map[string]int
}

// SetShares re-divides a won bounty among its recipients by weight; maintainers only, and
// only while every credit still awaits approval.
func (s *Service) SetShares(ctx context.Context, in SharesInput) (Result, error) {
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may set payout shares", in.Repo)
	}
	want := map[string]int{}
	for l, w := range in.Shares {
		nl, err := login(l)
		if err != nil {
			return Result{}, err
		}
		if w < 1 || w > 1000 {
			return Result{}, refuse(ErrBadInput, "@%s's share must be between 1 and 1000, not %d", nl, w)
		}
		want[nl] = w
	}
	now := s.now()
	var res Result
	err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		b, err := liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		var cs []Credit
		if err := tx.Raw(`SELECT * FROM bounty_credits WHERE bounty_id = ? ORDER BY recipient`, b.ID).Scan(&cs).Error; err != nil {
			return fmt.Errorf("credits of bounty %d: %w", b.ID, err)
		}
		if len(cs) == 0 {
			return refuse(ErrRefused, "the bounty on %s#%d has no payout yet", b.Repo, b.Issue)
		}
		var total int64
		weights := make([]int64, len(cs))
		for i, c := range cs {
			if c.State != CreditAwaiting {
				return refuse(ErrRefused, "@%s's payout is already %s; shares can change only before approval", c.Recipient, c.State)
			}
			w, ok := want[c.Recipient]
			if !ok {
				return refuse(ErrBadInput, "give a share for every recipient: @%s has none", c.Recipient)
			}
			weights[i] = int64(w)
			total += c.AmountCents
		}
		if len(want) != len(cs) {
			return refuse(ErrBadInput, "shares may name only the payout's recipients")
		}
		msg := "Payout shares set by @" + in.Actor + ":"
		for i, amt := range splitCents(total, weights) {
			if amt <= 0 {
				return refuse(ErrBadInput, "those shares would give @%s nothing; every recipient needs at least a cent", cs[i].Recipient)
			}
			if n, err := exec(tx, `UPDATE bounty_credits SET amount_cents = ?, updated_at = ? WHERE id = ? AND state = 'awaiting_approval'`, amt, now, cs[i].ID); err != nil || n == 0 {
				return fmt.Errorf("reshare credit %d (changed %d): %w", cs[i].ID, n, err)
			}
			msg += fmt.Sprintf(" @%s %s;", cs[i].Recipient, Cents(amt))
		}
		res = Result{Changed: true, Message: strings.TrimSuffix(msg, ";") + "."}
		o.add(b.Repo, b.Issue, res.Message)
		return event(tx, now, &b.ID, b.Repo, b.Issue, "shares", in.Actor, "", res.Message)
	})
	return res, err
}
