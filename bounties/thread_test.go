package bounties

import (
	"strings"
	"testing"

	"gorm.io/gorm"
)

// A payout won by a pull request is listed in both threads' bounty sections, so approving it
// (here written on the pull request, as /approve-payout is) must re-render both: the PR must
// not keep saying "awaiting approval".
func TestApprovalReachesThePullRequestThread(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, false)
		e.fund(e.repo, 7, 30_00)
		e.win(e.repo, 7, 50, "zed")
		if n, ok := e.notes.last(e.repo, 50); !ok || !strings.Contains(n.Markdown, "Payout to @zed: $30, awaiting approval") {
			t.Fatalf("PR thread before approval: %+v", n)
		}
		if _, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: e.repo, Number: 50, Actor: "maint", Maintainer: true}); err != nil {
			t.Fatal(err)
		}
		for _, number := range []int{7, 50} {
			n, ok := e.notes.last(e.repo, number)
			if !ok || !strings.Contains(n.Markdown, "Payout to @zed: $30, approved") || !strings.Contains(n.Event, "@maint approved the payout") {
				t.Errorf("thread #%d after approval: %+v", number, n)
			}
		}
	})
}
