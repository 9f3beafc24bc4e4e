package bounties

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"
)

// wantRefused checks err wraps kind and carries a sentence for people.
func wantRefused(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	if len(Reason(err)) < 15 {
		t.Fatalf("refusal %q does not explain itself", Reason(err))
	}
}

func (e *env) bountyState(repo string, issue int) string {
	e.t.Helper()
	b, err := liveBounty(e.db, repo, issue)
	if err != nil {
		e.t.Fatal(err)
	}
	return b.State
}

func TestBountyTransitions(t *testing.T) {
	type step func(e *env) error
	merge := func(e *env) error {
		_, err := e.s.OnMerged(e.ctx, MergedPR{Repo: e.repo, Number: 50, Merged: true, Author: e.veteran("alice"), Claims: []int{7}})
		return err
	}
	approve := func(e *env) error {
		_, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: e.repo, Number: 7, Actor: "maint", Maintainer: true})
		return err
	}
	cancel := func(e *env) error {
		_, err := e.s.Cancel(e.ctx, CloseInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true, Reason: "obsolete"})
		return err
	}
	expire := func(e *env) error {
		e.clock.Add(31 * 24 * time.Hour)
		return e.s.Tick(e.ctx)
	}
	decline := func(e *env) error {
		var id int64
		e.db.Raw(`SELECT id FROM bounty_credits WHERE repo = ? ORDER BY id LIMIT 1`, e.repo).Scan(&id)
		_, err := e.s.DeclinePayout(e.ctx, DeclineInput{CreditID: id, Actor: "maint", Maintainer: true, Reason: "does not fix the issue"})
		return err
	}
	fund := func(e *env) error {
		_, err := e.s.Fund(e.ctx, FundInput{Repo: e.repo, Issue: 7, Sponsor: "maint", AmountCents: 5_00, FromPlatform: true, Maintainer: true, RequestKey: "again"})
		return err
	}
	type row = struct {
		name    string
		before  []step
		act     step
		refused error
		want    string
	}
	rows := []row{
		{"merged claim moves open to claimed", nil, merge, nil, BountyClaimed},
		{"paying every credit moves claimed to paid", []step{merge}, approve, nil, BountyPaid},
		{"cancel moves open to cancelled", nil, cancel, nil, BountyCancelled},
		{"time moves open to expired", nil, expire, nil, BountyExpired},
		{"declining the payout moves claimed back to open", []step{merge}, decline, nil, BountyOpen},
		{"a claimed bounty cannot be cancelled", []step{merge}, cancel, ErrRefused, BountyClaimed},
		{"a paid bounty cannot be cancelled", []step{merge, approve}, cancel, ErrRefused, BountyPaid},
		{"a claimed bounty does not expire", []step{merge}, expire, nil, BountyClaimed},
		{"a claimed bounty takes no more money", []step{merge}, fund, ErrRefused, BountyClaimed},
		{"a paid bounty takes no more money", []step{merge, approve}, fund, ErrRefused, BountyPaid},
		{"cancelling twice is a no-op", []step{cancel}, cancel, nil, BountyCancelled},
	}
	table(t, rows, func(r row) string { return r.name }, true, func(t *testing.T, e *env, tc row) {
		db := e.db
		_ = db
		e.s.SetPolicy(e.ctx, e.repo, "maint", Policy{MaxActiveAttempts: 2, AttemptDays: 7, BountyDays: 30})
		e.fund(e.repo, 7, 30_00)
		e.onboard("alice")
		for _, st := range tc.before {
			if err := st(e); err != nil {
				t.Fatalf("setup: %v", err)
			}
		}
		err := tc.act(e)
		if tc.refused != nil {
			wantRefused(t, err, tc.refused)
		} else if err != nil {
			t.Fatal(err)
		}
		if got := e.bountyState(e.repo, 7); got != tc.want {
			t.Fatalf("bounty is %s, want %s", got, tc.want)
		}
	})
}

