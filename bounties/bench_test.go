package bounties

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"
	"gorm.io/gorm"
)

// benchService is a service talking straight to stripe-mock (no counting proxy).
func benchService(b *testing.B, db *gorm.DB) *Service {
	b.Helper()
	needStripe(b)
	st, err := NewStripe(StripeOptions{Key: "sk_test_123", APIURL: stripeMockURL, MaxNetworkRetries: -1})
	if err != nil {
		b.Fatal(err)
	}
	return New(db, Config{Stripe: st, WebhookSecret: testSecret, BaseURL: "http://forge.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// BenchmarkStripeTransfer is the reference: one Transfer request to stripe-mock through
// stripe-go, the floor under any payout.
func BenchmarkStripeTransfer(b *testing.B) {
	s := benchService(b, dbtest.SQLite(b))
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		c := Credit{ID: int64(i), Kind: "tip", Repo: "o/r", Number: 1, Recipient: "alice", AmountCents: 100, Currency: "usd", IdempotencyKey: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)}
		if _, err := s.cfg.Stripe.transfer(ctx, c, "acct_1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPayout is a whole bounty's life: platform funding, a merged claim, approval, the
// Stripe transfer and its settlement in the ledger.
func BenchmarkPayout(b *testing.B) {
	for name, open := range map[string]func(testing.TB) *gorm.DB{"sqlite": dbtest.SQLite, "postgres": dbtest.Postgres} {
		b.Run(name, func(b *testing.B) {
			db := open(b)
			s := benchService(b, db)
			ctx := context.Background()
			if _, err := s.Onboard(ctx, "alice"); err != nil {
				b.Fatal(err)
			}
			db.Exec(`UPDATE bounty_accounts SET payouts_enabled = TRUE`)
			vet := Contributor{Login: "alice", CreatedAt: time.Now().AddDate(-2, 0, 0), MergedPRs: 5}
			for i := 1; b.Loop(); i++ {
				if _, err := s.Fund(ctx, FundInput{Repo: "o/r", Issue: i, Sponsor: "maint", AmountCents: 10_00, FromPlatform: true, Maintainer: true, RequestKey: fmt.Sprint(i)}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.OnMerged(ctx, MergedPR{Repo: "o/r", Number: 100000 + i, Merged: true, Author: vet, Claims: []int{i}}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.ApprovePayout(ctx, ApproveInput{Repo: "o/r", Number: i, Actor: "maint", Maintainer: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDuplicateWebhook is the cost of a replayed Stripe event: verify, find it already
// recorded, answer.
func BenchmarkDuplicateWebhook(b *testing.B) {
	s := benchService(b, dbtest.SQLite(b))
	h := routes(s)
	payload := []byte(`{"id":"evt_dup","object":"event","type":"account.updated","created":1,"api_version":"` + stripe.APIVersion + `","data":{"object":{"id":"acct_x","object":"account"}}}`)
	for b.Loop() {
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: testSecret})
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", sp.Header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body)
		}
	}
}
