package bounties

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
)

// awaiting sets up a won bounty of amount for alice (onboarded) and returns its one credit.
func (e *env) awaiting(issue int, cents int64) Credit {
	e.t.Helper()
	e.fund("o/r", issue, cents)
	e.onboard("alice")
	cs := e.win("o/r", issue, issue+1000, "alice")
	if len(cs) != 1 {
		e.t.Fatalf("want one credit, got %+v", cs)
	}
	return cs[0]
}

func TestThousandConcurrentApprovalsTransferOnce(t *testing.T) {
	db := postgres(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(40) // below PostgreSQL's connection limit; the 1,000 still race
	e := newEnv(t, db, true)
	c := e.awaiting(7, 250_00)
	var wg sync.WaitGroup
	var changed, failed atomic.Int32
	start := make(chan struct{})
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: fmt.Sprintf("maint%d", i%7), Maintainer: true})
			if err != nil {
				failed.Add(1)
				t.Errorf("approval %d: %v", i, err)
			}
			if r.Changed {
				changed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if changed.Load() != 1 {
		t.Errorf("%d approvals reported a change, want exactly 1", changed.Load())
	}
	if n := e.proxy.count("POST /v1/transfers"); n != 1 {
		t.Fatalf("%d transfer requests reached Stripe, want exactly 1", n)
	}
	got := e.credit(c.ID)
	if got.State != CreditPaid || got.TransferID == nil {
		t.Fatalf("credit is %s (transfer %v), want paid", got.State, got.TransferID)
	}
	if n := e.count(`SELECT COUNT(*) FROM bounty_ledger_txns WHERE key = ?`, fmt.Sprintf("transfer:%d", c.ID)); n != 1 {
		t.Fatalf("%d transfer ledger transactions, want 1", n)
	}
	if bal, _ := e.s.Balance(e.ctx, "paid:alice"); bal != 250_00 {
		t.Fatalf("paid:alice = %d, want 25000", bal)
	}
}

func TestCrashAfterStripeAcceptedRetriesWithSameKey(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		c := e.awaiting(7, 99_99)
		e.s.crashAfterTransfer = func(int64) error { return errors.New("simulated crash before the database heard back") }
		_, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true})
		e.s.crashAfterTransfer = nil
		if err == nil {
			t.Fatal("the simulated crash did not surface")
		}
		if got := e.credit(c.ID); got.State != CreditTransferring || got.TransferID != nil {
			t.Fatalf("after the crash the credit is %s with transfer %v; want transferring without one", got.State, got.TransferID)
		}
		// Before the lease runs out nobody asks again.
		if err := e.s.Tick(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.proxy.count("POST /v1/transfers"); n != 1 {
			t.Fatalf("%d transfer requests before the lease expired, want 1", n)
		}
		e.clock.Add(3 * time.Minute)
		if err := e.s.Tick(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.proxy.count("POST /v1/transfers"); n != 2 {
			t.Fatalf("%d transfer requests after the retry, want 2 (the original and one retry)", n)
		}
		keys, reqs := e.proxy.createdWith("gradforge-credit-")
		if keys != 1 || reqs != 1 || e.proxy.keyUses(c.IdempotencyKey) != 2 {
			t.Fatalf("idempotency keys: %d created with %d requests, key %s used %d times; want 1 key created once and reused", keys, reqs, c.IdempotencyKey, e.proxy.keyUses(c.IdempotencyKey))
		}
		got := e.credit(c.ID)
		if got.State != CreditPaid || got.TransferID == nil {
			t.Fatalf("after the retry the credit is %s, want paid", got.State)
		}
		// A later tick finds nothing to do.
		e.clock.Add(time.Hour)
		if err := e.s.Tick(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.proxy.count("POST /v1/transfers"); n != 2 {
			t.Fatalf("a tick after payment sent another transfer (%d requests)", n)
		}
	})
}

func TestLostStripeAnswerIsRetriedWithSameKey(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		c := e.awaiting(7, 10_00)
		e.proxy.loseAnswer["/v1/transfers"] = 1
		r, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true})
		if err != nil || !strings.Contains(r.Message, "retried automatically") {
			t.Fatalf("a lost answer: %q %v; want a message that it is retried", r.Message, err)
		}
		if got := e.credit(c.ID); got.State != CreditTransferring {
			t.Fatalf("an ambiguous error left the credit %s; want transferring (never failed: the transfer may exist)", got.State)
		}
		e.clock.Add(3 * time.Minute)
		if err := e.s.Tick(e.ctx); err != nil {
			t.Fatal(err)
		}
		if keys, reqs := e.proxy.createdWith("gradforge-credit-"); keys != 1 || reqs != 1 {
			t.Fatalf("%d keys created %d transfers, want 1 and 1", keys, reqs)
		}
		if got := e.credit(c.ID); got.State != CreditPaid {
			t.Fatalf("credit is %s after the retry, want paid", got.State)
		}
	})
}