func TestAttemptTransitions(t *testing.T) {
	lock := func(e *env, who Contributor) error {
		_, err := e.s.Attempt(e.ctx, AttemptInput{Repo: e.repo, Issue: 7, Who: who})
		return err
	}
	type row = struct {
		name    string
		policy  Policy
		act     func(e *env) error
		refused error
		want    string // state of alice's attempt on #7, "" for none
	}
	rows := []row{
		{"a veteran locks an open bounty", DefaultPolicy, func(e *env) error { return lock(e, e.veteran("alice")) }, nil, AttemptActive},
		{"locking again is a no-op", DefaultPolicy, func(e *env) error { lock(e, e.veteran("alice")); return lock(e, e.veteran("alice")) }, nil, AttemptActive},
		{"the holder releases", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			_, err := e.s.Unlock(e.ctx, LockInput{Repo: e.repo, Issue: 7, Actor: "alice"})
			return err
		}, nil, AttemptReleased},
		{"a maintainer unlocks", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			_, err := e.s.Unlock(e.ctx, LockInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true})
			return err
		}, nil, AttemptUnlocked},
		{"someone else cannot unlock", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			_, err := e.s.Unlock(e.ctx, LockInput{Repo: e.repo, Issue: 7, Actor: "mallory"})
			return err
		}, ErrForbidden, AttemptActive},
		{"the lock expires by itself", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			e.clock.Add(8 * 24 * time.Hour)
			return e.s.Tick(e.ctx)
		}, nil, AttemptExpired},
		{"an extended lock outlives its first expiry", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			if _, err := e.s.Extend(e.ctx, LockInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true, Days: 7}); err != nil {
				return err
			}
			e.clock.Add(8 * 24 * time.Hour)
			return e.s.Tick(e.ctx)
		}, nil, AttemptActive},
		{"a lock held by another is refused", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("bob"))
			return lock(e, e.veteran("alice"))
		}, ErrRefused, ""},
		{"more locks than the policy allows are refused", Policy{MaxActiveAttempts: 1, AttemptDays: 7}, func(e *env) error {
			e.fund(e.repo, 8, 10_00)
			if _, err := e.s.Attempt(e.ctx, AttemptInput{Repo: e.repo, Issue: 8, Who: e.veteran("alice")}); err != nil {
				return err
			}
			return lock(e, e.veteran("alice"))
		}, ErrRefused, ""},
		{"a young account is refused", Policy{MaxActiveAttempts: 2, AttemptDays: 7, MinAccountAgeDays: 30}, func(e *env) error {
			return lock(e, Contributor{Login: "alice", CreatedAt: e.clock.Now().Add(-48 * time.Hour), MergedPRs: 3})
		}, ErrRefused, ""},
		{"no merged PR yet is refused", DefaultPolicy, func(e *env) error {
			return lock(e, Contributor{Login: "alice", CreatedAt: e.clock.Now().AddDate(-1, 0, 0)})
		}, ErrRefused, ""},
		{"a banned contributor is refused", DefaultPolicy, func(e *env) error {
			if _, err := e.s.Ban(e.ctx, BanInput{Repo: e.repo, Login: "alice", Actor: "maint", Maintainer: true, Reason: "machine-written PRs"}); err != nil {
				return err
			}
			return lock(e, e.veteran("alice"))
		}, ErrRefused, ""},
		{"banning ends the ban's target's locks", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			_, err := e.s.Ban(e.ctx, BanInput{Repo: e.repo, Login: "alice", Actor: "maint", Maintainer: true})
			return err
		}, nil, AttemptUnlocked},
		{"winning the bounty finishes the lock", DefaultPolicy, func(e *env) error {
			lock(e, e.veteran("alice"))
			e.win(e.repo, 7, 50, "alice")
			return nil
		}, nil, AttemptFinished},
		{"a claimed bounty cannot be locked", DefaultPolicy, func(e *env) error {
			e.win(e.repo, 7, 50, "bob")
			return lock(e, e.veteran("alice"))
		}, ErrRefused, ""},
	}
	table(t, rows, func(r row) string { return r.name }, false, func(t *testing.T, e *env, tc row) {
		db := e.db
		_ = db
		if err := e.s.SetPolicy(e.ctx, e.repo, "maint", tc.policy); err != nil {
			t.Fatal(err)
		}
		e.fund(e.repo, 7, 30_00)
		err := tc.act(e)
		if tc.refused != nil {
			wantRefused(t, err, tc.refused)
		} else if err != nil {
			t.Fatal(err)
		}
		var states []string
		db.Raw(`SELECT a.state FROM bounty_attempts a JOIN bounties b ON b.id = a.bounty_id WHERE a.login = 'alice' AND b.issue = 7 AND b.repo = ? ORDER BY a.id DESC`, e.repo).Scan(&states)
		got := ""
		if len(states) > 0 {
			got = states[0]
		}
		if got != tc.want {
			t.Fatalf("alice's attempt is %q, want %q", got, tc.want)
		}
	})
}

