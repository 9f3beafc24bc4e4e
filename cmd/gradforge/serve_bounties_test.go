package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// fakeSearch is the part of GitHub's API the bounties adapter reads: issue titles and the
// merged-PR search behind the first-PR rule.
func fakeSearch(t *testing.T, merged map[string][]int) *github.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/search/issues":
			q := r.URL.Query().Get("q")
			var items []map[string]any
			for login, prs := range merged {
				if strings.Contains(q, "author:"+login) && strings.Contains(q, "is:merged") {
					for _, n := range prs {
						items = append(items, map[string]any{"number": n})
					}
				}
			}
			json.NewEncoder(w).Encode(map[string]any{"total_count": len(items), "items": items})
		case strings.HasPrefix(r.URL.Path, "/repos/o/r/issues/"):
			json.NewEncoder(w).Encode(map[string]any{"number": 7, "title": "Faster matmul", "labels": []map[string]any{{"name": "speed"}, {"name": "cuda"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	gh, err := github.NewClient(nil).WithEnterpriseURLs(srv.URL+"/", srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	gh.BaseURL.Path = "/"
	return gh
}

func TestBotBountiesAdapter(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	svc := bounties.New(db, bounties.Config{BaseURL: "http://forge.test"})
	gh := fakeSearch(t, map[string][]int{"vet": {3, 4}, "newbie": {60}})
	a := botBounties{svc: svc, clientFor: func(context.Context, string) (*github.Client, error) { return gh, nil }}
	strict := bot.BountyPolicy{FirstPRCannotClaim: true, MinAccountAgeDays: 30}
	req := func(actor string, maint bool, number int) bot.BountyRequest {
		return bot.BountyRequest{Key: "d1:" + actor, Repo: "o/r", Number: number, Actor: actor, ActorMaintainer: maint,
			ActorCreatedAt: time.Now().AddDate(-2, 0, 0), Target: bot.Ref{Repo: "o/r", Number: 7}, Policy: strict}
	}
	r := req("maint", true, 7)
	r.Cents = 100_00
	msg, err := a.Bounty(ctx, r)
	if err != nil || !strings.Contains(msg, "$100") {
		t.Fatalf("maintainer /bounty: %q %v", msg, err)
	}
	if d, _ := svc.BountyDetail(ctx, "o/r", 7); d.Bounty.Title != "Faster matmul" || d.Bounty.PoolCents != 100_00 || strings.Join(d.Bounty.Labels, ",") != "cuda,speed" {
		t.Fatalf("bounty %+v", d.Bounty)
	}
	// Label changes on the issue reach the board (bot.IssueLabels).
	var _ bot.IssueLabels = a
	if err := a.IssueLabeled(ctx, "o/r", 7, "cuda", true); err != nil {
		t.Fatal(err)
	}
	if err := a.IssueLabeled(ctx, "o/r", 7, "good first issue", false); err != nil {
		t.Fatal(err)
	}
	if d, _ := svc.BountyDetail(ctx, "o/r", 7); strings.Join(d.Bounty.Labels, ",") != "good first issue,speed" {
		t.Fatalf("labels after labeled/unlabeled: %q", d.Bounty.Labels)
	}
	if err := a.IssueLabeled(ctx, "o/r", 7, "two\nlines", false); !errors.Is(err, bot.ErrRefused) {
		t.Fatalf("a label GitHub could not send: %v, want a refusal (logged, not retried)", err)
	}
	r = req("sam", false, 7)
	r.Cents = 5_00
	if _, err := a.Bounty(ctx, r); !errors.Is(err, bot.ErrRefused) {
		t.Fatalf("card funding without Stripe: %v, want a refusal the bot replies with", err)
	}
	if p, _ := svc.Policy(ctx, "o/r"); p.FirstPRCanClaim || p.MinAccountAgeDays != 30 || p.MaxActiveAttempts != 2 {
		t.Fatalf("policy from .gradforge.yml not applied: %+v", p)
	}
	// The first-PR rule asks GitHub: newbie's only merged PR is the one being claimed with.
	if _, err := a.Attempt(ctx, req("nobody", false, 7)); !errors.Is(err, bot.ErrRefused) || !strings.Contains(err.Error(), "first") {
		t.Fatalf("attempt by someone with no merged PR: %v", err)
	}
	if msg, err := a.Attempt(ctx, req("vet", false, 7)); err != nil || !strings.Contains(msg, "locked") {
		t.Fatalf("attempt by a veteran: %q %v", msg, err)
	}
	pr := &bot.PullRequest{Repo: "o/r", Number: 60, Author: "newbie", AuthorCreatedAt: time.Now().AddDate(-2, 0, 0), Merged: true,
		Config: &bot.RepoConfig{Bounties: strict}}
	cr := req("newbie", false, 60)
	cr.IsPR, cr.PR = true, pr
	if _, err := a.Claim(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if err := a.PullClosed(ctx, *pr); err != nil {
		t.Fatal(err)
	}
	d, _ := svc.BountyDetail(ctx, "o/r", 7)
	if len(d.Claims) != 1 || d.Claims[0].State != bounties.ClaimLost || !strings.Contains(d.Claims[0].Reason, "first merged") {
		t.Fatalf("newbie's first merged PR: %+v", d.Claims)
	}
	// The veteran's PR wins; approval without Stripe says payouts wait.
	pr = &bot.PullRequest{Repo: "o/r", Number: 61, Author: "vet", AuthorCreatedAt: time.Now().AddDate(-2, 0, 0), Merged: true, Config: &bot.RepoConfig{Bounties: strict}}
	cr = req("vet", false, 61)
	cr.IsPR, cr.PR = true, pr
	if _, err := a.Claim(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if err := a.PullClosed(ctx, *pr); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApprovePayout(ctx, req("vet", false, 61)); !errors.Is(err, bot.ErrRefused) {
		t.Fatalf("approval by the contributor: %v, want refused", err)
	}
	msg, err = a.ApprovePayout(ctx, req("maint", true, 61))
	if err != nil || !strings.Contains(msg, "Approved $100") {
		t.Fatalf("approval: %q %v", msg, err)
	}
	if q, _ := svc.Payouts(ctx, "o/r", bounties.CreditApproved); len(q) != 1 || q[0].Recipient != "vet" {
		t.Fatalf("approved queue %+v", q)
	}
}

func TestBountiesAuditCommand(t *testing.T) {
	ctx := context.Background()
	path := dbtest.SQLiteDSN(t)
	db, err := migrations.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	svc := bounties.New(db, bounties.Config{})
	if _, err := svc.Fund(ctx, bounties.FundInput{Repo: "o/r", Issue: 7, Sponsor: "maint", AmountCents: 12_34, FromPlatform: true, Maintainer: true, RequestKey: "k"}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--db", path)...).CombinedOutput()
		return string(out), err
	}
	out, err := run("bounties", "audit")
	if err != nil || !strings.Contains(out, "platform balance: -$12.34") || !strings.Contains(out, "ledger balanced") {
		t.Fatalf("audit of a sound ledger: %v\n%s", err, out)
	}
	out, err = run("bounties", "ledger", "--account", "bounty:")
	if err != nil || !strings.Contains(out, "funding:1") || !strings.Contains(out, "$12.34") {
		t.Fatalf("ledger: %v\n%s", err, out)
	}
	// Someone edits a row by hand: the audit must say so and fail.
	if err := db.Exec(`UPDATE bounty_ledger_entries SET amount_cents = 1 WHERE account = 'platform'`).Error; err != nil {
		t.Fatal(err)
	}
	migrations.Close(db)
	out, err = run("bounties", "audit")
	if err == nil || !strings.Contains(out, "PROBLEM: transaction funding:1 sums to 1235 cents") {
		t.Fatalf("audit of a tampered ledger: %v\n%s", err, out)
	}
}

func TestBountiesSignInSlot(t *testing.T) {
	s := &Server{DB: dbtest.SQLite(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), URL: "http://forge.test", Router: gin.New()}
	svc, err := bountiesService(s)
	if err != nil {
		t.Fatal(err)
	}
	svc.Routes(s.Router)
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		s.Router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/stripe/onboard/alice", nil))
		return w
	}
	if w := get(); w.Code != http.StatusForbidden {
		t.Fatalf("before the web part wires sign-in: %d, want 403", w.Code)
	}
	bountiesSignIn(s, func(*http.Request) string { return "" })
	if w := get(); w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "http://forge.test/login?next=") {
		t.Fatalf("signed out once sign-in is wired: %d %q, want a redirect to /login", w.Code, w.Header().Get("Location"))
	}
	if again, _ := bountiesService(s); again != svc {
		t.Fatal("two bounties services for one server")
	}
}

// The maintainers' commands reach the real bounties service through the adapter: /extend,
// /bounty-unban, /shares and /retry-payout, the last two written on the winning pull request.
func TestBotBountiesAdminAdapter(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		svc := bounties.New(db, bounties.Config{BaseURL: "http://forge.test"})
		gh := fakeSearch(t, map[string][]int{"vet": {3}, "spammer": {4}})
		a := botBounties{svc: svc, clientFor: func(context.Context, string) (*github.Client, error) { return gh, nil }}
		req := func(actor string, maint bool, number int, pr bool) bot.BountyRequest {
			return bot.BountyRequest{Key: fmt.Sprintf("d:%s:%d", actor, number), Repo: "o/r", Number: number, IsPR: pr, Actor: actor, ActorMaintainer: maint,
				ActorCreatedAt: time.Now().AddDate(-2, 0, 0), Target: bot.Ref{Repo: "o/r", Number: number}, Policy: bot.DefaultConfig().Bounties}
		}
		for _, issue := range []int{7, 8} {
			r := req("maint", true, issue, false)
			r.Cents = 100_00
			if _, err := a.Bounty(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Attempt(ctx, req("vet", false, 7, false)); err != nil {
			t.Fatal(err)
		}
		before, _ := svc.BountyDetail(ctx, "o/r", 7)
		ext := req("maint", true, 7, false)
		ext.Days = 3
		if msg, err := a.Extend(ctx, ext); err != nil || !strings.Contains(msg, "extended @vet's lock") {
			t.Fatalf("/extend: %q %v", msg, err)
		}
		after, _ := svc.BountyDetail(ctx, "o/r", 7)
		if got := after.Attempts[0].ExpiresAt.Sub(before.Attempts[0].ExpiresAt); got != 72*time.Hour {
			t.Errorf("lock moved by %v, want 72h", got)
		}
		ext.ActorMaintainer = false
		if _, err := a.Extend(ctx, ext); !errors.Is(err, bot.ErrRefused) {
			t.Errorf("/extend by a non-maintainer: %v, want refused", err)
		}
		// A ban bars attempts; the unban lets them in again.
		ban := req("maint", true, 8, false)
		ban.Users = []string{"spammer"}
		if _, err := a.Ban(ctx, ban); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Attempt(ctx, req("spammer", false, 8, false)); !errors.Is(err, bot.ErrRefused) {
			t.Fatalf("attempt while banned: %v", err)
		}
		if msg, err := a.Unban(ctx, ban); err != nil || msg == "" {
			t.Fatalf("/bounty-unban: %q %v", msg, err)
		}
		if _, err := a.Attempt(ctx, req("spammer", false, 8, false)); err != nil {
			t.Fatalf("attempt after the unban: %v", err)
		}
		// vet's PR #61, co-authored with eve, wins #7 split in two.
		pr := &bot.PullRequest{Repo: "o/r", Number: 61, Author: "vet", AuthorCreatedAt: time.Now().AddDate(-2, 0, 0), Merged: true,
			CoAuthors: []string{"eve"}, Config: bot.DefaultConfig()}
		cr := req("vet", false, 61, true)
		cr.PR, cr.Target = pr, bot.Ref{Repo: "o/r", Number: 7}
		if _, err := a.Claim(ctx, cr); err != nil {
			t.Fatal(err)
		}
		sp := req("vet", false, 61, true)
		sp.PR, sp.Users = pr, []string{"eve"}
		if _, err := a.Split(ctx, sp); err != nil {
			t.Fatal(err)
		}
		if err := a.PullClosed(ctx, *pr); err != nil {
			t.Fatal(err)
		}
		sh := req("maint", true, 61, true)
		sh.PR, sh.Shares = pr, map[string]int{"vet": 3, "eve": 1}
		if msg, err := a.SetShares(ctx, sh); err != nil || !strings.Contains(msg, "@vet $75") || !strings.Contains(msg, "@eve $25") {
			t.Fatalf("/shares on the PR: %q %v", msg, err)
		}
		sh.Number, sh.IsPR = 62, true
		if _, err := a.SetShares(ctx, sh); !errors.Is(err, bot.ErrRefused) {
			t.Errorf("/shares on a PR that won nothing: %v, want refused", err)
		}
		retry := req("maint", true, 61, true)
		if _, err := a.RetryPayout(ctx, retry); !errors.Is(err, bot.ErrRefused) || !strings.Contains(err.Error(), "no failed payout") {
			t.Fatalf("/retry-payout with nothing failed: %v", err)
		}
		if _, err := a.ApprovePayout(ctx, req("maint", true, 61, true)); err != nil {
			t.Fatal(err)
		}
		// Stripe's definite refusal is what fails a payout; without Stripe here, record it as
		// the transfer path would.
		if err := db.Exec(`UPDATE bounty_credits SET state = 'failed', failure = 'account closed' WHERE recipient = 'eve'`).Error; err != nil {
			t.Fatal(err)
		}
		retry.ActorMaintainer = false
		if _, err := a.RetryPayout(ctx, retry); !errors.Is(err, bot.ErrRefused) {
			t.Errorf("/retry-payout by a non-maintainer: %v, want refused", err)
		}
		retry.ActorMaintainer = true
		msg, err := a.RetryPayout(ctx, retry)
		if err != nil || !strings.Contains(msg, "@eve's $25") || strings.Contains(msg, "@vet") {
			t.Fatalf("/retry-payout on the PR: %q %v", msg, err)
		}
		if q, _ := svc.Payouts(ctx, "o/r", bounties.CreditApproved); len(q) != 2 {
			t.Errorf("after the retry %d payouts are approved, want 2 (eve's back in line): %+v", len(q), q)
		}
	})
}
