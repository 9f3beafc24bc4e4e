package bounties

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"
	"gorm.io/gorm"
)

func TestWebhookSignatureRefusals(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		h := routes(e.s)
		payload := []byte(`{"id":"evt_forged","object":"event","type":"account.updated","created":1,"data":{"object":{"id":"acct_1","object":"account","payouts_enabled":true}}}`)
		before := e.snapshot()
		for _, tc := range []struct {
			name, header string
		}{
			{"no signature", ""},
			{"signed with another secret", webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: "whsec_attacker"}).Header},
			{"a valid signature from long ago", webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: testSecret, Timestamp: time.Now().Add(-time.Hour)}).Header},
			{"garbage", "t=1,v1=zz"},
		} {
			req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(payload))
			if tc.header != "" {
				req.Header.Set("Stripe-Signature", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", tc.name, w.Code)
			}
		}
		// A body altered after signing.
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: testSecret})
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(bytes.Replace(payload, []byte("true"), []byte("false"), 1)))
		req.Header.Set("Stripe-Signature", sp.Header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("tampered body: status %d, want 400", w.Code)
		}
		if after := e.snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("forged webhooks wrote rows: %v → %v", before, after)
		}
		// No secret configured: every event is refused, even a correctly signed one.
		open := New(db, Config{})
		if _, err := open.HandleWebhook(e.ctx, payload, sp.Header); err == nil {
			t.Fatal("a service without a webhook secret accepted an event")
		}
	})
}

func TestWebhooksDuplicateAndOutOfOrder(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		send := func(id, typ string, created int64, obj any) {
			t.Helper()
			if w := e.sendEvent(h, id, typ, created, obj); w.Code != http.StatusOK {
				t.Fatalf("%s %s: %d %s", id, typ, w.Code, w.Body)
			}
		}
		// Onboarding: payouts enabled (event 20), then an older event saying disabled (10).
		if _, err := e.s.Onboard(e.ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		a, _ := accountOf(db, "alice")
		e.fund("o/r", 7, 50_00)
		cs := e.win("o/r", 7, 50, "alice")
		if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		if got := e.credit(cs[0].ID).State; got != CreditApproved {
			t.Fatalf("credit %s before onboarding, want approved", got)
		}
		if n, _ := e.notes.last("o/r", 7); !bytes.Contains([]byte(n.Event), []byte("http://forge.test/stripe/onboard/alice")) || bytes.Contains([]byte(n.Event), []byte("stripe.com")) {
			t.Fatalf("alice was not sent to the forge's onboarding page (or a raw Stripe link was posted): %+v", n)
		}
		send("evt_a2", "account.updated", 20, map[string]any{"id": a.StripeAccountID, "object": "account", "payouts_enabled": true, "details_submitted": true})
		if got := e.credit(cs[0].ID); got.State != CreditPaid {
			t.Fatalf("account.updated did not release the waiting payout: %s", got.State)
		}
		send("evt_a1", "account.updated", 10, map[string]any{"id": a.StripeAccountID, "object": "account", "payouts_enabled": false})
		if a2, _ := accountOf(db, "alice"); !a2.PayoutsEnabled {
			t.Fatal("an older account.updated overwrote a newer one")
		}
		// transfer.created after we already recorded the transfer, twice: nothing changes.
		c := e.credit(cs[0].ID)
		tr := map[string]any{"id": *c.TransferID, "object": "transfer", "amount": c.AmountCents, "amount_reversed": 0, "currency": "usd",
			"metadata": map[string]string{"credit_id": fmt.Sprint(c.ID), "idempotency_key": c.IdempotencyKey}}
		ledger := e.count(`SELECT COUNT(*) FROM bounty_ledger_entries`)
		send("evt_t1", "transfer.created", 30, tr)
		send("evt_t1", "transfer.created", 30, tr)
		if n := e.count(`SELECT COUNT(*) FROM bounty_ledger_entries`); n != ledger {
			t.Fatalf("replayed transfer.created wrote %d ledger rows", n-ledger)
		}
		// transfer.reversed, delivered twice under two ids: reversed once.
		tr["amount_reversed"] = c.AmountCents
		send("evt_r1", "transfer.reversed", 40, tr)
		send("evt_r2", "transfer.reversed", 41, tr)
		send("evt_r1", "transfer.reversed", 40, tr)
		if got := e.credit(c.ID).State; got != CreditReversed {
			t.Fatalf("credit %s after reversal, want reversed", got)
		}
		if n := e.count(`SELECT COUNT(*) FROM bounty_ledger_txns WHERE kind = 'reversal'`); n != 1 {
			t.Fatalf("%d reversal transactions, want 1", n)
		}
		if bal, _ := e.s.Balance(e.ctx, "paid:alice"); bal != 0 {
			t.Fatalf("paid:alice = %d after full reversal, want 0", bal)
		}
		if n := e.count(`SELECT COUNT(*) FROM bounty_stripe_events`); n != 5 {
			t.Fatalf("%d distinct events recorded, want 5", n)
		}
	})
}

