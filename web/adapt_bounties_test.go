package web

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// bountyFixture builds a small real forge through the bounties package's own commands:
// three funded bounties on two repositories and one won claim awaiting approval.
func bountyFixture(t *testing.T, db *gorm.DB) (*bounties.Service, int64) {
	t.Helper()
	ctx := t.Context()
	svc := bounties.New(db, bounties.Config{})
	fund := func(repo string, issue int, title string, cents int64, sponsor string, labels ...string) {
		t.Helper()
		_, err := svc.Fund(ctx, bounties.FundInput{Repo: repo, Issue: issue, Title: title, Labels: labels, Sponsor: sponsor, AmountCents: cents, FromPlatform: true, Maintainer: true, RequestKey: repo + title + sponsor})
		if err != nil {
			t.Fatalf("fund %s#%d: %v", repo, issue, err)
		}
	}
	fund("gradforge/gradforge", 7, "Fuse reduce into elementwise kernels", 500_00, "maint", "kernels", "Speed")
	fund("gradforge/gradforge", 7, "Fuse reduce into elementwise kernels", 250_00, "sponsorco")
	fund("gradforge/gradforge", 8, "ONNX <Resize> op", 300_00, "maint", "onnx")
	fund("gradforge/tools", 3, "Badge colours", 50_00, "maint", "good first issue")
	if _, err := svc.Claim(ctx, bounties.ClaimInput{Repo: "gradforge/gradforge", PR: 20, Issue: 8, Author: "alice", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	out, err := svc.OnMerged(ctx, bounties.MergedPR{Repo: "gradforge/gradforge", Number: 20, Merged: true,
		Author: bounties.Contributor{Login: "alice", CreatedAt: time.Now().AddDate(-3, 0, 0), MergedPRs: 5}, Claims: []int{8}})
	if err != nil || len(out) != 1 || !out[0].Won || len(out[0].Credits) != 1 {
		t.Fatalf("merge: %+v, %v", out, err)
	}
	return svc, out[0].Credits[0].ID
}

// TestBountySource serves pages over the real bounties package: the board's amounts are the
// ledger's pools, and console actions change the real credits.
func TestBountySource(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		svc, credit := bountyFixture(t, db)
		src := BountySource{S: svc}
		h := newHarnessSources(t, db, Config{DevLogin: true}, Sources{Bounties: src, Console: src, Settings: src})
		c := h.client()
		r := c.get("/")
		must(t, r, http.StatusOK, "Fuse reduce into elementwise kernels", "$750", "Badge colours", "2 bounties match")
		mustNot(t, r, "ONNX") // claimed, not open
		must(t, c.get("/?status=any&q=onnx+resize"), http.StatusOK, "ONNX &lt;Resize&gt; op", "1 bounty matches")
		// The issues' labels: shown on the board, each a link that filters by it, and a label field.
		must(t, r, http.StatusOK, `id="label"`, `<a class="label" href="/?label=good%20first%20issue">good first issue</a>`)
		r = c.get("/?label=speed")
		must(t, r, http.StatusOK, "Fuse reduce into elementwise kernels", "1 bounty matches", `value="speed"`)
		mustNot(t, r, "Badge colours")
		must(t, c.get("/?label=onnx&status=any"), http.StatusOK, "ONNX &lt;Resize&gt; op", "1 bounty matches")
		must(t, c.get("/?label=cuda"), http.StatusOK, "No bounty matches")
		must(t, c.get("/api/bounties?label=kernels"), http.StatusOK, `"total":1`, `"labels":["kernels","Speed"]`)
		if _, err := svc.Relabel(t.Context(), bounties.LabelInput{Repo: "gradforge/tools", Issue: 3, Label: "speed"}); err != nil {
			t.Fatal(err)
		}
		// A label added on GitHub afterwards counts too (asked with a filter the board cache,
		// which keeps each filter's list for a few seconds, has not seen yet).
		must(t, c.get("/api/bounties?label=speed&status=any"), http.StatusOK, `"total":2`)
		must(t, c.get("/bounties/gradforge/gradforge/7"), http.StatusOK, "$750", "@sponsorco", "$250")
		must(t, c.get("/bounties/gradforge/gradforge/8"), http.StatusOK, "#20", "@alice", "awaiting approval")
		must(t, c.get("/bounties/gradforge/gradforge/99"), http.StatusNotFound)
		must(t, c.get("/api/repos/gradforge/gradforge/badge"), http.StatusOK, `"open_cents":75000`, `"open_bounties":1`)
		must(t, c.get("/badge/gradforge/tools.svg"), http.StatusOK, "$50 open")

		m := h.client()
		m.signIn("maint", "maintainer")
		must(t, m.get("/console"), http.StatusOK, "gradforge/gradforge", "gradforge/tools")
		r = m.get("/console/gradforge/gradforge")
		must(t, r, http.StatusOK, "payout-"+strconv.FormatInt(credit, 10), "@alice", "$300", "ONNX &lt;Resize&gt; op")
		tok := m.csrf("/console/gradforge/gradforge")
		// The credit belongs to gradforge/gradforge: the tools console cannot approve it.
		must(t, m.post("/console/gradforge/tools/payouts/"+strconv.FormatInt(credit, 10)+"/approve", url.Values{"csrf_token": {tok}}), http.StatusNotFound)
		must(t, m.post("/console/gradforge/gradforge/payouts/"+strconv.FormatInt(credit, 10)+"/approve", url.Values{"csrf_token": {tok}}), http.StatusSeeOther)
		if cs, err := svc.Payouts(t.Context(), "gradforge/gradforge", bounties.CreditApproved); err != nil || len(cs) != 1 || cs[0].ApprovedBy != "maint" {
			t.Fatalf("approved credits %+v, %v", cs, err)
		}
		must(t, m.get("/console/gradforge/gradforge"), http.StatusOK, "Nothing awaits approval")

		policy := url.Values{"csrf_token": {tok}, "auto_approve": {"1"}, "max_active_attempts": {"4"}, "min_account_age_days": {"14"}, "attempt_days": {"5"}, "bounty_days": {"0"}}
		must(t, m.post("/console/gradforge/tools/settings", policy), http.StatusSeeOther)
		if p, err := svc.Policy(t.Context(), "gradforge/tools"); err != nil || !p.AutoApprove || p.MaxActiveAttempts != 4 || p.MinAccountAgeDays != 14 || p.AttemptDays != 5 {
			t.Fatalf("policy %+v, %v", p, err)
		}
		must(t, m.get("/console/gradforge/tools"), http.StatusOK, `value="14"`)
		must(t, m.get("/console/pipeline"), http.StatusOK, "Hiring pipeline", "bounty hunter", "candidate")
		must(t, m.get("/people/alice"), http.StatusOK, "@alice")
	})
}

// TestBountySourceDecline declines through the console and checks the bounties package
// recorded the maintainer's reason.
func TestBountySourceDecline(t *testing.T) {
	db := dbtest.SQLite(t)
	svc, credit := bountyFixture(t, db)
	src := BountySource{S: svc}
	h := newHarnessSources(t, db, Config{DevLogin: true}, Sources{Bounties: src, Console: src, Settings: src})
	m := h.client()
	m.signIn("maint", "maintainer")
	tok := m.csrf("/console/gradforge/gradforge")
	path := "/console/gradforge/gradforge/payouts/" + strconv.FormatInt(credit, 10) + "/decline"
	must(t, m.post(path, url.Values{"csrf_token": {tok}}), http.StatusBadRequest, "needs a reason")
	must(t, m.post(path, url.Values{"csrf_token": {tok}, "reason": {"the PR was reverted"}}), http.StatusSeeOther)
	cs, err := svc.Payouts(t.Context(), "gradforge/gradforge", bounties.CreditDeclined)
	if err != nil || len(cs) != 1 || cs[0].ID != credit {
		t.Fatalf("declined credits %+v, %v", cs, err)
	}
}
