package bounties

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
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
		if n, _ := e.notes.last("o/r", 7); n.Event == "" || !bytes.Contains([]byte(n.Event), []byte("https://")) {
			t.Fatalf("alice was not sent an onboarding link: %+v", n)
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

func TestStripeRoutesAnswer(t *testing.T) {
	needStripe(t)
	e := newEnv(t, mustSQLite(t), true)
	h := routes(e.s)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/stripe/onboard/alice", nil))
	if w.Code != http.StatusFound || w.Header().Get("Location") == "" {
		t.Fatalf("onboard refresh: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/stripe/onboarded/alice", nil))
	if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte("alice")) {
		t.Fatalf("onboarded page: %d %s", w.Code, w.Body)
	}
}
