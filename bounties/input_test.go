package bounties

import (
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"$1,000.50", 100050, false},
		{"1000", 100000, false},
		{"$5", 500, false},
		{"25.5", 2550, false},
		{"0.01", 1, false},
		{"$1,234,567", 123456700, false},
		{"12 USD", 1200, false},
		{"", 0, true},
		{"$", 0, true},
		{"-5", 0, true},
		{"+5", 0, true},
		{"1e6", 0, true},
		{"1.005", 0, true},
		{"1.", 0, true},
		{".5", 0, true},
		{"1,00", 0, true},
		{",100", 0, true},
		{"1000,000", 0, true},
		{"€5", 0, true},
		{"5 EUR", 0, true},
		{"NaN", 0, true},
		{"99999999999", 0, true},
		{"0x10", 0, true},
		{"1 000", 0, true},
	} {
		got, err := ParseAmount(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
		if err != nil && !errors.Is(err, ErrBadInput) {
			t.Errorf("ParseAmount(%q) error %v does not wrap ErrBadInput", tc.in, err)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"$1,000.50", "1000", "0.01", "-1", "1e9", "$,", "9,999,999,999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAmount(s)
		if err != nil {
			return
		}
		if c < 0 || c > 9_999_999_999_99 {
			t.Fatalf("ParseAmount(%q) = %d, outside 0..$9,999,999,999.99", s, c)
		}
		// What it reads it can write back and read again to the same cents.
		again, err := ParseAmount(Cents(c).String())
		if err != nil || again != c {
			t.Fatalf("round trip of %q: %d → %q → %d, %v", s, c, Cents(c).String(), again, err)
		}
	})
}

func TestCentsString(t *testing.T) {
	for c, want := range map[int64]string{0: "$0", 5: "$0.05", 100: "$1", 100050: "$1,000.50", 123456789: "$1,234,567.89", -250: "-$2.50"} {
		if got := Cents(c).String(); got != want {
			t.Errorf("Cents(%d) = %q, want %q", c, got, want)
		}
	}
}

func TestSplitCentsSumsExactly(t *testing.T) {
	for _, tc := range []struct {
		total   int64
		weights []int64
	}{{100, []int64{1, 1, 1}}, {1, []int64{1, 1}}, {10000, []int64{2, 1, 1}}, {99999, []int64{3, 7, 11, 13}}, {7, []int64{1000, 1}}} {
		parts := splitCents(tc.total, tc.weights)
		var sum int64
		for _, p := range parts {
			sum += p
			if p < 0 {
				t.Fatalf("negative part in %v", parts)
			}
		}
		if sum != tc.total {
			t.Errorf("splitCents(%d, %v) = %v sums to %d", tc.total, tc.weights, parts, sum)
		}
	}
}

