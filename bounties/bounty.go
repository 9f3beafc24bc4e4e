package bounties

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// FundInput is /bounty $N on an issue: a sponsor adds money to the issue's bounty, creating
// it when the issue has none. Several sponsors pool on one bounty.
type FundInput struct {
	Repo  string
	Issue int
	// Title is the issue's title, shown on the board.
	Title string
	// Labels are the issue's labels as GitHub reports them now; they replace the stored ones.
	// Nil keeps the stored labels.
	Labels  []string
	Sponsor string
	// AmountCents is what the sponsor adds, in cents.
	AmountCents int64
	// FromPlatform funds from the forge's own balance instead of the sponsor's card; only
	// maintainers may.
	FromPlatform bool
	Maintainer   bool
	// RequestKey names the request (e.g. "comment:123456") so a redelivered or retried
	// command never funds twice. Required.
	RequestKey string
}

// Fund adds a sponsor's money to a bounty. From the platform the pool grows at once; by card
// the Result's Link is a Stripe Checkout page and the pool grows when Stripe reports the
// payment (checkout.session.completed).
func (s *Service) Fund(ctx context.Context, in FundInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	sponsor, err := login(in.Sponsor)
	if err != nil {
		return Result{}, err
	}
	if in.Issue <= 0 {
		return Result{}, refuse(ErrBadInput, "issue number %d is not an issue", in.Issue)
	}
	if err := s.checkAmount(in.AmountCents); err != nil {
		return Result{}, err
	}
	if strings.TrimSpace(in.RequestKey) == "" {
		return Result{}, refuse(ErrBadInput, "a funding needs a request key so a retry cannot fund twice")
	}
	if in.FromPlatform && !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may fund bounties from the platform balance; sponsors pay by card", in.Repo)
	}
	labels, err := cleanLabels(in.Labels)
	if err != nil {
		return Result{}, err
	}
	if !in.FromPlatform && s.cfg.Stripe == nil {
		return Result{}, refuse(ErrRefused, "card funding is not configured on this forge (no Stripe key); ask a maintainer to fund from the platform balance")
	}
	now := s.now()
	var f Funding
	var b Bounty
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		var existing []Funding
		if err := tx.Raw(`SELECT * FROM bounty_fundings WHERE request_key = ?`, in.RequestKey).Scan(&existing).Error; err != nil {
			return fmt.Errorf("fund: %w", err)
		}
		if len(existing) > 0 {
			f = existing[0]
			bb, err := bountyByID(tx, f.BountyID)
			if err != nil {
				return err
			}
			b = bb
			return nil
		}
		p, err := policyOf(tx, in.Repo)
		if err != nil {
			return err
		}
		var expires *time.Time
		if p.BountyDays > 0 {
			e := now.Add(time.Duration(p.BountyDays) * 24 * time.Hour)
			expires = &e
		}
		if prev, err := liveBounty(tx, in.Repo, in.Issue); err == nil && prev.State == BountyPaid {
			return refuse(ErrRefused, "the bounty on %s#%d was already paid; fund new work on a new issue, or thank someone with /tip", in.Repo, in.Issue)
		}
		if err := tx.Exec(`INSERT INTO bounties (repo, issue, title, state, created_by, created_at, updated_at, expires_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			in.Repo, in.Issue, in.Title, sponsor, now, now, expires).Error; err != nil {
			return fmt.Errorf("create bounty on %s#%d: %w", in.Repo, in.Issue, err)
		}
		b, err = liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		if b.State != BountyOpen {
			return refuse(ErrRefused, "the bounty on %s#%d is already %s; it takes no more money. Open a new issue or tip with /tip", in.Repo, in.Issue, b.State)
		}
		f = Funding{BountyID: b.ID, Sponsor: sponsor, AmountCents: in.AmountCents, Source: "checkout", State: FundingPending, RequestKey: in.RequestKey, CreatedAt: now}
		if in.FromPlatform {
			f.Source, f.State, f.FundedAt = "platform", FundingFunded, &now
		}
		if err := tx.Table("bounty_fundings").Create(&f).Error; err != nil {
			return fmt.Errorf("record funding: %w", err)
		}
		if err := stillOpen(tx, b, now); err != nil {
			return err
		}
		if in.Labels != nil {
			if err := setLabels(tx, b.Repo, b.Issue, labels); err != nil {
				return err
			}
		}
		msg := fmt.Sprintf("@%s pledged %s to the bounty; it counts once the payment completes.", sponsor, Cents(f.AmountCents))
		if in.FromPlatform {
			if _, err := post(tx, now, fmt.Sprintf("funding:%d", f.ID), "funding", fmt.Sprintf("@%s funds %s#%d from the platform", sponsor, in.Repo, in.Issue),
				txnRefs{bounty: &b.ID, funding: &f.ID}, move(acctPlatform, acctBounty(b.ID), f.AmountCents)...); err != nil {
				return err
			}
			msg = fmt.Sprintf("@%s funded the bounty with %s from the platform balance.", sponsor, Cents(f.AmountCents))
		}
		o.add(b.Repo, b.Issue, msg)
		res = Result{Changed: true, Message: msg}
		return event(tx, now, &b.ID, b.Repo, b.Issue, "fund", sponsor, sponsor, msg)
	})
	if err != nil {
		return Result{}, err
	}
	if !res.Changed {
		res.Message = fmt.Sprintf("This funding (%s by @%s) was already recorded.", Cents(f.AmountCents), f.Sponsor)
	}
	if f.Source == "checkout" && f.State == FundingPending {
		if f.CheckoutURL == "" {
			id, url, err := s.cfg.Stripe.checkout(ctx, f, b, s.cfg.BaseURL+fmt.Sprintf("/bounties/%s/%d?funded=%d", b.Repo, b.Issue, f.ID), s.cfg.BaseURL+fmt.Sprintf("/bounties/%s/%d", b.Repo, b.Issue))
			if err != nil {
				return Result{}, fmt.Errorf("%s: %w", "the pledge is recorded but Stripe Checkout failed; repeat the command to retry", err)
			}
			if err := s.db.WithContext(ctx).Exec(`UPDATE bounty_fundings SET checkout_session_id = ?, checkout_url = ? WHERE id = ? AND checkout_session_id IS NULL`, id, url, f.ID).Error; err != nil {
				return Result{}, fmt.Errorf("store checkout session: %w", err)
			}
			f.CheckoutURL = url
		}
		res.Link = f.CheckoutURL
		res.Message += fmt.Sprintf(" Pay %s here: %s", Cents(f.AmountCents), f.CheckoutURL)
	}
	return res, nil
}

// stillOpen locks an open bounty's row until the transaction ends, or refuses when it is no
// longer open. Money only enters a pool under this lock, so it cannot slip in after a
// concurrent award or cancel has divided or refunded the pool.
func stillOpen(tx *gorm.DB, b Bounty, now time.Time) error {
	n, err := exec(tx, `UPDATE bounties SET updated_at = ? WHERE id = ? AND state = 'open'`, now, b.ID)
	if err != nil {
		return fmt.Errorf("lock bounty %d: %w", b.ID, err)
	}
	if n == 0 {
		return refuse(ErrRefused, "the bounty on %s#%d was just claimed or closed; it takes no more money", b.Repo, b.Issue)
	}
	return nil
}

func bountyByID(tx *gorm.DB, id int64) (Bounty, error) {
	var bs []Bounty
	if err := tx.Raw(`SELECT * FROM bounties WHERE id = ?`, id).Scan(&bs).Error; err != nil {
		return Bounty{}, fmt.Errorf("bounty %d: %w", id, err)
	}
	if len(bs) == 0 {
		return Bounty{}, refuse(ErrNotFound, "bounty %d does not exist", id)
	}
	return bs[0], nil
}

// liveBounty is the issue's open or claimed bounty, or else its latest one.
func liveBounty(tx *gorm.DB, repo string, issue int) (Bounty, error) {
	var bs []Bounty
	if err := tx.Raw(`SELECT * FROM bounties WHERE repo = ? AND issue = ? ORDER BY CASE WHEN state IN ('open', 'claimed') THEN 0 ELSE 1 END, id DESC LIMIT 1`, repo, issue).Scan(&bs).Error; err != nil {
		return Bounty{}, fmt.Errorf("bounty on %s#%d: %w", repo, issue, err)
	}
	if len(bs) == 0 {
		return Bounty{}, refuse(ErrNotFound, "%s#%d has no bounty", repo, issue)
	}
	return bs[0], nil
}

// pool is what sponsors have put into a bounty net of refunds, from the ledger.
func pool(tx *gorm.DB, id int64) (int64, error) {
	var c int64
	err := tx.Raw(`SELECT COALESCE(SUM(e.amount_cents), 0) FROM bounty_ledger_entries e JOIN bounty_ledger_txns t ON t.id = e.txn_id
		WHERE e.account = ? AND t.kind IN ?`, acctBounty(id), poolKinds).Scan(&c).Error
	if err != nil {
		return 0, fmt.Errorf("pool of bounty %d: %w", id, err)
	}
	return c, nil
}

// CloseInput is /cancel-bounty.
type CloseInput struct {
	Repo       string
	Issue      int
	Actor      string
	Maintainer bool
	Reason     string
}

// Cancel closes an open bounty: locks end, pending claims lose, pending Checkout sessions
// expire, and every sponsor is refunded (card payments through Stripe, platform money back to
// the platform). A bounty already claimed cannot be cancelled: its payout is under way.
func (s *Service) Cancel(ctx context.Context, in CloseInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may cancel a bounty", in.Repo)
	}
	var res Result
	err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		b, err := liveBounty(tx, in.Repo, in.Issue)
		if err != nil {
			return err
		}
		why := "cancelled by @" + in.Actor
		if in.Reason != "" {
			why += ": " + in.Reason
		}
		res, err = s.closeBounty(tx, o, b, BountyCancelled, in.Actor, why)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	s.settleRefunds(ctx)
	return res, nil
}

// closeBounty moves an open bounty to cancelled or expired and unwinds everything on it.
func (s *Service) closeBounty(tx *gorm.DB, o *outbox, b Bounty, to, actor, why string) (Result, error) {
	now := s.now()
	if b.State == to {
		return Result{Message: fmt.Sprintf("The bounty on %s#%d is already %s.", b.Repo, b.Issue, to)}, nil
	}
	n, err := exec(tx, `UPDATE bounties SET state = ?, closed_at = ?, closed_by = ?, closed_reason = ?, updated_at = ? WHERE id = ? AND state = 'open'`, to, now, actor, why, now, b.ID)
	if err != nil {
		return Result{}, fmt.Errorf("close bounty %d: %w", b.ID, err)
	}
	if n == 0 {
		return Result{}, refuse(ErrRefused, "the bounty on %s#%d is %s, so it cannot be %s: only open bounties can", b.Repo, b.Issue, b.State, to)
	}
	var locks []Attempt
	if err := tx.Raw(`SELECT * FROM bounty_attempts WHERE bounty_id = ? AND state = 'active'`, b.ID).Scan(&locks).Error; err != nil {
		return Result{}, fmt.Errorf("close bounty %d: %w", b.ID, err)
	}
	for _, a := range locks {
		if err := endAttempt(tx, o, a, AttemptFinished, actor, "the bounty was "+why, now); err != nil {
			return Result{}, err
		}
	}
	var claims []Claim
	if err := tx.Raw(`SELECT * FROM bounty_claims WHERE bounty_id = ? AND state = 'pending'`, b.ID).Scan(&claims).Error; err != nil {
		return Result{}, fmt.Errorf("close bounty %d: %w", b.ID, err)
	}
	for _, c := range claims {
		if err := loseClaim(tx, o, c, "the bounty was "+why, now); err != nil {
			return Result{}, err
		}
	}
	refunds, err := s.unwindFundings(tx, b, now)
	if err != nil {
		return Result{}, err
	}
	msg := fmt.Sprintf("The bounty on %s#%d was %s. %s", b.Repo, b.Issue, why, refunds)
	o.add(b.Repo, b.Issue, msg)
	return Result{Changed: true, Message: msg}, event(tx, now, &b.ID, b.Repo, b.Issue, to, actor, "", msg)
}

// unwindFundings returns a closed bounty's money: pending Checkouts expire, platform money
// goes back at once, card payments are marked for refund (settleRefunds sends them).
func (s *Service) unwindFundings(tx *gorm.DB, b Bounty, now time.Time) (string, error) {
	if _, err := exec(tx, `UPDATE bounty_fundings SET state = 'expired' WHERE bounty_id = ? AND state = 'pending'`, b.ID); err != nil {
		return "", fmt.Errorf("expire pledges of bounty %d: %w", b.ID, err)
	}
	var fs []Funding
	if err := tx.Raw(`SELECT * FROM bounty_fundings WHERE bounty_id = ? AND state = 'funded'`, b.ID).Scan(&fs).Error; err != nil {
		return "", fmt.Errorf("fundings of bounty %d: %w", b.ID, err)
	}
	var total int64
	for _, f := range fs {
		total += f.AmountCents
		if err := s.startRefund(tx, f, now); err != nil {
			return "", err
		}
	}
	if len(fs) == 0 {
		return "No money had been paid in.", nil
	}
	return fmt.Sprintf("%s goes back to %d sponsor(s).", Cents(total), len(fs)), nil
}

// startRefund moves a funded funding to refunding under its refund idempotency key; platform
// money is returned in the same transaction.
func (s *Service) startRefund(tx *gorm.DB, f Funding, now time.Time) error {
	key := fmt.Sprintf("gradforge-refund-%d", f.ID)
	n, err := exec(tx, `UPDATE bounty_fundings SET state = 'refunding', refund_key = ? WHERE id = ? AND state = 'funded'`, key, f.ID)
	if err != nil || n == 0 {
		return fmt.Errorf("start refund of funding %d (changed %d): %w", f.ID, n, err)
	}
	if f.Source == "platform" {
		return s.finishRefund(tx, f, "platform", f.AmountCents, now)
	}
	return nil
}

// finishRefund records refunds that happened, given the total refunded so far (Stripe's
// charge.amount_refunded, or the whole amount for our own refunds): the ledger moves what is
// new since the last call from the bounty back to whoever paid, keyed by that total so a
// replay posts nothing; the funding is refunded once the whole amount is back. A partial
// refund made in Stripe's dashboard shrinks the pool by exactly that much.
func (s *Service) finishRefund(tx *gorm.DB, f Funding, refundID string, refundedSoFar int64, now time.Time) error {
	total := min(refundedSoFar, f.AmountCents)
	if total <= 0 {
		return nil
	}
	var already int64
	if err := tx.Raw(`SELECT COALESCE(SUM(e.amount_cents), 0) FROM bounty_ledger_entries e JOIN bounty_ledger_txns t ON t.id = e.txn_id
		WHERE t.kind = 'refund' AND t.funding_id = ? AND e.amount_cents > 0`, f.ID).Scan(&already).Error; err != nil {
		return fmt.Errorf("refunds of funding %d: %w", f.ID, err)
	}
	// The ledger first: posting locks the bounty's row (its pool), and taking that lock before
	// the funding's is the order closeBounty takes them in, so the two cannot deadlock.
	if total > already {
		to := acctSponsor(f.Sponsor)
		if f.Source == "platform" {
			to = acctPlatform
		}
		if _, err := post(tx, now, fmt.Sprintf("refund:%d:%d", f.ID, total), "refund", fmt.Sprintf("refund of funding %d to @%s (%s)", f.ID, f.Sponsor, refundID),
			txnRefs{bounty: &f.BountyID, funding: &f.ID}, move(acctBounty(f.BountyID), to, total-already)...); err != nil {
			return err
		}
	}
	if total >= f.AmountCents {
		if _, err := exec(tx, `UPDATE bounty_fundings SET state = 'refunded', refund_id = ?, refunded_at = ? WHERE id = ? AND state IN ('funded', 'refunding')`, refundID, now, f.ID); err != nil {
			return fmt.Errorf("finish refund of funding %d: %w", f.ID, err)
		}
	}
	return nil
}

// settleRefunds sends every refund marked but not yet confirmed by Stripe, each under its own
// idempotency key, and expires Checkout sessions of closed bounties. It is safe to run often
// and from several servers.
func (s *Service) settleRefunds(ctx context.Context) {
	if s.cfg.Stripe == nil {
		return
	}
	var fs []Funding
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_fundings WHERE state = 'refunding' AND source = 'checkout'`).Scan(&fs).Error; err != nil {
		s.log.ErrorContext(ctx, "list refunds", "err", err)
		return
	}
	for _, f := range fs {
		id, err := s.cfg.Stripe.refund(ctx, f, *f.RefundKey)
		if err != nil {
			s.log.ErrorContext(ctx, "refund", "funding", f.ID, "err", err)
			continue
		}
		err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
			b, err := bountyByID(tx, f.BountyID)
			if err != nil {
				return err
			}
			if err := s.finishRefund(tx, f, id, f.AmountCents, s.now()); err != nil {
				return err
			}
			o.add(b.Repo, b.Issue, fmt.Sprintf("Refunded %s to @%s.", Cents(f.AmountCents), f.Sponsor))
			return event(tx, s.now(), &b.ID, b.Repo, b.Issue, "refund", "", f.Sponsor, fmt.Sprintf("refunded %s to @%s (%s)", Cents(f.AmountCents), f.Sponsor, id))
		})
		if err != nil {
			s.log.ErrorContext(ctx, "record refund", "funding", f.ID, "refund", id, "err", err)
		}
	}
	var sessions []string
	if err := s.db.WithContext(ctx).Raw(`SELECT checkout_session_id FROM bounty_fundings WHERE state = 'expired' AND checkout_session_id IS NOT NULL AND checkout_url <> ''`).Scan(&sessions).Error; err != nil {
		s.log.ErrorContext(ctx, "list checkouts to expire", "err", err)
		return
	}
	for _, id := range sessions {
		if err := s.cfg.Stripe.expireCheckout(ctx, id); err != nil {
			s.log.WarnContext(ctx, "expire checkout", "session", id, "err", err)
		}
		// Cleared either way: a session Stripe will not expire is already complete or
		// expired, and a completed one is refunded when its webhook arrives.
		s.db.WithContext(ctx).Exec(`UPDATE bounty_fundings SET checkout_url = '' WHERE checkout_session_id = ?`, id)
	}
}