func TestWebhookSettlesTransferBeforeTheDatabaseDoes(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		c := e.awaiting(7, 10_00)
		var tid string
		e.s.crashAfterTransfer = func(int64) error { return errors.New("crash") }
		e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true})
		e.s.crashAfterTransfer = nil
		tid = idOf(t, e.proxy.response(c.IdempotencyKey))
		r := routes(e.s)
		obj := map[string]any{"id": tid, "object": "transfer", "amount": 10_00, "currency": "usd", "metadata": map[string]string{"credit_id": fmt.Sprint(c.ID), "idempotency_key": c.IdempotencyKey}}
		if w := e.sendEvent(r, "evt_tc1", "transfer.created", 100, obj); w.Code != 200 {
			t.Fatalf("webhook: %d %s", w.Code, w.Body)
		}
		got := e.credit(c.ID)
		if got.State != CreditPaid || got.TransferID == nil || *got.TransferID != tid {
			t.Fatalf("credit %s transfer %v, want paid with %s", got.State, got.TransferID, tid)
		}
		e.clock.Add(time.Hour)
		if err := e.s.Tick(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.proxy.count("POST /v1/transfers"); n != 1 {
			t.Fatalf("%d transfer requests, want 1: the webhook already settled it", n)
		}
	})
}

func TestDefiniteFailureThenRetryUsesNewKey(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		c := e.awaiting(7, 10_00)
		e.proxy.refuse["/v1/transfers"] = "Insufficient funds in Stripe account."
		r, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true})
		if err != nil || !strings.Contains(r.Message, "Insufficient funds") {
			t.Fatalf("a refused transfer: %q %v; want Stripe's reason in the reply", r.Message, err)
		}
		got := e.credit(c.ID)
		if got.State != CreditFailed || got.Failure == "" {
			t.Fatalf("credit %s (%q), want failed with a reason", got.State, got.Failure)
		}
		if n, _ := e.notes.last("o/r", 7); n.Event == "" {
			t.Fatal("nobody was told the transfer failed")
		}
		// The tick never retries a definite failure on its own.
		e.clock.Add(time.Hour)
		e.s.Tick(e.ctx)
		if n := e.proxy.count("POST /v1/transfers"); n != 1 {
			t.Fatalf("%d transfer requests; a failed payout must wait for a maintainer", n)
		}
		if _, err := e.s.Retry(e.ctx, RetryInput{CreditID: c.ID, Actor: "bob", Maintainer: false}); !errors.Is(err, ErrForbidden) {
			t.Fatalf("retry by a non-maintainer: %v, want ErrForbidden", err)
		}
		delete(e.proxy.refuse, "/v1/transfers")
		if _, err := e.s.Retry(e.ctx, RetryInput{CreditID: c.ID, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		got = e.credit(c.ID)
		if got.State != CreditPaid || got.IdempotencyKey == c.IdempotencyKey {
			t.Fatalf("after retry: %s with key %s; want paid under a new key", got.State, got.IdempotencyKey)
		}
		if keys, _ := e.proxy.createdWith("gradforge-credit-"); keys != 1 {
			t.Fatalf("%d transfers created, want 1", keys)
		}
		if _, err := e.s.Retry(e.ctx, RetryInput{CreditID: c.ID, Actor: "maint", Maintainer: true}); !errors.Is(err, ErrRefused) {
			t.Fatalf("retrying a paid payout: %v, want ErrRefused", err)
		}
	})
}

// TestFundingRacingAnAwardLeavesNothingBehind funds a bounty from many goroutines while its
// claim merges: each funding either lands before the award (and is paid out in the credit)
// or is refused; none may slip into the pool after it was divided.
func TestFundingRacingAnAwardLeavesNothingBehind(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		b := e.fund("o/r", 7, 10_00)
		var wg sync.WaitGroup
		var refused atomic.Int32
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "maint", AmountCents: 1_00, FromPlatform: true, Maintainer: true, RequestKey: fmt.Sprint("race-", i)})
				switch {
				case errors.Is(err, ErrRefused):
					refused.Add(1)
				case err != nil:
					t.Errorf("funding %d: %v", i, err)
				}
			}()
			if i == 20 {
				e.win("o/r", 7, 50, "alice")
			}
		}
		wg.Wait()
		var credited int64
		db.Raw(`SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_credits WHERE bounty_id = ?`, b.ID).Scan(&credited)
		if left, _ := e.s.Balance(e.ctx, acctBounty(b.ID)); left != credited {
			t.Fatalf("the pool holds %d cents but its credits %d: money slipped in after the award", left, credited)
		}
		funded := e.count(`SELECT COUNT(*) FROM bounty_fundings WHERE bounty_id = ?`, b.ID)
		if credited != 10_00+(funded-1)*1_00 || funded-1+int64(refused.Load()) != 40 {
			t.Fatalf("credited %d from %d fundings with %d refused", credited, funded, refused.Load())
		}
		if stored := e.storedPool(b.ID); stored != credited {
			t.Fatalf("the stored pool is %d cents after the race, the fundings %d", stored, credited)
		}
	})
}