func TestClaimTransitions(t *testing.T) {
	claim := func(e *env, pr int, author, actor string, split ...string) error {
		_, err := e.s.Claim(e.ctx, ClaimInput{Repo: e.repo, PR: pr, Issue: 7, Author: author, Actor: actor, Split: split, CoAuthors: []string{"carol"}})
		return err
	}
	closePR := func(e *env, pr int, merged bool, who Contributor, co ...string) error {
		_, err := e.s.OnMerged(e.ctx, MergedPR{Repo: e.repo, Number: pr, Merged: merged, Author: who, CoAuthors: co})
		return err
	}
	type row = struct {
		name    string
		policy  Policy
		act     func(e *env) error
		refused error
		want    string // state of PR #50's claim, "" for none
	}
	rows := []row{
		{"a claim is pending until merge", DefaultPolicy, func(e *env) error { return claim(e, 50, "alice", "alice") }, nil, ClaimPending},
		{"the merged claim wins", DefaultPolicy, func(e *env) error {
			claim(e, 50, "alice", "alice")
			return closePR(e, 50, true, e.veteran("alice"))
		}, nil, ClaimWon},
		{"an unmerged close loses", DefaultPolicy, func(e *env) error {
			claim(e, 50, "alice", "alice")
			return closePR(e, 50, false, e.veteran("alice"))
		}, nil, ClaimLost},
		{"the second merge loses to the first", DefaultPolicy, func(e *env) error {
			claim(e, 50, "alice", "alice")
			claim(e, 49, "bob", "bob")
			closePR(e, 49, true, e.veteran("bob"))
			return closePR(e, 50, true, e.veteran("alice"))
		}, nil, ClaimLost},
		{"a first merged PR cannot claim", DefaultPolicy, func(e *env) error {
			claim(e, 50, "alice", "alice")
			return closePR(e, 50, true, Contributor{Login: "alice", CreatedAt: e.clock.Now().AddDate(-2, 0, 0), MergedPRs: 0})
		}, nil, ClaimLost},
		{"a first merged PR can claim where the policy allows", Policy{FirstPRCanClaim: true, MaxActiveAttempts: 2, AttemptDays: 7}, func(e *env) error {
			claim(e, 50, "alice", "alice")
			return closePR(e, 50, true, Contributor{Login: "alice", CreatedAt: e.clock.Now().AddDate(-2, 0, 0)})
		}, nil, ClaimWon},
		{"a claim for another author loses at merge", DefaultPolicy, func(e *env) error {
			if _, err := e.s.Claim(e.ctx, ClaimInput{Repo: e.repo, PR: 50, Issue: 7, Author: "alice", Actor: "maint", Maintainer: true}); err != nil {
				return err
			}
			return closePR(e, 50, true, e.veteran("bob"))
		}, nil, ClaimLost},
		{"a split with someone who is not a co-author at merge loses", DefaultPolicy, func(e *env) error {
			if _, err := e.s.Claim(e.ctx, ClaimInput{Repo: e.repo, PR: 50, Issue: 7, Author: "alice", Actor: "alice", Split: []string{"dave"}}); err != nil {
				return err
			}
			return closePR(e, 50, true, e.veteran("alice"), "carol")
		}, nil, ClaimLost},
		{"a claim on someone else's PR is refused", DefaultPolicy, func(e *env) error { return claim(e, 50, "alice", "mallory") }, ErrForbidden, ""},
		{"a split naming a non-author is refused", DefaultPolicy, func(e *env) error { return claim(e, 50, "alice", "alice", "mallory") }, ErrRefused, ""},
		{"a claim on a cancelled bounty is refused", DefaultPolicy, func(e *env) error {
			e.s.Cancel(e.ctx, CloseInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true})
			return claim(e, 50, "alice", "alice")
		}, ErrRefused, ""},
		{"cancelling the bounty loses pending claims", DefaultPolicy, func(e *env) error {
			claim(e, 50, "alice", "alice")
			_, err := e.s.Cancel(e.ctx, CloseInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true})
			return err
		}, nil, ClaimLost},
		{"merging twice changes nothing", DefaultPolicy, func(e *env) error {
			claim(e, 50, "alice", "alice")
			closePR(e, 50, true, e.veteran("alice"))
			return closePR(e, 50, true, e.veteran("alice"))
		}, nil, ClaimWon},
	}
	table(t, rows, func(r row) string { return r.name }, false, func(t *testing.T, e *env, tc row) {
		db := e.db
		_ = db
		if err := e.s.SetPolicy(e.ctx, e.repo, "maint", tc.policy); err != nil {
			t.Fatal(err)
		}
		e.fund(e.repo, 7, 30_00)
		before := e.count(`SELECT COUNT(*) FROM bounty_claims WHERE repo = ?`, e.repo)
		err := tc.act(e)
		if tc.refused != nil {
			wantRefused(t, err, tc.refused)
			if n := e.count(`SELECT COUNT(*) FROM bounty_claims WHERE repo = ?`, e.repo); n != before {
				t.Fatalf("a refused claim wrote %d rows", n-before)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		var cs []Claim
		db.Raw(`SELECT * FROM bounty_claims WHERE pr = 50 AND repo = ?`, e.repo).Scan(&cs)
		got := ""
		if len(cs) > 0 {
			got = cs[0].State
			if got == ClaimLost && len(cs[0].Reason) < 15 {
				t.Fatalf("lost claim without an explanation: %q", cs[0].Reason)
			}
		}
		if got != tc.want {
			t.Fatalf("claim of #50 is %q, want %q (%+v)", got, tc.want, cs)
		}
		credits := e.count(`SELECT COUNT(*) FROM bounty_credits WHERE repo = ?`, e.repo)
		if wonAny := e.count(`SELECT COUNT(*) FROM bounty_claims WHERE state = 'won' AND repo = ?`, e.repo); (credits > 0) != (wonAny > 0) {
			t.Fatalf("%d credits with %d won claims", credits, wonAny)
		}
	})
}

func TestCreditTransitions(t *testing.T) {
	approve := func(e *env, maint bool) error {
		_, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: e.repo, Number: 7, Actor: "maint", Maintainer: maint})
		return err
	}
	first := func(e *env) int64 {
		var id int64
		e.db.Raw(`SELECT id FROM bounty_credits WHERE repo = ? ORDER BY id LIMIT 1`, e.repo).Scan(&id)
		return id
	}
	type row = struct {
		name      string
		onboarded bool
		act       func(e *env) error
		refused   error
		want      string
	}
	rows := []row{
		{"a won claim's credit awaits approval", true, func(e *env) error { return nil }, nil, CreditAwaiting},
		{"approval pays an onboarded contributor", true, func(e *env) error { return approve(e, true) }, nil, CreditPaid},
		{"approval waits for onboarding", false, func(e *env) error { return approve(e, true) }, nil, CreditApproved},
		{"a second approval is a no-op", true, func(e *env) error { approve(e, true); return approve(e, true) }, nil, CreditPaid},
		{"a non-maintainer cannot approve", true, func(e *env) error { return approve(e, false) }, ErrForbidden, CreditAwaiting},
		{"a maintainer declines with a reason", true, func(e *env) error {
			_, err := e.s.DeclinePayout(e.ctx, DeclineInput{CreditID: first(e), Actor: "maint", Maintainer: true, Reason: "duplicate of #3"})
			return err
		}, nil, CreditDeclined},
		{"declining needs a reason", true, func(e *env) error {
			_, err := e.s.DeclinePayout(e.ctx, DeclineInput{CreditID: first(e), Actor: "maint", Maintainer: true})
			return err
		}, ErrBadInput, CreditAwaiting},
		{"a paid credit cannot be declined", true, func(e *env) error {
			approve(e, true)
			_, err := e.s.DeclinePayout(e.ctx, DeclineInput{CreditID: first(e), Actor: "maint", Maintainer: true, Reason: "too late"})
			return err
		}, ErrRefused, CreditPaid},
		{"a refused transfer fails", true, func(e *env) error {
			e.proxy.refuse["/v1/transfers"] = "Your account cannot make transfers."
			approve(e, true)
			return nil
		}, nil, CreditFailed},
		{"an awaiting credit cannot be retried", true, func(e *env) error {
			_, err := e.s.Retry(e.ctx, RetryInput{CreditID: first(e), Actor: "maint", Maintainer: true})
			return err
		}, ErrRefused, CreditAwaiting},
		{"shares change before approval", true, func(e *env) error {
			_, err := e.s.SetShares(e.ctx, SharesInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true, Shares: map[string]int{"alice": 1}})
			return err
		}, nil, CreditAwaiting},
		{"shares cannot change after approval", true, func(e *env) error {
			approve(e, true)
			_, err := e.s.SetShares(e.ctx, SharesInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true, Shares: map[string]int{"alice": 1}})
			return err
		}, ErrRefused, CreditPaid},
	}
	table(t, rows, func(r row) string { return r.name }, true, func(t *testing.T, e *env, tc row) {
		db := e.db
		_ = db
		e.fund(e.repo, 7, 30_00)
		who := "zed" // never onboarded
		if tc.onboarded {
			who = "alice"
			e.onboard(who)
		}
		e.win(e.repo, 7, 50, who)
		err := tc.act(e)
		if tc.refused != nil {
			wantRefused(t, err, tc.refused)
		} else if err != nil {
			t.Fatal(err)
		}
		if got := e.credit(first(e)).State; got != tc.want {
			t.Fatalf("credit is %s, want %s", got, tc.want)
		}
		if tc.want != CreditPaid && e.proxy.count("POST /v1/transfers") > 0 && tc.want != CreditFailed {
			t.Fatalf("a %s credit sent a transfer", tc.want)
		}
	})
}

