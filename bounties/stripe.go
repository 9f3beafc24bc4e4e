package bounties

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/client"
)

// Stripe is the forge's Stripe Connect platform: Express accounts for contributors, Checkout
// for sponsors, Transfers for payouts and Refunds for sponsors of closed bounties. Every
// request that creates something carries an idempotency key derived from our own row, so a
// repeat after a crash or timeout gets Stripe's first answer back instead of a second object.
type Stripe struct {
	api *client.API
}

// StripeOptions configures NewStripe.
type StripeOptions struct {
	// Key is the platform's secret key (sk_live_… or sk_test_…).
	Key string
	// APIURL replaces https://api.stripe.com, for stripe-mock in tests and development.
	APIURL string
	// HTTPClient replaces the default HTTP client.
	HTTPClient *http.Client
	// MaxNetworkRetries is how often stripe-go itself retries a failed request with the
	// same idempotency key (default 2; negative means none).
	MaxNetworkRetries int64
}

// NewStripe returns a client for the Stripe API.
func NewStripe(o StripeOptions) (*Stripe, error) {
	if o.Key == "" {
		return nil, errors.New("stripe: empty secret key")
	}
	retries := o.MaxNetworkRetries
	if retries == 0 {
		retries = 2
	}
	if retries < 0 {
		retries = 0
	}
	cfg := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(retries),
		HTTPClient:        o.HTTPClient,
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if o.APIURL != "" {
		cfg.URL = stripe.String(o.APIURL)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	return &Stripe{api: client.New(o.Key, backends)}, nil
}

// definite reports whether err is Stripe saying no to a request it understood (a 4xx other
// than a conflict or rate limit): the object was certainly not created and a retry needs a new
// key. Anything else (network error, timeout, 5xx, 409, 429) is ambiguous: the object may
// exist, so the only safe retry is the same request with the same key.
func definite(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.HTTPStatusCode
	return c >= 400 && c < 500 && c != http.StatusConflict && c != http.StatusTooManyRequests
}

func (s *Stripe) createAccount(ctx context.Context, login string) (string, error) {
	p := &stripe.AccountParams{
		Type:         stripe.String(string(stripe.AccountTypeExpress)),
		Capabilities: &stripe.AccountCapabilitiesParams{Transfers: &stripe.AccountCapabilitiesTransfersParams{Requested: stripe.Bool(true)}},
		Metadata:     map[string]string{"github_login": login},
	}
	p.Context = ctx
	p.SetIdempotencyKey("gradforge-account-" + login)
	a, err := s.api.Accounts.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: create Express account for @%s: %w", ErrStripe, login, err)
	}
	return a.ID, nil
}

func (s *Stripe) accountLink(ctx context.Context, account, refreshURL, returnURL string) (string, error) {
	p := &stripe.AccountLinkParams{
		Account:    stripe.String(account),
		RefreshURL: stripe.String(refreshURL),
		ReturnURL:  stripe.String(returnURL),
		Type:       stripe.String("account_onboarding"),
	}
	p.Context = ctx
	l, err := s.api.AccountLinks.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: onboarding link for %s: %w", ErrStripe, account, err)
	}
	return l.URL, nil
}

func (s *Stripe) account(ctx context.Context, id string) (*stripe.Account, error) {
	p := &stripe.AccountParams{}
	p.Context = ctx
	a, err := s.api.Accounts.GetByID(id, p)
	if err != nil {
		return nil, fmt.Errorf("%w: get account %s: %w", ErrStripe, id, err)
	}
	return a, nil
}

// transfer asks Stripe to move a credit to the contributor's connected account.
func (s *Stripe) transfer(ctx context.Context, c Credit, destination string) (string, error) {
	p := &stripe.TransferParams{
		Amount:        stripe.Int64(c.AmountCents),
		Currency:      stripe.String(c.Currency),
		Destination:   stripe.String(destination),
		TransferGroup: stripe.String(transferGroup(c)),
		Description:   stripe.String(fmt.Sprintf("gradforge %s %s#%d for @%s", c.Kind, c.Repo, c.Number, c.Recipient)),
		Metadata: map[string]string{
			"credit_id":       strconv.FormatInt(c.ID, 10),
			"idempotency_key": c.IdempotencyKey,
			"github_login":    c.Recipient,
		},
	}
	p.Context = ctx
	p.SetIdempotencyKey(c.IdempotencyKey)
	t, err := s.api.Transfers.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: transfer credit %d (%s): %w", ErrStripe, c.ID, c.IdempotencyKey, err)
	}
	return t.ID, nil
}

