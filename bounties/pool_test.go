package bounties

import (
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// storedPool is what the board reads for a bounty: its pool_cents column.
func (e *env) storedPool(id int64) int64 {
	e.t.Helper()
	return e.count(`SELECT pool_cents FROM bounties WHERE id = ?`, id)
}

func TestStoredPoolFollowsTheLedger(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		b := e.fund("o/r", 1, 30_00)
		e.fund("o/r", 1, 12_00)
		other := e.fund("o/r", 2, 5_00)
		if got := e.storedPool(b.ID); got != 42_00 {
			t.Fatalf("stored pool after two fundings = %d, want 4200", got)
		}
		// An award moves money out of the bounty's balance but not out of its pool.
		e.win("o/r", 1, 10, "alice")
		if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 1, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		if got, bal := e.storedPool(b.ID), e.count(`SELECT COALESCE(SUM(amount_cents), 0) FROM bounty_ledger_entries WHERE account = ?`, acctBounty(b.ID)); got != 42_00 || bal != 0 {
			t.Fatalf("after the award: stored pool %d (want 4200), balance %d (want 0)", got, bal)
		}
		// A cancel refunds the platform's money: the pool goes back to zero.
		if _, err := e.s.Cancel(e.ctx, CloseInput{Repo: "o/r", Issue: 2, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		if got := e.storedPool(other.ID); got != 0 {
			t.Fatalf("stored pool after a refund = %d, want 0", got)
		}
		for _, id := range []int64{b.ID, other.ID} {
			if p, _ := pool(db, id); p != e.storedPool(id) {
				t.Fatalf("bounty %d: ledger pool %d, stored %d", id, p, e.storedPool(id))
			}
		}
		// A stored pool that drifts from the ledger is reported by Audit.
		db.Exec(`UPDATE bounties SET pool_cents = pool_cents + 1 WHERE id = ?`, b.ID)
		problems, err := e.s.Audit(e.ctx)
		if err != nil || len(problems) != 1 || !strings.Contains(problems[0], fmt.Sprintf("bounty %d stores a pool of 4201 cents, the ledger says 4200", b.ID)) {
			t.Fatalf("audit of a drifted pool: %q, %v", problems, err)
		}
		db.Exec(`UPDATE bounties SET pool_cents = pool_cents - 1 WHERE id = ?`, b.ID)
	})
}

func TestIssueLabels(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		fund := func(issue int, key string, labels []string) {
			t.Helper()
			_, err := e.s.Fund(e.ctx, FundInput{Repo: "o/r", Issue: issue, Title: fmt.Sprint("issue ", issue), Labels: labels, Sponsor: "maint",
				AmountCents: 10_00, FromPlatform: true, Maintainer: true, RequestKey: key})
			if err != nil {
				t.Fatal(err)
			}
		}
		labels := func(issue int) string {
			t.Helper()
			d, err := e.s.BountyDetail(e.ctx, "o/r", issue)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(d.Bounty.Labels, ",")
		}
		board := func(label string) string {
			t.Helper()
			p, err := e.s.Board(e.ctx, BoardQuery{Label: label, Sort: "oldest"})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, b := range p.Items {
				out = append(out, fmt.Sprintf("#%d[%s]", b.Issue, strings.Join(b.Labels, ",")))
			}
			return strings.Join(out, " ")
		}
		relabel := func(issue int, label string, removed bool) bool {
			t.Helper()
			stored, err := e.s.Relabel(e.ctx, LabelInput{Repo: "o/r", Issue: issue, Label: label, Removed: removed})
			if err != nil {
				t.Fatal(err)
			}
			return stored
		}

		fund(1, "a", []string{"speed", " CUDA ", "cuda", ""})
		fund(2, "b", []string{"onnx"})
		if got := labels(1); got != "CUDA,speed" {
			t.Fatalf("labels of a new bounty %q, want CUDA,speed (trimmed, one per name whatever its case)", got)
		}
		for _, tc := range []struct{ label, want string }{
			{"cuda", "#1[CUDA,speed]"},
			{"Speed", "#1[CUDA,speed]"},
			{"onnx", "#2[onnx]"},
			{"", "#1[CUDA,speed] #2[onnx]"},
			{"bug", ""},
		} {
			if got := board(tc.label); got != tc.want {
				t.Errorf("board with label %q = %q, want %q", tc.label, got, tc.want)
			}
		}

		relabel(2, "good first issue", false)
		relabel(2, "good first issue", false) // a redelivery
		if got := labels(2); got != "good first issue,onnx" {
			t.Fatalf("after labeled twice: %q", got)
		}
		if !relabel(1, "cuda", true) || labels(1) != "speed" || board("cuda") != "" {
			t.Fatalf("after unlabeled: %q, board %q", labels(1), board("cuda"))
		}
		if relabel(1, "cuda", true) {
			t.Fatal("removing an absent label stored something")
		}
		if relabel(3, "bug", false) || e.count(`SELECT COUNT(*) FROM bounty_issue_labels WHERE issue = 3`) != 0 {
			t.Fatal("a label on an issue without a bounty was stored")
		}

		fund(1, "c", nil)
		if got := labels(1); got != "speed" {
			t.Fatalf("funding without labels changed them to %q", got)
		}
		fund(1, "d", []string{"perf"})
		if got := labels(1); got != "perf" {
			t.Fatalf("funding with GitHub's labels left %q, want perf", got)
		}
		if _, err := e.s.Relabel(e.ctx, LabelInput{Repo: "o/r", Issue: 1, Label: "two\nlines"}); err == nil {
			t.Fatal("a label with a newline was accepted")
		}
	})
}