func TestSplitPaysEqualSharesToTheCent(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		e.fund(e.repo, 7, 100_00)
		for _, l := range []string{"alice", "bob", "carol"} {
			e.onboard(l)
		}
		cs := e.win(e.repo, 7, 50, "alice", "bob", "carol")
		var sum int64
		got := map[string]int64{}
		for _, c := range cs {
			sum += c.AmountCents
			got[c.Recipient] = c.AmountCents
		}
		if sum != 100_00 || got["alice"] != 33_34 || got["bob"] != 33_33 || got["carol"] != 33_33 {
			t.Fatalf("split of $100 in three: %v (sum %d)", got, sum)
		}
		if _, err := e.s.SetShares(e.ctx, SharesInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true, Shares: map[string]int{"alice": 2, "bob": 1, "carol": 1}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: e.repo, Number: 50, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		for l, want := range map[string]int64{"alice": 50_00, "bob": 25_00, "carol": 25_00} {
			if bal, _ := e.s.Balance(e.ctx, "paid:"+l); bal != want {
				t.Errorf("paid:%s = %d, want %d", l, bal, want)
			}
		}
		if n := e.proxy.count("POST /v1/transfers"); n != 3 {
			t.Fatalf("%d transfers for three recipients", n)
		}
		if e.bountyState(e.repo, 7) != BountyPaid {
			t.Fatal("bounty not paid after all three transfers")
		}
	})
}