// expireBounties closes open bounties whose time ran out.
func (s *Service) expireBounties(ctx context.Context) error {
	var bs []Bounty
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounties WHERE state = 'open' AND expires_at IS NOT NULL AND expires_at < ?`, s.now()).Scan(&bs).Error; err != nil {
		return fmt.Errorf("list expired bounties: %w", err)
	}
	for _, b := range bs {
		err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
			_, err := s.closeBounty(tx, o, b, BountyExpired, "", "expired on "+b.ExpiresAt.Format("2 Jan 2006"))
			return err
		})
		if err != nil && !errors.Is(err, ErrRefused) {
			return err
		}
	}
	return nil
}

// recordFees reads Stripe's fee for each card funding that has none recorded and posts it:
// the platform bears it, so the pool keeps every cent the sponsor pledged. Safe to repeat;
// a fee is posted once per funding.
func (s *Service) recordFees(ctx context.Context) error {
	if s.cfg.Stripe == nil {
		return nil
	}
	var fs []Funding
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_fundings WHERE source = 'checkout' AND fee_cents IS NULL AND payment_intent_id IS NOT NULL
		AND state IN ('funded', 'refunding', 'refunded') ORDER BY id LIMIT 100`).Scan(&fs).Error; err != nil {
		return fmt.Errorf("fundings without fees: %w", err)
	}
	var errs []error
	for _, f := range fs {
		fee, err := s.cfg.Stripe.fee(ctx, *f.PaymentIntentID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = s.tx(ctx, func(tx *gorm.DB, _ *outbox) error {
			n, err := exec(tx, `UPDATE bounty_fundings SET fee_cents = ? WHERE id = ? AND fee_cents IS NULL`, fee, f.ID)
			if err != nil || n == 0 || fee <= 0 {
				return err
			}
			_, err = post(tx, s.now(), fmt.Sprintf("fee:%d", f.ID), "fee", fmt.Sprintf("Stripe fee on @%s's funding %d", f.Sponsor, f.ID),
				txnRefs{bounty: &f.BountyID, funding: &f.ID}, move(acctPlatform, acctStripeFees, fee)...)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("record fee of funding %d: %w", f.ID, err))
		}
	}
	return errors.Join(errs...)
}