func TestReversalBeforeCreationSettlesThenReverses(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		e.fund("o/r", 7, 20_00)
		e.onboard("alice")
		cs := e.win("o/r", 7, 50, "alice")
		e.s.crashAfterTransfer = func(int64) error { return fmt.Errorf("crash") }
		e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true})
		e.s.crashAfterTransfer = nil
		c := e.credit(cs[0].ID)
		tid := idOf(t, e.proxy.response(c.IdempotencyKey))
		tr := map[string]any{"id": tid, "object": "transfer", "amount": 20_00, "amount_reversed": 5_00, "currency": "usd",
			"metadata": map[string]string{"credit_id": fmt.Sprint(c.ID), "idempotency_key": c.IdempotencyKey}}
		e.sendEvent(h, "evt_rev", "transfer.reversed", 50, tr)
		e.sendEvent(h, "evt_cre", "transfer.created", 40, tr)
		got := e.credit(c.ID)
		if got.State != CreditReversed || got.TransferID == nil || *got.TransferID != tid {
			t.Fatalf("credit %s / %v, want reversed with %s", got.State, got.TransferID, tid)
		}
		if bal, _ := e.s.Balance(e.ctx, "paid:alice"); bal != 15_00 {
			t.Fatalf("paid:alice = %d, want 1500 (2000 paid, 500 reversed)", bal)
		}
		e.clock.Add(time.Hour)
		e.s.Tick(e.ctx)
		if n := e.proxy.count("POST /v1/transfers"); n != 1 {
			t.Fatalf("%d transfers; the reversed transfer must not be sent again", n)
		}
	})
}

func TestCheckoutAfterCancelIsRefunded(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		e.fund("o/r", 7, 10_00)
		if _, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "late", AmountCents: 7_00, RequestKey: "k"}); err != nil {
			t.Fatal(err)
		}
		var f Funding
		db.Raw(`SELECT * FROM bounty_fundings WHERE request_key = 'k'`).Scan(&f)
		if _, err := e.s.Cancel(e.ctx, CloseInput{Repo: "o/r", Issue: 7, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		if n := e.proxy.count("POST /v1/checkout/sessions/" + *f.CheckoutSessionID + "/expire"); n != 1 {
			t.Fatalf("the open Checkout was expired %d times, want 1", n)
		}
		// The sponsor paid just before the session expired.
		sess := map[string]any{"id": *f.CheckoutSessionID, "object": "checkout.session", "payment_status": "paid", "amount_total": 7_00, "payment_intent": "pi_late"}
		for range 2 {
			if w := e.sendEvent(h, "evt_late", "checkout.session.completed", 10, sess); w.Code != 200 {
				t.Fatalf("webhook %d %s", w.Code, w.Body)
			}
		}
		db.Raw(`SELECT * FROM bounty_fundings WHERE id = ?`, f.ID).Scan(&f)
		if f.State != FundingRefunded {
			t.Fatalf("late payment is %s, want refunded", f.State)
		}
		if n := e.proxy.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refunds for the late payment, want 1", n)
		}
		if bal, _ := e.s.Balance(e.ctx, "sponsor:late"); bal != 0 {
			t.Fatalf("sponsor:late = %d, want 0: money must not be kept", bal)
		}
		if n, ok := e.notes.last("o/r", 7); !ok || !bytes.Contains(bytes.ToLower([]byte(n.Event)), []byte("refund")) {
			t.Fatalf("the late sponsor was not told: %+v", n)
		}
	})
}

