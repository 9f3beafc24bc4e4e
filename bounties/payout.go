package bounties

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// ApproveInput is /approve-payout on a bounty's issue, the winning PR, or a tip's thread.
type ApproveInput struct {
	Repo       string
	Number     int
	Actor      string
	Maintainer bool
}

// ApprovePayout approves every credit awaiting approval on the thread and starts the
// transfers. Approving twice, or by many maintainers at once, approves once: the second
// caller is told it already happened.
func (s *Service) ApprovePayout(ctx context.Context, in ApproveInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	actor, err := login(in.Actor)
	if err != nil {
		return Result{}, err
	}
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may approve payouts", in.Repo)
	}
	var cs []Credit
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM bounty_credits WHERE repo = ? AND (number = ? OR claim_id IN (SELECT id FROM bounty_claims WHERE repo = ? AND pr = ? AND state = 'won')) ORDER BY id`,
		in.Repo, in.Number, in.Repo, in.Number).Scan(&cs).Error; err != nil {
		return Result{}, fmt.Errorf("credits of %s#%d: %w", in.Repo, in.Number, err)
	}
	if len(cs) == 0 {
		return Result{}, refuse(ErrNotFound, "%s#%d has no payout to approve", in.Repo, in.Number)
	}
	var msgs []string
	changed := false
	for _, c := range cs {
		if c.State != CreditAwaiting {
			msgs = append(msgs, fmt.Sprintf("@%s's %s is already %s.", c.Recipient, Cents(c.AmountCents), strings.ReplaceAll(c.State, "_", " ")))
			continue
		}
		r, err := s.approveCredit(ctx, c.ID, actor)
		if err != nil {
			return Result{}, err
		}
		changed = changed || r.Changed
		msgs = append(msgs, r.Message)
	}
	return Result{Changed: changed, Message: strings.Join(msgs, " ")}, nil
}

// ApproveCredit approves one credit (the web console's button).
func (s *Service) ApproveCredit(ctx context.Context, id int64, actor string, maintainer bool) (Result, error) {
	if !maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers may approve payouts")
	}
	a, err := login(actor)
	if err != nil {
		return Result{}, err
	}
	return s.approveCredit(ctx, id, a)
}

// approveCredit is the one place a credit is approved: awaiting_approval → approved, with the
// ledger moving its amount from the bounty's pool (or the platform, for tips) to what the
// forge owes the recipient. Then it tries to pay.
func (s *Service) approveCredit(ctx context.Context, id int64, actor string) (Result, error) {
	now := s.now()
	var c Credit
	changed := false
	err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		n, err := exec(tx, `UPDATE bounty_credits SET state = 'approved', approved_by = ?, approved_at = ?, updated_at = ? WHERE id = ? AND state = 'awaiting_approval'`, actor, now, now, id)
		if err != nil {
			return fmt.Errorf("approve credit %d: %w", id, err)
		}
		if c, err = creditByID(tx, id); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		changed = true
		if err := postCredit(tx, c, now); err != nil {
			return err
		}
		msg := fmt.Sprintf("@%s approved the payout of %s to @%s.", actor, Cents(c.AmountCents), c.Recipient)
		addCredit(tx, o, c, msg)
		return event(tx, now, c.BountyID, c.Repo, c.Number, "approve", actor, c.Recipient, msg)
	})
	if err != nil {
		return Result{}, err
	}
	if !changed {
		return Result{Message: fmt.Sprintf("@%s's %s was already approved (it is %s).", c.Recipient, Cents(c.AmountCents), strings.ReplaceAll(c.State, "_", " "))}, nil
	}
	r, err := s.pay(ctx, id)
	r.Changed = true
	r.Message = fmt.Sprintf("Approved %s for @%s. %s", Cents(c.AmountCents), c.Recipient, r.Message)
	return r, err
}

// postCredit moves an approved credit's money to the recipient's payable account, refusing
// to overdraw a bounty's pool.
func postCredit(tx *gorm.DB, c Credit, now time.Time) error {
	from := acctPlatform
	if c.BountyID != nil {
		from = acctBounty(*c.BountyID)
		bal, err := balance(tx, from)
		if err != nil {
			return err
		}
		if bal < c.AmountCents {
			return refuse(ErrRefused, "the payout of %s to @%s is more than the %s left in the bounty's pool (a sponsor was refunded meanwhile?); nothing was approved, ask a maintainer to set the shares or tip the difference", Cents(c.AmountCents), c.Recipient, Cents(bal))
		}
	}
	_, err := post(tx, now, fmt.Sprintf("credit:%d", c.ID), "credit", fmt.Sprintf("%s for @%s on %s#%d", c.Kind, c.Recipient, c.Repo, c.Number),
		txnRefs{bounty: c.BountyID, credit: &c.ID}, move(from, acctPayable(c.Recipient), c.AmountCents)...)
	return err
}

// addCredit queues a credit's news for its thread and, when a pull request won it, for that
// pull request's thread as well: both threads' bounty sections list the payout, so both
// must be re-rendered or the PR would keep saying "awaiting approval" after the approval.
func addCredit(tx *gorm.DB, o *outbox, c Credit, msg string) {
	o.add(c.Repo, c.Number, msg)
	if c.ClaimID == nil {
		return
	}
	var prs []int
	if err := tx.Raw(`SELECT pr FROM bounty_claims WHERE id = ?`, *c.ClaimID).Scan(&prs).Error; err == nil && len(prs) == 1 && prs[0] != c.Number {
		o.add(c.Repo, prs[0], msg)
	}
}

func creditByID(tx *gorm.DB, id int64) (Credit, error) {
	var cs []Credit
	if err := tx.Raw(`SELECT * FROM bounty_credits WHERE id = ?`, id).Scan(&cs).Error; err != nil {
		return Credit{}, fmt.Errorf("credit %d: %w", id, err)
	}
	if len(cs) == 0 {
		return Credit{}, refuse(ErrNotFound, "payout %d does not exist", id)
	}
	return cs[0], nil
}

// account is a contributor's Stripe connected account as last reported.
type account struct {
	Login            string
	StripeAccountID  string
	PayoutsEnabled   bool
	DetailsSubmitted bool
	StripeUpdated    int64
}

func accountOf(tx *gorm.DB, l string) (*account, error) {
	var as []account
	if err := tx.Raw(`SELECT login, stripe_account_id, payouts_enabled, details_submitted, stripe_updated FROM bounty_accounts WHERE login = ?`, l).Scan(&as).Error; err != nil {
		return nil, fmt.Errorf("stripe account of @%s: %w", l, err)
	}
	if len(as) == 0 {
		return nil, nil
	}
	return &as[0], nil
}

// pay moves an approved credit to transferring (one caller wins) and asks Stripe for the
// transfer. A contributor without a payouts-enabled account is sent an onboarding link and
// the credit waits, approved, until account.updated says payouts are enabled.
func (s *Service) pay(ctx context.Context, id int64) (Result, error) {
	db := s.db.WithContext(ctx)
	c, err := creditByID(db, id)
	if err != nil {
		return Result{}, err
	}
	if c.State != CreditApproved {
		return Result{Message: fmt.Sprintf("The payout is %s.", strings.ReplaceAll(c.State, "_", " "))}, nil
	}
	if s.cfg.Stripe == nil {
		return Result{Message: "Payouts wait: Stripe is not configured on this forge."}, nil
	}
	acct, err := accountOf(db, c.Recipient)
	if err != nil {
		return Result{}, err
	}
	if acct == nil || !acct.PayoutsEnabled {
		msg := fmt.Sprintf("@%s, set up payouts to receive %s: sign in at %s (the transfer starts as soon as Stripe enables payouts).", c.Recipient, Cents(c.AmountCents), s.onboardURL(c.Recipient))
		s.flush(ctx, &outbox{threads: map[thread]string{{c.Repo, c.Number}: msg}})
		return Result{Message: msg, Link: s.onboardURL(c.Recipient)}, nil
	}
	now := s.now()
	n, err := exec(db, `UPDATE bounty_credits SET state = 'transferring', transferring_since = ?, updated_at = ? WHERE id = ? AND state = 'approved'`, now, now, id)
	if err != nil {
		return Result{}, fmt.Errorf("start transfer of credit %d: %w", id, err)
	}
	if n == 0 {
		return Result{Message: "The transfer is already under way."}, nil
	}
	return s.send(ctx, c, acct.StripeAccountID)
}

// send asks Stripe for a credit's transfer with the credit's idempotency key and records the
// answer. Only a definite refusal marks the credit failed; an ambiguous error leaves it
// transferring for the retry worker, which asks again with the same key.
func (s *Service) send(ctx context.Context, c Credit, destination string) (Result, error) {
	tid, err := s.cfg.Stripe.transfer(ctx, c, destination)
	if err != nil {
		if !definite(err) {
			// Not an error for the caller: the credit stays transferring and the tick asks
			// Stripe again with the same key once the lease runs out.
			s.log.WarnContext(ctx, "transfer outcome unknown; will retry with the same idempotency key", "credit", c.ID, "key", c.IdempotencyKey, "err", err)
			return Result{Message: "Stripe did not answer clearly; the transfer is retried automatically under the same idempotency key, so it cannot happen twice."}, nil
		}
		now := s.now()
		reason := Reason(err)
		ferr := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
			n, err := exec(tx, `UPDATE bounty_credits SET state = 'failed', failure = ?, updated_at = ? WHERE id = ? AND state = 'transferring'`, reason, now, c.ID)
			if err != nil || n == 0 {
				return err
			}
			msg := fmt.Sprintf("The transfer of %s to @%s failed: %s. A maintainer can retry it.", Cents(c.AmountCents), c.Recipient, reason)
			addCredit(tx, o, c, msg)
			return event(tx, now, c.BountyID, c.Repo, c.Number, "transfer-failed", "", c.Recipient, msg)
		})
		// A definite failure is an outcome, recorded and told; only a database error is one.
		return Result{Message: "The transfer failed: " + reason + ". A maintainer can retry it."}, ferr
	}
	if s.crashAfterTransfer != nil {
		if err := s.crashAfterTransfer(c.ID); err != nil {
			return Result{}, err
		}
	}
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		changed, err := s.settlePaid(tx, o, c.ID, tid)
		res = Result{Changed: changed, Message: fmt.Sprintf("Paid %s to @%s (Stripe transfer %s).", Cents(c.AmountCents), c.Recipient, tid)}
		return err
	})
	return res, err
}

// settlePaid is the one place a credit becomes paid: transferring → paid with its transfer,
// the ledger moving the money out to the contributor, the bounty paid once all its credits
// are, and the recipient's stage recomputed. Reached from send and from the transfer.created
// webhook, whichever is first; the second changes nothing.
func (s *Service) settlePaid(tx *gorm.DB, o *outbox, id int64, transferID string) (bool, error) {
	now := s.now()
	n, err := exec(tx, `UPDATE bounty_credits SET state = 'paid', transfer_id = ?, paid_at = ?, failure = '', updated_at = ? WHERE id = ? AND state = 'transferring'`, transferID, now, now, id)
	if err != nil {
		return false, fmt.Errorf("settle credit %d: %w", id, err)
	}
	if n == 0 {
		return false, nil
	}
	c, err := creditByID(tx, id)
	if err != nil {
		return false, err
	}
	if _, err := post(tx, now, fmt.Sprintf("transfer:%d", c.ID), "transfer", "Stripe transfer "+transferID,
		txnRefs{bounty: c.BountyID, credit: &c.ID}, move(acctPayable(c.Recipient), acctPaid(c.Recipient), c.AmountCents)...); err != nil {
		return false, err
	}
	msg := fmt.Sprintf("Paid %s to @%s.", Cents(c.AmountCents), c.Recipient)
	if c.BountyID != nil {
		if _, err := exec(tx, `UPDATE bounties SET state = 'paid', updated_at = ? WHERE id = ? AND state = 'claimed'
			AND NOT EXISTS (SELECT 1 FROM bounty_credits WHERE bounty_id = ? AND state <> 'paid')`, now, *c.BountyID, *c.BountyID); err != nil {
			return false, fmt.Errorf("mark bounty %d paid: %w", *c.BountyID, err)
		}
	}
	addCredit(tx, o, c, msg)
	if err := event(tx, now, c.BountyID, c.Repo, c.Number, "paid", "", c.Recipient, msg+" Transfer "+transferID); err != nil {
		return false, err
	}
	return true, s.recomputeStage(tx, c.Recipient, "", "paid "+Cents(c.AmountCents).String()+" on "+fmt.Sprintf("%s#%d", c.Repo, c.Number))
}

// RetryInput names a failed payout to try again.
type RetryInput struct {
	CreditID   int64
	Actor      string
	Maintainer bool
}

// Retry sends a failed payout again; maintainers only. A failure is a definite "no" from
// Stripe, which Stripe remembers under the old idempotency key, so the retry gets a new key
// (the old one stays recorded in the history).
func (s *Service) Retry(ctx context.Context, in RetryInput) (Result, error) {
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers may retry a payout")
	}
	now := s.now()
	err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		c, err := creditByID(tx, in.CreditID)
		if err != nil {
			return err
		}
		if c.State != CreditFailed {
			return refuse(ErrRefused, "payout %d is %s; only failed payouts can be retried", c.ID, strings.ReplaceAll(c.State, "_", " "))
		}
		key := fmt.Sprintf("gradforge-credit-%d-retry-%d", c.ID, c.Retries+1)
		n, err := exec(tx, `UPDATE bounty_credits SET state = 'approved', retries = retries + 1, idempotency_key = ?, updated_at = ? WHERE id = ? AND state = 'failed' AND retries = ?`, key, now, c.ID, c.Retries)
		if err != nil {
			return fmt.Errorf("retry credit %d: %w", c.ID, err)
		}
		if n == 0 {
			return refuse(ErrRefused, "payout %d is being retried already", c.ID)
		}
		msg := fmt.Sprintf("@%s retries the payout of %s to @%s (previous key %s, new key %s).", in.Actor, Cents(c.AmountCents), c.Recipient, c.IdempotencyKey, key)
		return event(tx, now, c.BountyID, c.Repo, c.Number, "retry", in.Actor, c.Recipient, msg)
	})
	if err != nil {
		return Result{}, err
	}
	r, err := s.pay(ctx, in.CreditID)
	r.Changed = true
	return r, err
}

// TipInput is /tip $N @user: a payout without a bounty, from the platform balance.
type TipInput struct {
	Repo        string
	Number      int
	From        string
	To          string
	AmountCents int64
	Maintainer  bool
	// RequestKey names the request (e.g. "comment:123456") so a retried command tips once.
	RequestKey string
}

// Tip pays a contributor from the platform balance. Only maintainers tip, and their tip is
// its own approval.
func (s *Service) Tip(ctx context.Context, in TipInput) (Result, error) {
	if err := validRepo(in.Repo); err != nil {
		return Result{}, err
	}
	from, err := login(in.From)
	if err != nil {
		return Result{}, err
	}
	to, err := login(in.To)
	if err != nil {
		return Result{}, err
	}
	if err := s.checkAmount(in.AmountCents); err != nil {
		return Result{}, err
	}
	if strings.TrimSpace(in.RequestKey) == "" {
		return Result{}, refuse(ErrBadInput, "a tip needs a request key so a retry cannot tip twice")
	}
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers of %s may tip from the platform balance", in.Repo)
	}
	if from == to {
		return Result{}, refuse(ErrRefused, "@%s cannot tip themselves", from)
	}
	now := s.now()
	var c Credit
	fresh := false
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		var prev []Credit
		if err := tx.Raw(`SELECT * FROM bounty_credits WHERE request_key = ?`, in.RequestKey).Scan(&prev).Error; err != nil {
			return fmt.Errorf("tip: %w", err)
		}
		if len(prev) > 0 {
			c = prev[0]
			return nil
		}
		rk := in.RequestKey
		c = Credit{Kind: "tip", Repo: in.Repo, Number: in.Number, Recipient: to, AmountCents: in.AmountCents, Currency: "usd", State: CreditApproved,
			RequestKey: &rk, CreatedBy: from, CreatedAt: now, ApprovedBy: from, ApprovedAt: &now, UpdatedAt: now}
		if err := insertCredit(tx, &c); err != nil {
			return err
		}
		if err := postCredit(tx, c, now); err != nil {
			return err
		}
		fresh = true
		msg := fmt.Sprintf("@%s tipped @%s %s.", from, to, Cents(c.AmountCents))
		o.add(c.Repo, c.Number, msg)
		return event(tx, now, nil, c.Repo, c.Number, "tip", from, to, msg)
	})
	if err != nil {
		return Result{}, err
	}
	if !fresh {
		return Result{Message: fmt.Sprintf("This tip (%s to @%s) was already recorded; it is %s.", Cents(c.AmountCents), c.Recipient, strings.ReplaceAll(c.State, "_", " "))}, nil
	}
	r, err := s.pay(ctx, c.ID)
	r.Changed = true
	r.Message = fmt.Sprintf("@%s tipped @%s %s. %s", from, to, Cents(c.AmountCents), r.Message)
	return r, err
}

// onboardURL is the forge page where a contributor, signed in, gets their Stripe onboarding
// link. Notices carry this URL, never Stripe's link itself.
func (s *Service) onboardURL(login string) string { return s.cfg.BaseURL + "/stripe/onboard/" + login }

// Onboard makes sure a contributor has a Stripe Express account and returns a fresh
// onboarding link (links are single-use and short-lived, so each call makes a new one).
// The link lets its holder set where the contributor's money goes: give it only to that
// contributor, after they signed in (the web app, or the /stripe/onboard page).
func (s *Service) Onboard(ctx context.Context, who string) (Result, error) {
	l, err := login(who)
	if err != nil {
		return Result{}, err
	}
	if s.cfg.Stripe == nil {
		return Result{}, refuse(ErrRefused, "payouts are not configured on this forge (no Stripe key)")
	}
	db := s.db.WithContext(ctx)
	acct, err := accountOf(db, l)
	if err != nil {
		return Result{}, err
	}
	if acct == nil {
		id, err := s.cfg.Stripe.createAccount(ctx, l)
		if err != nil {
			return Result{}, err
		}
		now := s.now()
		if err := db.Exec(`INSERT INTO bounty_accounts (login, stripe_account_id, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (login) DO NOTHING`, l, id, now, now).Error; err != nil {
			return Result{}, fmt.Errorf("store stripe account of @%s: %w", l, err)
		}
		if acct, err = accountOf(db, l); err != nil || acct == nil {
			return Result{}, fmt.Errorf("stripe account of @%s vanished: %w", l, err)
		}
	}
	if acct.PayoutsEnabled {
		return Result{Message: fmt.Sprintf("@%s can already receive payouts.", l)}, nil
	}
	link, err := s.cfg.Stripe.accountLink(ctx, acct.StripeAccountID, s.onboardURL(l), s.cfg.BaseURL+"/stripe/onboarded/"+l)
	if err != nil {
		return Result{}, err
	}
	return Result{Changed: true, Link: link, Message: fmt.Sprintf("@%s, finish Stripe onboarding to receive payouts.", l)}, nil
}

// Tick does the periodic work: expired locks and bounties close (and refund), refunds are
// sent, transfers stuck in flight longer than the lease are asked for again with their own
// idempotency key, approved payouts to newly enabled accounts start, and Stripe's fees on
// card fundings are read into the ledger. Safe to run on every
// server at once.
func (s *Service) Tick(ctx context.Context) error {
	if err := s.tx(ctx, func(tx *gorm.DB, o *outbox) error { return s.expireAttempts(tx, o, "") }); err != nil {
		return err
	}
	if err := s.expireBounties(ctx); err != nil {
		return err
	}
	s.settleRefunds(ctx)
	return errors.Join(s.resumeTransfers(ctx), s.recordFees(ctx))
}

func (s *Service) resumeTransfers(ctx context.Context) error {
	if s.cfg.Stripe == nil {
		return nil
	}
	db := s.db.WithContext(ctx)
	now := s.now()
	var stuck []Credit
	cutoff := now.Add(-s.cfg.TransferLease)
	if err := db.Raw(`SELECT * FROM bounty_credits WHERE state = 'transferring' AND transferring_since < ?`, cutoff).Scan(&stuck).Error; err != nil {
		return fmt.Errorf("stuck transfers: %w", err)
	}
	var errs []error
	for _, c := range stuck {
		// Take the lease first so two servers do not both ask (asking twice would still be
		// safe: same key, same transfer).
		n, err := exec(db, `UPDATE bounty_credits SET transferring_since = ? WHERE id = ? AND state = 'transferring' AND transferring_since < ?`, now, c.ID, cutoff)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n == 0 {
			continue
		}
		acct, err := accountOf(db, c.Recipient)
		if err != nil || acct == nil {
			errs = append(errs, fmt.Errorf("resume credit %d: no account for @%s: %w", c.ID, c.Recipient, err))
			continue
		}
		s.log.InfoContext(ctx, "resuming transfer with its idempotency key", "credit", c.ID, "key", c.IdempotencyKey)
		if _, err := s.send(ctx, c, acct.StripeAccountID); err != nil {
			errs = append(errs, err)
		}
	}
	var ready []int64
	if err := db.Raw(`SELECT c.id FROM bounty_credits c JOIN bounty_accounts a ON a.login = c.recipient WHERE c.state = 'approved' AND a.payouts_enabled`).Scan(&ready).Error; err != nil {
		return fmt.Errorf("approved payouts: %w", err)
	}
	for _, id := range ready {
		if _, err := s.pay(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run calls Tick every interval until ctx is done.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "bounties tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeclineInput is a maintainer refusing a payout that awaits approval.
type DeclineInput struct {
	CreditID   int64
	Actor      string
	Maintainer bool
	// Reason is required: the contributor reads it.
	Reason string
}

// DeclinePayout refuses a payout awaiting approval, with a reason. Once every credit of a
// won claim is declined the claim loses and the bounty reopens (claimed → open) with its
// pool intact, so another pull request can earn it. No money moves: a credit is only posted
// to the ledger on approval.
func (s *Service) DeclinePayout(ctx context.Context, in DeclineInput) (Result, error) {
	if !in.Maintainer {
		return Result{}, refuse(ErrForbidden, "only maintainers may decline payouts")
	}
	actor, err := login(in.Actor)
	if err != nil {
		return Result{}, err
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return Result{}, refuse(ErrBadInput, "declining a payout needs a reason the contributor can read")
	}
	now := s.now()
	var res Result
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		c, err := creditByID(tx, in.CreditID)
		if err != nil {
			return err
		}
		n, err := exec(tx, `UPDATE bounty_credits SET state = 'declined', failure = ?, updated_at = ? WHERE id = ? AND state = 'awaiting_approval'`, reason, now, c.ID)
		if err != nil {
			return fmt.Errorf("decline credit %d: %w", c.ID, err)
		}
		if n == 0 {
			return refuse(ErrRefused, "@%s's payout is %s; only payouts awaiting approval can be declined", c.Recipient, strings.ReplaceAll(c.State, "_", " "))
		}
		msg := fmt.Sprintf("@%s declined the payout of %s to @%s: %s", actor, Cents(c.AmountCents), c.Recipient, reason)
		addCredit(tx, o, c, msg)
		if err := event(tx, now, c.BountyID, c.Repo, c.Number, "decline", actor, c.Recipient, msg); err != nil {
			return err
		}
		res = Result{Changed: true, Message: msg}
		if c.ClaimID == nil || c.BountyID == nil {
			return nil
		}
		var left int64
		if err := tx.Raw(`SELECT COUNT(*) FROM bounty_credits WHERE claim_id = ? AND state <> 'declined'`, *c.ClaimID).Scan(&left).Error; err != nil {
			return fmt.Errorf("credits of claim %d: %w", *c.ClaimID, err)
		}
		if left > 0 {
			return nil
		}
		if n, err := exec(tx, `UPDATE bounty_claims SET state = 'lost', reason = ?, decided_at = ? WHERE id = ? AND state = 'won'`, "payout declined: "+reason, now, *c.ClaimID); err != nil || n == 0 {
			return fmt.Errorf("unwin claim %d (changed %d): %w", *c.ClaimID, n, err)
		}
		if n, err := exec(tx, `UPDATE bounties SET state = 'open', updated_at = ? WHERE id = ? AND state = 'claimed'`, now, *c.BountyID); err != nil || n == 0 {
			return fmt.Errorf("reopen bounty %d (changed %d): %w", *c.BountyID, n, err)
		}
		res.Message += " The bounty is open again."
		o.add(c.Repo, c.Number, "The bounty is open again.")
		return event(tx, now, c.BountyID, c.Repo, c.Number, "reopen", actor, "", "the bounty reopened after its payout was declined")
	})
	return res, err
}
