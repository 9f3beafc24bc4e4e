package bounties

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"
	"gorm.io/gorm"
)

// maxWebhookBody caps a Stripe webhook body; Stripe's events are far smaller.
const maxWebhookBody = 1 << 20

// Routes adds the Stripe routes: the webhook, and the pages Stripe's onboarding returns to.
func (s *Service) Routes(r gin.IRouter) {
	r.POST("/webhooks/stripe", s.webhookHandler)
	r.GET("/stripe/onboarded/:login", s.onboardedHandler)
	r.GET("/stripe/onboard/:login", s.onboardAgainHandler)
}

func (s *Service) webhookHandler(c *gin.Context) {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxWebhookBody+1))
	if err != nil {
		c.String(http.StatusBadRequest, "read body: %v", err)
		return
	}
	if len(body) > maxWebhookBody {
		c.String(http.StatusRequestEntityTooLarge, "body over %d bytes", maxWebhookBody)
		return
	}
	dup, err := s.HandleWebhook(c.Request.Context(), body, c.GetHeader("Stripe-Signature"))
	switch {
	case errors.Is(err, ErrBadSignature):
		c.String(http.StatusBadRequest, "%v", err)
	case err != nil:
		// Not recorded, so Stripe's retry will process it again.
		s.log.ErrorContext(c.Request.Context(), "stripe webhook", "err", err)
		c.String(http.StatusInternalServerError, "could not process the event; retry")
	case dup:
		c.String(http.StatusOK, "duplicate event, already processed")
	default:
		c.String(http.StatusOK, "ok")
	}
}