func TestOnboardingLinkOnlyForThePersonSignedIn(t *testing.T) {
	needStripe(t)
	e := newEnv(t, mustSQLite(t), true)
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		routes(e.s).ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if w := get("/stripe/onboard/alice"); w.Code != http.StatusForbidden {
		t.Fatalf("without sign-in configured: %d, want 403", w.Code)
	}
	signedIn := ""
	e.s.cfg.SignedIn = func(*http.Request) (string, bool) { return signedIn, true }
	if w := get("/stripe/onboard/alice"); w.Code != http.StatusFound || w.Header().Get("Location") != "http://forge.test/login?next=%2Fstripe%2Fonboard%2Falice" {
		t.Fatalf("signed out: %d → %q, want a redirect to sign in", w.Code, w.Header().Get("Location"))
	}
	signedIn = "mallory"
	if w := get("/stripe/onboard/alice"); w.Code != http.StatusForbidden {
		t.Fatalf("signed in as someone else: %d, want 403", w.Code)
	}
	if n := e.proxy.count("POST /v1/account_links"); n != 0 {
		t.Fatalf("%d onboarding links made for the wrong people", n)
	}
	signedIn = "Alice"
	w := get("/stripe/onboard/alice")
	if w.Code != http.StatusFound || !bytes.Contains([]byte(w.Header().Get("Location")), []byte("https://")) {
		t.Fatalf("alice herself: %d → %q, want a redirect to Stripe", w.Code, w.Header().Get("Location"))
	}
	if n := e.proxy.count("POST /v1/accounts"); n != 1 {
		t.Fatalf("%d Express accounts created, want 1", n)
	}
	get("/stripe/onboard/alice")
	if n := e.proxy.count("POST /v1/accounts"); n != 1 {
		t.Fatalf("a second visit created another account (%d)", n)
	}
	w = get("/stripe/onboarded/alice")
	if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte("alice")) || e.proxy.count("GET /v1/accounts/"+mustAccount(t, e, "alice")) != 1 {
		t.Fatalf("return page: %d %s", w.Code, w.Body)
	}
}

func mustAccount(t *testing.T, e *env, l string) string {
	t.Helper()
	a, err := accountOf(e.db, l)
	if err != nil || a == nil {
		t.Fatalf("no account for %s: %v", l, err)
	}
	return a.StripeAccountID
}

func TestPartialRefundFromTheDashboard(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "sam", AmountCents: 40_00, RequestKey: "c1"})
		var f Funding
		db.Raw(`SELECT * FROM bounty_fundings WHERE request_key = 'c1'`).Scan(&f)
		e.sendEvent(h, "evt_cs", "checkout.session.completed", 1, map[string]any{"id": *f.CheckoutSessionID, "object": "checkout.session", "payment_status": "paid", "amount_total": 40_00, "payment_intent": "pi_1"})
		ch := func(id string, refunded int64) {
			e.sendEvent(h, id, "charge.refunded", 2, map[string]any{"id": "ch_1", "object": "charge", "amount": 40_00, "amount_refunded": refunded, "payment_intent": "pi_1"})
		}
		ch("evt_r1", 10_00)
		ch("evt_r1", 10_00)
		if p, _ := pool(db, f.BountyID); p != 30_00 {
			t.Fatalf("pool %d after a $10 refund, want 3000", p)
		}
		ch("evt_r3", 40_00)
		ch("evt_r2", 25_00) // older, arriving late: the total already covers it
		if p, _ := pool(db, f.BountyID); p != 0 {
			t.Fatalf("pool %d after a full refund, want 0", p)
		}
		db.Raw(`SELECT * FROM bounty_fundings WHERE id = ?`, f.ID).Scan(&f)
		if f.State != FundingRefunded {
			t.Fatalf("funding %s, want refunded", f.State)
		}
		if bal, _ := e.s.Balance(e.ctx, "sponsor:sam"); bal != 0 {
			t.Fatalf("sponsor:sam %d, want 0", bal)
		}
	})
}