// transferGroup is the bounty a transfer belongs to (tips are their own group).
func transferGroup(c Credit) string {
	if c.BountyID != nil {
		return fmt.Sprintf("bounty-%d", *c.BountyID)
	}
	return fmt.Sprintf("tip-%d", c.ID)
}

func (s *Stripe) checkout(ctx context.Context, f Funding, b Bounty, successURL, cancelURL string) (id, url string, err error) {
	group := fmt.Sprintf("bounty-%d", b.ID)
	meta := map[string]string{"funding_id": strconv.FormatInt(f.ID, 10), "bounty_id": strconv.FormatInt(b.ID, 10), "github_login": f.Sponsor}
	p := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		SuccessURL:        stripe.String(successURL),
		CancelURL:         stripe.String(cancelURL),
		ClientReferenceID: stripe.String(strconv.FormatInt(f.ID, 10)),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripe.String("usd"),
				UnitAmount:  stripe.Int64(f.AmountCents),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(fmt.Sprintf("Bounty on %s#%d", b.Repo, b.Issue))},
			},
		}},
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{TransferGroup: stripe.String(group), Metadata: meta},
	}
	p.Metadata = meta
	p.Context = ctx
	p.SetIdempotencyKey(fmt.Sprintf("gradforge-checkout-%d", f.ID))
	cs, err := s.api.CheckoutSessions.New(p)
	if err != nil {
		return "", "", fmt.Errorf("%w: checkout for funding %d: %w", ErrStripe, f.ID, err)
	}
	return cs.ID, cs.URL, nil
}

func (s *Stripe) expireCheckout(ctx context.Context, id string) error {
	p := &stripe.CheckoutSessionExpireParams{}
	p.Context = ctx
	if _, err := s.api.CheckoutSessions.Expire(id, p); err != nil {
		return fmt.Errorf("%w: expire checkout %s: %w", ErrStripe, id, err)
	}
	return nil
}

func (s *Stripe) refund(ctx context.Context, f Funding, key string) (string, error) {
	p := &stripe.RefundParams{
		PaymentIntent: stripe.String(*f.PaymentIntentID),
		Amount:        stripe.Int64(f.AmountCents),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
		Metadata:      map[string]string{"funding_id": strconv.FormatInt(f.ID, 10)},
	}
	p.Context = ctx
	p.SetIdempotencyKey(key)
	r, err := s.api.Refunds.New(p)
	if err != nil {
		return "", fmt.Errorf("%w: refund funding %d: %w", ErrStripe, f.ID, err)
	}
	return r.ID, nil
}

// fee reads Stripe's processing fee on a payment from its charge's balance transaction.
func (s *Stripe) fee(ctx context.Context, paymentIntent string) (int64, error) {
	p := &stripe.PaymentIntentParams{}
	p.Context = ctx
	p.AddExpand("latest_charge.balance_transaction")
	pi, err := s.api.PaymentIntents.Get(paymentIntent, p)
	if err != nil {
		return 0, fmt.Errorf("%w: read payment %s: %w", ErrStripe, paymentIntent, err)
	}
	if pi.LatestCharge == nil || pi.LatestCharge.BalanceTransaction == nil {
		return 0, fmt.Errorf("%w: payment %s has no balance transaction yet", ErrStripe, paymentIntent)
	}
	return pi.LatestCharge.BalanceTransaction.Fee, nil
}

func (s *Stripe) getTransfer(ctx context.Context, id string) (*stripe.Transfer, error) {
	p := &stripe.TransferParams{}
	p.Context = ctx
	t, err := s.api.Transfers.Get(id, p)
	if err != nil {
		return nil, fmt.Errorf("%w: read transfer %s: %w", ErrStripe, id, err)
	}
	return t, nil
}

// transfers lists the platform's newest transfers, at most limit of them.
func (s *Stripe) transfers(ctx context.Context, limit int) ([]*stripe.Transfer, error) {
	p := &stripe.TransferListParams{}
	p.Context = ctx
	p.Limit = stripe.Int64(int64(min(limit, 100)))
	it := s.api.Transfers.List(p)
	var out []*stripe.Transfer
	for len(out) < limit && it.Next() {
		out = append(out, it.Transfer())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("%w: list transfers: %w", ErrStripe, err)
	}
	return out, nil
}