// TestConcurrentAttemptsRespectTheLimit locks many bounties for one person at once: no more
// than the policy's maximum may succeed.
func TestConcurrentAttemptsRespectTheLimit(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		for i := 1; i <= 10; i++ {
			e.fund("o/r", i, 1_00)
		}
		var wg sync.WaitGroup
		var ok atomic.Int32
		for i := 1; i <= 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.s.Attempt(e.ctx, AttemptInput{Repo: "o/r", Issue: i, Who: e.veteran("alice")}); err == nil {
					ok.Add(1)
				} else if !errors.Is(err, ErrRefused) {
					t.Errorf("attempt %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 2 || e.count(`SELECT COUNT(*) FROM bounty_attempts WHERE state = 'active'`) != 2 {
			t.Fatalf("%d concurrent locks succeeded, want the policy's 2", ok.Load())
		}
	})
}

func TestReconcileAgainstStripe(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		c := e.awaiting(7, 10_00)
		if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		acct := mustAccount(t, e, "alice")
		amount, reversed := 10_00, 0
		e.proxy.rewrite["/v1/transfers/"] = func(tr map[string]any) {
			tr["amount"], tr["amount_reversed"], tr["destination"] = amount, reversed, acct
		}
		if got, err := e.s.Reconcile(e.ctx, 0); err != nil || len(got) != 0 {
			t.Fatalf("a matching transfer: %v %v", got, err)
		}
		amount = 9_99
		if got, _ := e.s.Reconcile(e.ctx, 0); len(got) != 1 || !strings.Contains(got[0], "$9.99") {
			t.Fatalf("a transfer of another amount: %v", got)
		}
		amount, reversed = 10_00, 10_00
		if got, _ := e.s.Reconcile(e.ctx, 0); len(got) != 1 || !strings.Contains(got[0], "no reversal") {
			t.Fatalf("a reversal the ledger lacks: %v", got)
		}
		// A payout stuck in flight is listed.
		e.fund("o/r", 8, 5_00)
		cs := e.win("o/r", 8, 80, "alice")
		e.s.crashAfterTransfer = func(int64) error { return errors.New("crash") }
		e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 8, Actor: "maint", Maintainer: true})
		e.s.crashAfterTransfer = nil
		e.clock.Add(2 * time.Hour)
		reversed = 0
		got, _ := e.s.Reconcile(e.ctx, 0)
		if len(got) != 1 || !strings.Contains(got[0], fmt.Sprintf("payout %d", cs[0].ID)) || !strings.Contains(got[0], "transferring") {
			t.Fatalf("stuck payout: %v", got)
		}
		_ = c
	})
}

func TestReconcileFindsStripeTransfersWithoutPayouts(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		paid := e.awaiting(7, 10_00)
		if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		paid = e.credit(paid.ID)
		waiting := e.awaiting(8, 5_00)
		acct := mustAccount(t, e, "alice")
		e.proxy.rewrite["/v1/transfers/"] = func(tr map[string]any) { tr["amount"], tr["amount_reversed"], tr["destination"] = 10_00, 0, acct }
		transfer := func(id string, cents int, meta map[string]any) map[string]any {
			return map[string]any{"id": id, "object": "transfer", "amount": cents, "currency": "usd", "destination": acct, "metadata": meta}
		}
		ours := func(credit int64, key string) map[string]any {
			return map[string]any{"credit_id": fmt.Sprint(credit), "idempotency_key": key, "github_login": "alice"}
		}
		var listed []any
		e.proxy.rewrite["/v1/transfers"] = func(l map[string]any) {
			if l["object"] == "list" {
				l["data"], l["has_more"] = listed, false
			}
		}
		for _, tc := range []struct {
			name     string
			transfer map[string]any
			want     string // in the one problem reported; "" for none
		}{
			{"the paid payout's own transfer", transfer(*paid.TransferID, 10_00, ours(paid.ID, paid.IdempotencyKey)), ""},
			{"a transfer made outside the forge", transfer("tr_dashboard", 3_00, map[string]any{}), ""},
			{"a transfer whose payout row is gone", transfer("tr_gone", 4_00, ours(999, "gradforge-credit-999")), "Stripe transfer tr_gone ($4, for @alice, payout 999, key gradforge-credit-999) has no payout here"},
			{"a transfer for a payout still awaiting approval", transfer("tr_early", 5_00, ours(waiting.ID, waiting.IdempotencyKey)),
				fmt.Sprintf("Stripe transfer tr_early ($5) was made for payout %d (@alice), which is awaiting approval and records no transfer", waiting.ID)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				listed = []any{tc.transfer}
				got, err := e.s.Reconcile(e.ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
					t.Fatalf("Reconcile = %q, want %q", got, tc.want)
				}
			})
		}
		if n := e.proxy.count("GET /v1/transfers"); n != 4 {
			t.Fatalf("Stripe's transfers were listed %d times, want once per Reconcile", n)
		}
	})
}