func TestExpiredCheckoutDropsThePledge(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "sam", AmountCents: 40_00, RequestKey: "c1"})
		var f Funding
		db.Raw(`SELECT * FROM bounty_fundings WHERE request_key = 'c1'`).Scan(&f)
		e.sendEvent(routes(e.s), "evt_x", "checkout.session.expired", 1, map[string]any{"id": *f.CheckoutSessionID, "object": "checkout.session", "payment_status": "unpaid"})
		d, _ := e.s.BountyDetail(e.ctx, "o/r", 7)
		if d.Bounty.PledgedCents != 0 || d.Fundings[0].State != FundingExpired {
			t.Fatalf("after expiry: pledged %d, funding %s", d.Bounty.PledgedCents, d.Fundings[0].State)
		}
	})
}

func TestConcurrentDuplicateDeliveriesApplyOnce(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "sam", AmountCents: 40_00, RequestKey: "c1"})
		var f Funding
		db.Raw(`SELECT * FROM bounty_fundings WHERE request_key = 'c1'`).Scan(&f)
		sess := map[string]any{"id": *f.CheckoutSessionID, "object": "checkout.session", "payment_status": "paid", "amount_total": 40_00, "payment_intent": "pi_1"}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Two event ids, each delivered ten times at once.
				if w := e.sendEvent(h, fmt.Sprint("evt_", i%2), "checkout.session.completed", 1, sess); w.Code != http.StatusOK {
					t.Errorf("delivery %d: %d %s", i, w.Code, w.Body)
				}
			}()
		}
		wg.Wait()
		if p, _ := pool(db, f.BountyID); p != 40_00 {
			t.Fatalf("pool %d after 20 deliveries of one payment, want 4000", p)
		}
		if n := e.count(`SELECT COUNT(*) FROM bounty_stripe_events`); n != 2 {
			t.Fatalf("%d events recorded, want 2", n)
		}
	})
}

func TestStripeFeeIsPostedOnce(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		e.proxy.rewrite["/v1/payment_intents/pi_fee"] = func(pi map[string]any) {
			pi["latest_charge"].(map[string]any)["balance_transaction"].(map[string]any)["fee"] = 146
		}
		for _, pi := range []string{"pi_fee", "pi_free"} {
			e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "sam", AmountCents: 40_00, RequestKey: pi})
			var f Funding
			db.Raw(`SELECT * FROM bounty_fundings WHERE request_key = ?`, pi).Scan(&f)
			e.sendEvent(h, "evt_"+pi, "checkout.session.completed", 1, map[string]any{"id": *f.CheckoutSessionID, "object": "checkout.session", "payment_status": "paid", "amount_total": 40_00, "payment_intent": pi})
		}
		for range 2 {
			if err := e.s.Tick(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if bal, _ := e.s.Balance(e.ctx, "stripe:fees"); bal != 146 {
			t.Fatalf("stripe:fees = %d, want 146", bal)
		}
		if bal, _ := e.s.Balance(e.ctx, "platform"); bal != -146 {
			t.Fatalf("platform = %d, want -146: the platform bears the fee", bal)
		}
		if p, _ := pool(db, 1); p != 80_00 {
			t.Fatalf("pool %d, want the full 8000 pledged", p)
		}
		if n := e.proxy.count("GET /v1/payment_intents/pi_fee") + e.proxy.count("GET /v1/payment_intents/pi_free"); n != 2 {
			t.Fatalf("fees read %d times, want once per funding", n)
		}
		var fees []int64
		db.Raw(`SELECT fee_cents FROM bounty_fundings ORDER BY id`).Scan(&fees)
		if fmt.Sprint(fees) != "[146 0]" {
			t.Fatalf("fees recorded %v", fees)
		}
	})
}
