package bounties

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"
)

// payBounty funds, wins and pays one bounty for who.
func (e *env) payBounty(issue int, who string, cents int64) {
	e.t.Helper()
	e.fund(e.repo, issue, cents)
	e.win(e.repo, issue, issue+500, who)
	if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: e.repo, Number: issue, Actor: "maint", Maintainer: true}); err != nil {
		e.t.Fatal(err)
	}
}

func TestPipelineStagesFromTheRecord(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		e.onboard("alice")
		stage := func() string {
			p, err := e.s.Profile(e.ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			return p.Stage
		}
		if got := stage(); got != StageContributor {
			t.Fatalf("new person is %s", got)
		}
		// Not yet a proposer: proposing is refused with the threshold in the reason.
		_, err := e.s.Propose(e.ctx, ProposeInput{Repo: "o/r", Issue: 40, Proposer: "alice", Title: "Winograd conv", AmountCents: 500_00, RequestKey: "p0"})
		wantRefused(t, err, ErrRefused)
		e.payBounty(1, "alice", 10_00)
		if got := stage(); got != StageHunter {
			t.Fatalf("after one paid bounty: %s, want hunter", got)
		}
		e.payBounty(2, "alice", 10_00)
		e.payBounty(3, "alice", 10_00)
		if got := stage(); got != StageProposer {
			t.Fatalf("after three paid bounties: %s, want proposer", got)
		}
		r, err := e.s.Propose(e.ctx, ProposeInput{Repo: "o/r", Issue: 40, Proposer: "alice", Title: "Winograd conv", AmountCents: 500_00, RequestKey: "p1"})
		if err != nil || !r.Changed {
			t.Fatalf("propose: %+v %v", r, err)
		}
		ps, _ := e.s.Proposals(e.ctx, "o/r", "")
		if len(ps) != 1 {
			t.Fatalf("queue %+v", ps)
		}
		_, err = e.s.DecideProposal(e.ctx, DecideInput{ID: ps[0].ID, Actor: "maint", Maintainer: true})
		wantRefused(t, err, ErrBadInput) // declining needs a reason
		if _, err := e.s.DecideProposal(e.ctx, DecideInput{ID: ps[0].ID, Actor: "maint", Maintainer: true, Accept: true}); err != nil {
			t.Fatal(err)
		}
		if b, err := liveBounty(db, "o/r", 40); err != nil || b.State != BountyOpen {
			t.Fatalf("accepted proposal made no open bounty: %+v %v", b, err)
		}
		if p, _ := pool(db, 4); p != 500_00 {
			t.Fatalf("accepted proposal's pool %d, want 50000", p)
		}
		_, err = e.s.DecideProposal(e.ctx, DecideInput{ID: ps[0].ID, Actor: "maint", Maintainer: true, Reason: "changed my mind"})
		wantRefused(t, err, ErrRefused)
		// A second proposal is declined with a reason the proposer sees.
		e.s.Propose(e.ctx, ProposeInput{Repo: "o/r", Issue: 41, Proposer: "alice", Title: "rewrite in Rust", AmountCents: 9_00, RequestKey: "p2"})
		ps, _ = e.s.Proposals(e.ctx, "o/r", "")
		if _, err := e.s.DecideProposal(e.ctx, DecideInput{ID: ps[0].ID, Actor: "maint", Maintainer: true, Reason: "out of scope"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.RecordOffer(e.ctx, OfferInput{Login: "alice", Actor: "maint", Maintainer: true, StipendCents: 8_000_00, StipendPeriod: "month", EquityBps: 25, VestingStart: e.clock.Now(), CliffMonths: 12, VestingMonths: 48}); !errors.Is(err, ErrRefused) {
			t.Fatalf("offer to a non-candidate: %v, want refused", err)
		}
		if _, err := e.s.MarkCandidate(e.ctx, CandidateInput{Login: "alice", Actor: "bob"}); !errors.Is(err, ErrForbidden) {
			t.Fatalf("candidate mark by a non-maintainer: %v", err)
		}
		if _, err := e.s.MarkCandidate(e.ctx, CandidateInput{Login: "alice", Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		if got := stage(); got != StageCandidate {
			t.Fatalf("marked: %s, want candidate", got)
		}
		off, err := e.s.RecordOffer(e.ctx, OfferInput{Login: "alice", Actor: "maint", Maintainer: true, StipendCents: 8_000_00, StipendPeriod: "month", EquityBps: 25, VestingStart: e.clock.Now(), CliffMonths: 12, VestingMonths: 48})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.RecordOffer(e.ctx, OfferInput{Login: "alice", Actor: "maint", Maintainer: true, StipendCents: 1, StipendPeriod: "month", VestingStart: e.clock.Now(), VestingMonths: 48}); !errors.Is(err, ErrRefused) {
			t.Fatalf("a second live offer: %v, want refused", err)
		}
		if _, err := e.s.DecideOffer(e.ctx, off.ID, "accepted", "maint", true); err != nil {
			t.Fatal(err)
		}
		if got := stage(); got != StageHired {
			t.Fatalf("offer accepted: %s, want hired", got)
		}
		// Offers are private.
		if _, err := e.s.Offers(e.ctx, "mallory", false, "alice"); !errors.Is(err, ErrForbidden) {
			t.Fatalf("a stranger read alice's offers: %v", err)
		}
		for _, v := range []struct {
			who   string
			maint bool
		}{{"alice", false}, {"maint", true}} {
			os, err := e.s.Offers(e.ctx, v.who, v.maint, "alice")
			if err != nil || len(os) != 1 || os[0].EquityBps != 25 || os[0].State != "accepted" {
				t.Fatalf("%s reading alice's offers: %+v %v", v.who, os, err)
			}
		}
		// Every stage change is an event with who and when.
		p, _ := e.s.Profile(e.ctx, "alice")
		var path []string
		for _, ev := range p.StageEvents {
			path = append(path, ev.ToStage)
			if ev.CreatedAt.IsZero() || ev.Reason == "" {
				t.Fatalf("stage event without when or why: %+v", ev)
			}
		}
		if fmt.Sprint(path) != "[hunter proposer candidate hired]" {
			t.Fatalf("stage events %v", path)
		}
		if last := p.StageEvents[len(p.StageEvents)-1]; last.Actor != "maint" {
			t.Fatalf("hired by %q, want maint", last.Actor)
		}
		board, _ := e.s.Pipeline(e.ctx)
		if len(board[StageHired]) != 1 || board[StageHired][0].PaidBounties != 3 {
			t.Fatalf("pipeline %+v", board)
		}
	})
}

func TestReads(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		e.onboard("alice")
		e.onboard("bob")
		e.fund("o/r", 1, 50_00)
		e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: 1, Title: "ignored", Sponsor: "maint", AmountCents: 25_00, FromPlatform: true, Maintainer: true, RequestKey: "more"})
		e.clock.Add(time.Hour)
		e.fund("o/r", 2, 10_00)
		e.clock.Add(time.Hour)
		e.fund("x/y", 3, 300_00)
		e.db.Exec(`UPDATE bounties SET title = 'Faster matmul on CUDA' WHERE issue = 1`)
		e.db.Exec(`UPDATE bounties SET title = 'ONNX Resize op' WHERE issue = 2`)
		e.payBounty(4, "alice", 20_00)
		e.clock.Add(40 * 24 * time.Hour)
		e.repo = "x/y"
		e.payBounty(5, "bob", 70_00)
		e.repo = "o/r"

		page, err := e.s.Board(e.ctx, BoardQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range page.Items {
			got = append(got, fmt.Sprintf("%s#%d=%d", b.Repo, b.Issue, b.PoolCents))
		}
		if fmt.Sprint(got) != "[x/y#3=30000 o/r#1=7500 o/r#2=1000]" || page.Total != 3 {
			t.Fatalf("board by amount: %v (total %d)", got, page.Total)
		}
		for _, tc := range []struct {
			q    BoardQuery
			want string
		}{
			{BoardQuery{Repo: "o/r"}, "[1 2]"},
			{BoardQuery{Sort: "newest"}, "[3 2 1]"},
			{BoardQuery{Sort: "oldest", PerPage: 2, Page: 2}, "[3]"},
			{BoardQuery{Search: "cuda MATMUL"}, "[1]"},
			{BoardQuery{Search: "matmul resize"}, "[]"},
			{BoardQuery{Search: "#2"}, "[2]"},
			{BoardQuery{Search: "100%_"}, "[]"},
			{BoardQuery{MinCents: 10_00, MaxCents: 100_00}, "[1 2]"},
			{BoardQuery{State: "paid"}, "[5 4]"},
			{BoardQuery{State: "all", Sort: "oldest", Offset: 3}, "[4 5]"},
		} {
			p, err := e.s.Board(e.ctx, tc.q)
			if err != nil {
				t.Fatalf("%+v: %v", tc.q, err)
			}
			var issues []int
			for _, b := range p.Items {
				issues = append(issues, b.Issue)
			}
			if fmt.Sprint(issues) != tc.want && !(tc.want == "[]" && len(issues) == 0) {
				t.Errorf("board %+v = %v, want %s", tc.q, issues, tc.want)
			}
		}
		if _, err := e.s.Board(e.ctx, BoardQuery{Sort: "random"}); !errors.Is(err, ErrBadInput) {
			t.Errorf("unknown sort: %v", err)
		}

		d, err := e.s.BountyDetail(e.ctx, "o/r", 4)
		if err != nil {
			t.Fatal(err)
		}
		if d.Bounty.PoolCents != 20_00 || d.Bounty.State != BountyPaid || len(d.Credits) != 1 || len(d.Claims) != 1 {
			t.Fatalf("detail %+v", d)
		}
		var kinds []string
		for _, ev := range d.History {
			kinds = append(kinds, ev.Kind)
		}
		if fmt.Sprint(kinds) != "[fund claim award approve paid]" {
			t.Fatalf("history %v", kinds)
		}

		lb, err := e.s.Leaderboard(e.ctx, time.Time{}, 10)
		if err != nil || len(lb) != 2 || lb[0].Login != "bob" || lb[0].PaidCents != 70_00 || lb[1].Login != "alice" || lb[1].Stage != StageHunter {
			t.Fatalf("leaderboard %+v %v", lb, err)
		}
		recent, _ := e.s.Leaderboard(e.ctx, e.clock.Now().Add(-24*time.Hour), 10)
		if len(recent) != 1 || recent[0].Login != "bob" {
			t.Fatalf("leaderboard since yesterday %+v", recent)
		}
		prof, err := e.s.Profile(e.ctx, "@Alice")
		if err != nil || prof.PaidCents != 20_00 || prof.PaidBounties != 1 || !prof.Onboarded || len(prof.Credits) != 1 {
			t.Fatalf("profile %+v %v", prof, err)
		}
		months, err := e.s.PaidByMonth(e.ctx, "", 3)
		if err != nil || len(months) != 3 {
			t.Fatalf("months %+v %v", months, err)
		}
		if months[1].Month != "2026-11" || months[1].Cents != 20_00 || months[2].Month != "2026-12" || months[2].Cents != 70_00 || months[0].Cents != 0 {
			t.Fatalf("paid by month %+v", months)
		}
		if m, _ := e.s.PaidByMonth(e.ctx, "o/r", 3); m[2].Cents != 0 || m[1].Cents != 20_00 {
			t.Fatalf("paid by month in o/r %+v", m)
		}
		if cents, n, err := e.s.OpenTotal(e.ctx, "o/r"); err != nil || cents != 85_00 || n != 2 {
			t.Fatalf("open total %d %d %v", cents, n, err)
		}
		if rs, _ := e.s.Repos(e.ctx); fmt.Sprint(rs) != "[o/r x/y]" {
			t.Fatalf("repos %v", rs)
		}
		// The approval queue.
		e.fund("o/r", 6, 5_00)
		e.win("o/r", 6, 600, "alice")
		q, err := e.s.Payouts(e.ctx, "o/r")
		if err != nil || len(q) != 1 || q[0].Number != 6 {
			t.Fatalf("awaiting approval %+v %v", q, err)
		}
		if q, _ := e.s.Payouts(e.ctx, "x/y"); len(q) != 0 {
			t.Fatalf("x/y queue %+v", q)
		}
		n, err := e.s.Status(e.ctx, "o/r", 6)
		if err != nil || n.Markdown == "" || !contains(n.AddLabels, LabelClaimed) || !contains(n.AddLabels, "$5") {
			t.Fatalf("status %+v %v", n, err)
		}
		if evs, _ := e.s.Events(e.ctx, 5); len(evs) != 5 {
			t.Fatalf("activity feed %d", len(evs))
		}
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