// TestBadInputWritesNothing feeds every money-moving call bad input and checks each is a
// clear refusal that leaves every table as it was.
func TestBadInputWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		e.fund("o/r", 7, 10_00)
		e.win("o/r", 7, 50, "alice")
		for _, tc := range []struct {
			name string
			kind error
			call func() error
		}{
			{"zero funding", ErrBadInput, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 8, Sponsor: "sam", AmountCents: 0, FromPlatform: true, Maintainer: true, RequestKey: "k1"})
				return err
			}},
			{"negative funding", ErrBadInput, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 8, Sponsor: "sam", AmountCents: -500, FromPlatform: true, Maintainer: true, RequestKey: "k2"})
				return err
			}},
			{"absurd funding", ErrBadInput, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 8, Sponsor: "sam", AmountCents: 1 << 60, FromPlatform: true, Maintainer: true, RequestKey: "k3"})
				return err
			}},
			{"funding without a request key", ErrBadInput, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 8, Sponsor: "sam", AmountCents: 500, FromPlatform: true, Maintainer: true})
				return err
			}},
			{"funding a malformed repository", ErrBadInput, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "not-a-repo", Issue: 8, Sponsor: "sam", AmountCents: 500, FromPlatform: true, Maintainer: true, RequestKey: "k4"})
				return err
			}},
			{"funding issue zero", ErrBadInput, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 0, Sponsor: "sam", AmountCents: 500, FromPlatform: true, Maintainer: true, RequestKey: "k5"})
				return err
			}},
			{"platform funding by a non-maintainer", ErrForbidden, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 8, Sponsor: "sam", AmountCents: 500, FromPlatform: true, RequestKey: "k6"})
				return err
			}},
			{"card funding without Stripe", ErrRefused, func() error {
				_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 8, Sponsor: "sam", AmountCents: 500, RequestKey: "k7"})
				return err
			}},
			{"negative tip", ErrBadInput, func() error {
				_, err := e.s.Tip(e.ctx, TipInput{Repo: "o/r", Number: 7, From: "maint", To: "alice", AmountCents: -1, Maintainer: true, RequestKey: "t1"})
				return err
			}},
			{"absurd tip", ErrBadInput, func() error {
				_, err := e.s.Tip(e.ctx, TipInput{Repo: "o/r", Number: 7, From: "maint", To: "alice", AmountCents: 100_000_01, Maintainer: true, RequestKey: "t2"})
				return err
			}},
			{"tip by a non-maintainer", ErrForbidden, func() error {
				_, err := e.s.Tip(e.ctx, TipInput{Repo: "o/r", Number: 7, From: "bob", To: "alice", AmountCents: 100, RequestKey: "t3"})
				return err
			}},
			{"tip to oneself", ErrRefused, func() error {
				_, err := e.s.Tip(e.ctx, TipInput{Repo: "o/r", Number: 7, From: "maint", To: "@Maint", AmountCents: 100, Maintainer: true, RequestKey: "t4"})
				return err
			}},
			{"tip to a malformed login", ErrBadInput, func() error {
				_, err := e.s.Tip(e.ctx, TipInput{Repo: "o/r", Number: 7, From: "maint", To: "a b", AmountCents: 100, Maintainer: true, RequestKey: "t5"})
				return err
			}},
			{"claim on someone else's PR", ErrForbidden, func() error {
				_, err := e.s.Claim(e.ctx, ClaimInput{Repo: "o/r", PR: 60, Issue: 8, Author: "alice", Actor: "mallory"})
				return err
			}},
			{"split naming a non-author", ErrRefused, func() error {
				e.fund("o/r", 9, 5_00) // writes; the snapshot below is taken per call
				return nil
			}},
			{"approval by a non-maintainer", ErrForbidden, func() error {
				_, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "alice"})
				return err
			}},
			{"approving a thread without payouts", ErrNotFound, func() error {
				_, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 999, Actor: "maint", Maintainer: true})
				return err
			}},
			{"zero proposal", ErrBadInput, func() error {
				_, err := e.s.Propose(e.ctx, ProposeInput{Repo: "o/r", Issue: 9, Proposer: "alice", Title: "x", AmountCents: 0, RequestKey: "p1"})
				return err
			}},
			{"offer with equity over 100%", ErrBadInput, func() error {
				_, err := e.s.RecordOffer(e.ctx, OfferInput{Login: "alice", Actor: "maint", Maintainer: true, StipendCents: 1, StipendPeriod: "month", EquityBps: 10001, VestingStart: e.clock.Now(), VestingMonths: 48, CliffMonths: 12})
				return err
			}},
			{"offer with a cliff past vesting", ErrBadInput, func() error {
				_, err := e.s.RecordOffer(e.ctx, OfferInput{Login: "alice", Actor: "maint", Maintainer: true, StipendCents: 1, StipendPeriod: "month", EquityBps: 50, VestingStart: e.clock.Now(), VestingMonths: 12, CliffMonths: 13})
				return err
			}},
			{"negative policy", ErrBadInput, func() error {
				return e.s.SetPolicy(e.ctx, "o/r", "maint", Policy{MaxActiveAttempts: -1, AttemptDays: 7})
			}},
		} {
			if tc.name == "split naming a non-author" {
				tc.call()
				tc.call = func() error {
					_, err := e.s.Claim(e.ctx, ClaimInput{Repo: "o/r", PR: 61, Issue: 9, Author: "alice", Actor: "alice", Split: []string{"mallory"}, CoAuthors: []string{"bob"}})
					return err
				}
			}
			before := e.snapshot()
			err := tc.call()
			if !errors.Is(err, tc.kind) || len(Reason(err)) < 15 {
				t.Errorf("%s: err %v, want %v with an explanation", tc.name, err, tc.kind)
				continue
			}
			if after := e.snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("%s: refused but wrote rows: %v → %v", tc.name, before, after)
			}
		}
	})
}

// TestRepeatedRequestsMoveMoneyOnce replays the same command keys: a redelivered webhook job
// must not fund or tip twice.
func TestRepeatedRequestsMoveMoneyOnce(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		e.onboard("alice")
		for range 3 {
			if _, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 7, Sponsor: "maint", AmountCents: 10_00, FromPlatform: true, Maintainer: true, RequestKey: "delivery-1:0"}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.s.Tip(e.ctx, TipInput{Repo: "o/r", Number: 7, From: "maint", To: "alice", AmountCents: 3_00, Maintainer: true, RequestKey: "delivery-2:0"}); err != nil {
				t.Fatal(err)
			}
		}
		if bal, _ := e.s.Balance(e.ctx, "bounty:1"); bal != 10_00 {
			t.Fatalf("pool %d after three identical fundings, want 1000", bal)
		}
		if bal, _ := e.s.Balance(e.ctx, "paid:alice"); bal != 3_00 {
			t.Fatalf("alice was paid %d after three identical tips, want 300", bal)
		}
		if n := e.proxy.count("POST /v1/transfers"); n != 1 {
			t.Fatalf("%d tip transfers, want 1", n)
		}
	})
}