// HandleWebhook verifies a Stripe event's signature and applies it exactly once: the event's
// id is recorded in the same transaction as its effects, so a duplicate reports dup and
// changes nothing, and a failure records nothing so Stripe's retry runs it again. Events
// that arrive out of order are each checked against the state they find.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string) (dup bool, err error) {
	if s.cfg.WebhookSecret == "" {
		return false, fmt.Errorf("%w: no webhook signing secret configured, refusing every event", ErrBadSignature)
	}
	// The API-version check is off because Stripe sends events in the account's API version,
	// which need not match stripe-go's; refusing them would lose money events for good. The
	// fields read below are stable across versions. The signature and its timestamp
	// tolerance are checked as ConstructEvent does.
	ev, err := webhook.ConstructEventWithOptions(payload, signature, s.cfg.WebhookSecret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	var after []func()
	err = s.tx(ctx, func(tx *gorm.DB, o *outbox) error {
		after = nil
		n, err := exec(tx, `INSERT INTO bounty_stripe_events (id, type, created, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, ev.ID, string(ev.Type), ev.Created, s.now())
		if err != nil {
			return fmt.Errorf("record stripe event %s: %w", ev.ID, err)
		}
		if n == 0 {
			dup = true
			return nil
		}
		switch ev.Type {
		case "account.updated":
			return s.onAccountUpdated(ctx, tx, ev, &after)
		case "transfer.created":
			return s.onTransferCreated(tx, o, ev)
		case "transfer.reversed":
			return s.onTransferReversed(tx, o, ev)
		case "checkout.session.completed":
			return s.onCheckoutCompleted(ctx, tx, o, ev, &after)
		case "charge.refunded":
			return s.onChargeRefunded(tx, o, ev)
		case "checkout.session.expired":
			return s.onCheckoutExpired(tx, ev)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("stripe event %s (%s): %w", ev.ID, ev.Type, err)
	}
	for _, f := range after {
		f()
	}
	return dup, nil
}

func decode(ev stripe.Event, into any) error {
	if ev.Data == nil {
		return fmt.Errorf("event %s has no data", ev.ID)
	}
	if err := json.Unmarshal(ev.Data.Raw, into); err != nil {
		return fmt.Errorf("decode %s object: %w", ev.Type, err)
	}
	return nil
}

// onAccountUpdated stores an account's payout ability, ignoring events older than the last
// one applied; when payouts become enabled, that person's approved payouts start.
func (s *Service) onAccountUpdated(ctx context.Context, tx *gorm.DB, ev stripe.Event, after *[]func()) error {
	var a stripe.Account
	if err := decode(ev, &a); err != nil {
		return err
	}
	n, err := exec(tx, `UPDATE bounty_accounts SET payouts_enabled = ?, details_submitted = ?, stripe_updated = ?, updated_at = ? WHERE stripe_account_id = ? AND stripe_updated <= ?`,
		a.PayoutsEnabled, a.DetailsSubmitted, ev.Created, s.now(), a.ID, ev.Created)
	if err != nil {
		return fmt.Errorf("update account %s: %w", a.ID, err)
	}
	if n == 0 || !a.PayoutsEnabled {
		return nil
	}
	var who string
	if err := tx.Raw(`SELECT login FROM bounty_accounts WHERE stripe_account_id = ?`, a.ID).Scan(&who).Error; err != nil {
		return fmt.Errorf("owner of account %s: %w", a.ID, err)
	}
	*after = append(*after, func() { s.releaseWaiting(context.WithoutCancel(ctx), who) })
	return nil
}

// releaseWaiting starts the approved payouts of someone whose payouts just became enabled.
func (s *Service) releaseWaiting(ctx context.Context, who string) {
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM bounty_credits WHERE recipient = ? AND state = 'approved' ORDER BY id`, who).Scan(&ids).Error; err != nil {
		s.log.ErrorContext(ctx, "waiting payouts", "login", who, "err", err)
		return
	}
	for _, id := range ids {
		if _, err := s.pay(ctx, id); err != nil {
			s.log.ErrorContext(ctx, "release payout", "credit", id, "err", err)
		}
	}
}

// creditOfTransfer finds the credit a transfer pays, by our metadata, checking that the
// transfer carries the credit's current idempotency key or is the transfer already recorded.
func creditOfTransfer(tx *gorm.DB, t stripe.Transfer) (*Credit, error) {
	var cs []Credit
	if err := tx.Raw(`SELECT * FROM bounty_credits WHERE transfer_id = ?`, t.ID).Scan(&cs).Error; err != nil {
		return nil, fmt.Errorf("credit of transfer %s: %w", t.ID, err)
	}
	if len(cs) > 0 {
		return &cs[0], nil
	}
	id, err := strconv.ParseInt(t.Metadata["credit_id"], 10, 64)
	if err != nil {
		return nil, nil // not one of ours
	}
	c, err := creditByID(tx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c.IdempotencyKey != t.Metadata["idempotency_key"] {
		return nil, nil // a transfer from an earlier, failed key cannot exist; ignore
	}
	return &c, nil
}

func (s *Service) onTransferCreated(tx *gorm.DB, o *outbox, ev stripe.Event) error {
	var t stripe.Transfer
	if err := decode(ev, &t); err != nil {
		return err
	}
	c, err := creditOfTransfer(tx, t)
	if err != nil || c == nil {
		return err
	}
	if c.AmountCents != t.Amount {
		s.log.Error("transfer amount differs from its credit", "transfer", t.ID, "credit", c.ID, "transfer_cents", t.Amount, "credit_cents", c.AmountCents)
	}
	_, err = s.settlePaid(tx, o, c.ID, t.ID)
	return err
}

// onTransferReversed records money pulled back from a contributor: the credit becomes
// reversed and the ledger returns the reversed amount to the platform. A reversal that
// arrives before transfer.created settles the transfer first.
func (s *Service) onTransferReversed(tx *gorm.DB, o *outbox, ev stripe.Event) error {
	var t stripe.Transfer
	if err := decode(ev, &t); err != nil {
		return err
	}
	c, err := creditOfTransfer(tx, t)
	if err != nil || c == nil {
		return err
	}
	if c.State == CreditTransferring {
		if _, err := s.settlePaid(tx, o, c.ID, t.ID); err != nil {
			return err
		}
	}
	now := s.now()
	n, err := exec(tx, `UPDATE bounty_credits SET state = 'reversed', updated_at = ? WHERE id = ? AND state = 'paid' AND transfer_id = ?`, now, c.ID, t.ID)
	if err != nil || n == 0 {
		return err
	}
	amt := t.AmountReversed
	if amt <= 0 || amt > c.AmountCents {
		amt = c.AmountCents
	}
	if _, err := post(tx, now, fmt.Sprintf("reversal:%d", c.ID), "reversal", "Stripe reversed transfer "+t.ID,
		txnRefs{bounty: c.BountyID, credit: &c.ID}, move(acctPaid(c.Recipient), acctPlatform, amt)...); err != nil {
		return err
	}
	msg := fmt.Sprintf("Stripe reversed %s of the transfer to @%s.", Cents(amt), c.Recipient)
	addCredit(tx, o, *c, msg)
	return event(tx, now, c.BountyID, c.Repo, c.Number, "reversed", "", c.Recipient, msg)
}

// onCheckoutCompleted turns a paid Checkout into money in the pool. Money that arrives for a
// bounty that closed or was awarded meanwhile is refunded at once, never kept.
func (s *Service) onCheckoutCompleted(ctx context.Context, tx *gorm.DB, o *outbox, ev stripe.Event, after *[]func()) error {
	var cs stripe.CheckoutSession
	if err := decode(ev, &cs); err != nil {
		return err
	}
	if cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid {
		return nil // async payment methods report again when paid
	}
	var fs []Funding
	if err := tx.Raw(`SELECT * FROM bounty_fundings WHERE checkout_session_id = ?`, cs.ID).Scan(&fs).Error; err != nil {
		return fmt.Errorf("funding of checkout %s: %w", cs.ID, err)
	}
	if len(fs) == 0 {
		if id, err := strconv.ParseInt(cs.Metadata["funding_id"], 10, 64); err == nil {
			tx.Raw(`SELECT * FROM bounty_fundings WHERE id = ? AND checkout_session_id IS NULL`, id).Scan(&fs)
		}
	}
	if len(fs) == 0 || cs.PaymentIntent == nil || cs.PaymentIntent.ID == "" {
		s.log.Error("checkout completed for no known funding: check it in Stripe's dashboard", "session", cs.ID, "amount", cs.AmountTotal)
		return nil
	}
	f := fs[0]
	now := s.now()
	amt := f.AmountCents
	if cs.AmountTotal > 0 && cs.AmountTotal != amt {
		s.log.Error("checkout charged a different amount than pledged; recording what was charged", "funding", f.ID, "pledged", amt, "charged", cs.AmountTotal)
		amt = cs.AmountTotal
	}
	n, err := exec(tx, `UPDATE bounty_fundings SET state = 'funded', amount_cents = ?, payment_intent_id = ?, checkout_session_id = ?, funded_at = ? WHERE id = ? AND state IN ('pending', 'expired')`,
		amt, cs.PaymentIntent.ID, cs.ID, now, f.ID)
	if err != nil || n == 0 {
		return err
	}
	f.AmountCents, f.PaymentIntentID, f.State = amt, &cs.PaymentIntent.ID, FundingFunded
	b, err := bountyByID(tx, f.BountyID)
	if err != nil {
		return err
	}
	if _, err := post(tx, now, fmt.Sprintf("funding:%d", f.ID), "funding", fmt.Sprintf("@%s funds %s#%d by card (%s)", f.Sponsor, b.Repo, b.Issue, cs.ID),
		txnRefs{bounty: &b.ID, funding: &f.ID}, move(acctSponsor(f.Sponsor), acctBounty(b.ID), amt)...); err != nil {
		return err
	}
	msg := fmt.Sprintf("@%s's %s arrived.", f.Sponsor, Cents(amt))
	open := stillOpen(tx, b, now) == nil
	if !open {
		if b, err = bountyByID(tx, b.ID); err != nil {
			return err
		}
	}
	if !open {
		msg = fmt.Sprintf("@%s's %s arrived after the bounty was %s, so it is being refunded.", f.Sponsor, Cents(amt), b.State)
		if err := s.startRefund(tx, f, now); err != nil {
			return err
		}
		*after = append(*after, func() { s.settleRefunds(context.WithoutCancel(ctx)) })
	}
	*after = append(*after, func() {
		if err := s.recordFees(context.WithoutCancel(ctx)); err != nil {
			s.log.WarnContext(ctx, "Stripe fee not read yet; the tick retries", "funding", f.ID, "err", err)
		}
	})
	o.add(b.Repo, b.Issue, msg)
	return event(tx, now, &b.ID, b.Repo, b.Issue, "funded", f.Sponsor, f.Sponsor, msg)
}

// onCheckoutExpired drops a pledge whose Checkout expired unpaid.
func (s *Service) onCheckoutExpired(tx *gorm.DB, ev stripe.Event) error {
	var cs stripe.CheckoutSession
	if err := decode(ev, &cs); err != nil {
		return err
	}
	_, err := exec(tx, `UPDATE bounty_fundings SET state = 'expired', checkout_url = '' WHERE checkout_session_id = ? AND state = 'pending'`, cs.ID)
	return err
}

// onChargeRefunded confirms a refund, including one made in Stripe's dashboard.
func (s *Service) onChargeRefunded(tx *gorm.DB, o *outbox, ev stripe.Event) error {
	var ch stripe.Charge
	if err := decode(ev, &ch); err != nil {
		return err
	}
	if ch.PaymentIntent == nil || ch.PaymentIntent.ID == "" {
		return nil
	}
	var fs []Funding
	if err := tx.Raw(`SELECT * FROM bounty_fundings WHERE payment_intent_id = ? AND state IN ('funded', 'refunding')`, ch.PaymentIntent.ID).Scan(&fs).Error; err != nil {
		return fmt.Errorf("funding of payment %s: %w", ch.PaymentIntent.ID, err)
	}
	for _, f := range fs {
		if err := s.finishRefund(tx, f, "charge:"+ch.ID, ch.AmountRefunded, s.now()); err != nil {
			return err
		}
		b, err := bountyByID(tx, f.BountyID)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("Stripe confirmed the refund of %s to @%s.", Cents(min(ch.AmountRefunded, f.AmountCents)), f.Sponsor)
		o.add(b.Repo, b.Issue, msg)
		if err := event(tx, s.now(), &b.ID, b.Repo, b.Issue, "refunded", "", f.Sponsor, msg); err != nil {
			return err
		}
	}
	return nil
}

var onboardedPage = template.Must(template.New("onboarded").Parse(`<!doctype html><meta charset="utf-8"><title>Payouts</title>
<p>{{.}}</p>`))

// onboardedHandler is where Stripe sends a contributor after onboarding: it asks Stripe for
// the account's state at once rather than waiting for the webhook.
func (s *Service) onboardedHandler(c *gin.Context) {
	msg, err := s.RefreshAccount(c.Request.Context(), c.Param("login"))
	if err != nil {
		msg = "Could not check your Stripe account: " + Reason(err)
	}
	c.Status(http.StatusOK)
	c.Header("Content-Type", "text/html; charset=utf-8")
	onboardedPage.Execute(c.Writer, msg)
}

// onboardAgainHandler is where notices send contributors to set up payouts, and Stripe's
// refresh_url: it redirects the signed-in contributor, and only them, to a fresh onboarding
// link.
func (s *Service) onboardAgainHandler(c *gin.Context) {
	want, err := login(c.Param("login"))
	page := func(code int, msg string) {
		c.Status(code)
		c.Header("Content-Type", "text/html; charset=utf-8")
		onboardedPage.Execute(c.Writer, msg)
	}
	if err != nil {
		page(http.StatusBadRequest, Reason(err))
		return
	}
	who, enabled := "", false
	if s.cfg.SignedIn != nil {
		who, enabled = s.cfg.SignedIn(c.Request)
		who = strings.ToLower(who)
	}
	switch {
	case !enabled:
		page(http.StatusForbidden, "Payout setup needs sign-in, which this forge has not enabled; ask a maintainer.")
		return
	case who == "":
		c.Redirect(http.StatusFound, s.cfg.BaseURL+"/login?next="+url.QueryEscape("/stripe/onboard/"+want))
		return
	case who != want:
		page(http.StatusForbidden, fmt.Sprintf("You are signed in as @%s; only @%s can set up @%s's payouts.", who, want, want))
		return
	}
	r, err := s.Onboard(c.Request.Context(), want)
	if err != nil || r.Link == "" {
		page(http.StatusOK, r.Message+Reason(err))
		return
	}
	c.Redirect(http.StatusFound, r.Link)
}

// RefreshAccount reads a contributor's account from Stripe, stores whether payouts are
// enabled, and starts their waiting payouts if so.
func (s *Service) RefreshAccount(ctx context.Context, who string) (string, error) {
	l, err := login(who)
	if err != nil {
		return "", err
	}
	if s.cfg.Stripe == nil {
		return "", refuse(ErrRefused, "payouts are not configured on this forge")
	}
	acct, err := accountOf(s.db.WithContext(ctx), l)
	if err != nil {
		return "", err
	}
	if acct == nil {
		return "", refuse(ErrNotFound, "@%s has no Stripe account here yet", l)
	}
	a, err := s.cfg.Stripe.account(ctx, acct.StripeAccountID)
	if err != nil {
		return "", err
	}
	if err := s.db.WithContext(ctx).Exec(`UPDATE bounty_accounts SET payouts_enabled = ?, details_submitted = ?, updated_at = ? WHERE login = ?`, a.PayoutsEnabled, a.DetailsSubmitted, s.now(), l).Error; err != nil {
		return "", fmt.Errorf("store account of @%s: %w", l, err)
	}
	if !a.PayoutsEnabled {
		return fmt.Sprintf("Thanks, @%s. Stripe has not enabled payouts on your account yet; your payouts start as soon as it does.", l), nil
	}
	s.releaseWaiting(ctx, l)
	return fmt.Sprintf("Thanks, @%s. Payouts are enabled; approved payouts are on their way.", l), nil
}