func TestFundingTransitions(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		h := routes(e.s)
		r, err := e.s.Fund(e.ctx, FundInput{Repo: e.repo, Issue: 7, Sponsor: "sam", AmountCents: 40_00, RequestKey: "c1"})
		if err != nil || r.Link == "" {
			t.Fatalf("card funding: %+v %v", r, err)
		}
		var f Funding
		db.Raw(`SELECT * FROM bounty_fundings WHERE request_key = 'c1'`).Scan(&f)
		if f.State != FundingPending || f.CheckoutSessionID == nil {
			t.Fatalf("funding %+v, want pending with a checkout session", f)
		}
		// Repeating the command returns the same Checkout, creating nothing.
		r2, err := e.s.Fund(e.ctx, FundInput{Repo: e.repo, Issue: 7, Sponsor: "sam", AmountCents: 40_00, RequestKey: "c1"})
		if err != nil || r2.Link != r.Link || r2.Changed || e.proxy.count("POST /v1/checkout/sessions") != 1 {
			t.Fatalf("repeat: %+v %v, %d sessions", r2, err, e.proxy.count("POST /v1/checkout/sessions"))
		}
		if p, _ := pool(db, f.BountyID); p != 0 {
			t.Fatalf("pool %d before payment, want 0", p)
		}
		sess := map[string]any{"id": *f.CheckoutSessionID, "object": "checkout.session", "payment_status": "paid", "amount_total": 40_00, "payment_intent": "pi_sam", "metadata": map[string]string{"funding_id": fmt.Sprint(f.ID)}}
		if w := e.sendEvent(h, "evt_cs1", "checkout.session.completed", 10, sess); w.Code != 200 {
			t.Fatalf("webhook %d %s", w.Code, w.Body)
		}
		if p, _ := pool(db, f.BountyID); p != 40_00 {
			t.Fatalf("pool %d after payment, want 4000", p)
		}
		// A second pledge stays pending and expires when the bounty is cancelled.
		if _, err := e.s.Fund(e.ctx, FundInput{Repo: e.repo, Issue: 7, Sponsor: "tom", AmountCents: 5_00, RequestKey: "c2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Cancel(e.ctx, CloseInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		var states []string
		db.Raw(`SELECT state FROM bounty_fundings ORDER BY id`).Scan(&states)
		if fmt.Sprint(states) != "[refunded expired]" {
			t.Fatalf("fundings after cancel: %v, want [refunded expired]", states)
		}
		if n := e.proxy.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refund requests, want 1", n)
		}
		if bal, _ := e.s.Balance(e.ctx, "sponsor:sam"); bal != 0 {
			t.Fatalf("sponsor:sam = %d after the refund, want 0", bal)
		}
		// Stripe confirms; the money is not returned twice.
		ch := map[string]any{"id": "ch_1", "object": "charge", "amount": 40_00, "amount_refunded": 40_00, "refunded": true, "payment_intent": "pi_sam"}
		e.sendEvent(h, "evt_ch1", "charge.refunded", 20, ch)
		if n := e.count(`SELECT COUNT(*) FROM bounty_ledger_txns WHERE kind = 'refund'`); n != 1 {
			t.Fatalf("%d refund transactions, want 1", n)
		}
		// The tick sends no second refund.
		e.s.Tick(e.ctx)
		if n := e.proxy.count("POST /v1/refunds"); n != 1 {
			t.Fatalf("%d refund requests after a tick, want 1", n)
		}
	})
}

func TestPlatformFundingRefundsToThePlatform(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		e.fund(e.repo, 7, 12_00)
		if bal, _ := e.s.Balance(e.ctx, "platform"); bal != -12_00 {
			t.Fatalf("platform %d, want -1200", bal)
		}
		if _, err := e.s.Cancel(e.ctx, CloseInput{Repo: e.repo, Issue: 7, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		if bal, _ := e.s.Balance(e.ctx, "platform"); bal != 0 {
			t.Fatalf("platform %d after cancel, want 0", bal)
		}
		if bal, _ := e.s.Balance(e.ctx, "bounty:1"); bal != 0 {
			t.Fatalf("bounty pool %d after cancel, want 0", bal)
		}
		// A new bounty may go on the same issue afterwards.
		b := e.fund(e.repo, 7, 3_00)
		if b.State != BountyOpen || b.ID == 1 {
			t.Fatalf("new bounty %+v", b)
		}
	})
}
