package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

const repo = "Codertocat/Hello-World" // the fixtures' repository

// fakeCI and fakeBounties record what the bot hands to the ci and bounties packages.
type fakeCI struct {
	mu    sync.Mutex
	calls []string
	pulls []PullRequest
	check []CheckRequest
}

func (f *fakeCI) rec(s string, pr *PullRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if pr != nil {
		f.pulls = append(f.pulls, *pr)
	}
}
func (f *fakeCI) OnPullRequest(_ context.Context, pr PullRequest) error {
	f.rec("pr:"+pr.Action, &pr)
	return nil
}
func (f *fakeCI) Retest(_ context.Context, pr PullRequest, by string) error {
	f.rec("retest:"+by, &pr)
	return nil
}
func (f *fakeCI) OkToTest(_ context.Context, pr PullRequest, by string) error {
	f.rec("ok-to-test:"+by, &pr)
	return nil
}
func (f *fakeCI) OnClosed(_ context.Context, pr PullRequest) error {
	f.rec("closed", &pr)
	return nil
}
func (f *fakeCI) OnCheckRequest(_ context.Context, r CheckRequest) error {
	f.mu.Lock()
	f.check = append(f.check, r)
	f.mu.Unlock()
	f.rec("check:"+r.Action, nil)
	return nil
}

type fakeBounties struct {
	mu       sync.Mutex
	requests []BountyRequest
	closed   []PullRequest
	labels   []string
	answer   func(op string, r BountyRequest) (string, error)
}

func (f *fakeBounties) IssueLabeled(_ context.Context, repo string, issue int, label string, removed bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.labels = append(f.labels, fmt.Sprintf("%s#%d %s removed=%v", repo, issue, label, removed))
	return nil
}

func (f *fakeBounties) do(op string, r BountyRequest) (string, error) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	if f.answer != nil {
		return f.answer(op, r)
	}
	return op + " recorded.", nil
}
func (f *fakeBounties) Bounty(_ context.Context, r BountyRequest) (string, error) {
	return f.do("bounty", r)
}
func (f *fakeBounties) Attempt(_ context.Context, r BountyRequest) (string, error) {
	return f.do("attempt", r)
}
func (f *fakeBounties) Claim(_ context.Context, r BountyRequest) (string, error) {
	return f.do("claim", r)
}
func (f *fakeBounties) Split(_ context.Context, r BountyRequest) (string, error) {
	return f.do("split", r)
}
func (f *fakeBounties) Tip(_ context.Context, r BountyRequest) (string, error) { return f.do("tip", r) }
func (f *fakeBounties) Propose(_ context.Context, r BountyRequest) (string, error) {
	return f.do("propose", r)
}
func (f *fakeBounties) ApprovePayout(_ context.Context, r BountyRequest) (string, error) {
	return f.do("approve-payout", r)
}
func (f *fakeBounties) CancelBounty(_ context.Context, r BountyRequest) (string, error) {
	return f.do("cancel", r)
}
func (f *fakeBounties) Unlock(_ context.Context, r BountyRequest) (string, error) {
	return f.do("unlock", r)
}
func (f *fakeBounties) Ban(_ context.Context, r BountyRequest) (string, error) { return f.do("ban", r) }
func (f *fakeBounties) Unban(_ context.Context, r BountyRequest) (string, error) {
	return f.do("unban", r)
}
func (f *fakeBounties) Extend(_ context.Context, r BountyRequest) (string, error) {
	return f.do("extend", r)
}
func (f *fakeBounties) SetShares(_ context.Context, r BountyRequest) (string, error) {
	return f.do("shares", r)
}
func (f *fakeBounties) RetryPayout(_ context.Context, r BountyRequest) (string, error) {
	return f.do("retry-payout", r)
}
func (f *fakeBounties) PullClosed(_ context.Context, pr PullRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, pr)
	return nil
}

type harness struct {
	db  *gorm.DB
	gh  *githubtest.Server
	ci  *fakeCI
	bn  *fakeBounties
	bot *Bot
	n   atomic.Int64
}

func newHarness(t *testing.T, db *gorm.DB) *harness {
	h := &harness{db: db, gh: githubtest.New(t), ci: &fakeCI{}, bn: &fakeBounties{}}
	h.bot = &Bot{DB: db, Clients: &Static{Client: h.gh.Client()}, CI: h.ci, Bounties: h.bn, Login: "gradforge[bot]"}
	return h
}

// deliver hands a payload to the bot as a stored delivery would be.
func (h *harness) deliver(t *testing.T, event string, payload []byte) error {
	t.Helper()
	id := fmt.Sprintf("d-%d", h.n.Add(1))
	return h.deliverID(t, id, event, payload)
}

func (h *harness) deliverID(t *testing.T, id, event string, payload []byte) error {
	return h.bot.Handle(context.Background(), Delivery{ID: id, Event: event, Payload: payload, Repo: repo, InstallationID: 1})
}

// comment derives an issue_comment delivery from the fixture: body by login, on a pull
// request when pr is set.
func comment(t *testing.T, login, body string, pr bool) []byte {
	return fixture(t, "issue_comment/created.with-installation.payload.json", func(m map[string]any) {
		obj(m, "comment")["body"] = body
		obj(m, "comment", "user")["login"] = login
		obj(m, "sender")["login"] = login
		if pr {
			obj(m, "issue")["pull_request"] = map[string]any{"url": "https://api.github.com/repos/" + repo + "/pulls/1"}
		}
	})
}

func (h *harness) botComment(t *testing.T, number int) string {
	t.Helper()
	cs := h.gh.Comments(repo, number)
	if len(cs) != 1 {
		t.Fatalf("%d bot comments on #%d, want exactly 1: %+v", len(cs), number, cs)
	}
	return cs[0].Body
}

func TestTriageCommands(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "maint", "write")
	body := "Triage:\n/label bug \"good first issue\"\n/ASSIGN @bob\n/hold\n```\n/close\n```\n> /close\n/cc @carol"
	if err := h.deliver(t, "issue_comment", comment(t, "maint", body, false)); err != nil {
		t.Fatal(err)
	}
	if got := h.gh.Labels(repo, 1); strings.Join(got, ",") != "bug,do-not-merge/hold,good first issue" {
		t.Errorf("labels = %q", got)
	}
	if got := h.gh.Assignees(repo, 1); len(got) != 1 || got[0] != "bob" {
		t.Errorf("assignees = %q", got)
	}
	if st, _ := h.gh.State(repo, 1); st != "open" {
		t.Errorf("state = %s: a /close inside a code block or quote ran", st)
	}
	c := h.botComment(t, 1)
	for _, want := range []string{Marker, "added `bug`, `good first issue`", "assigned @bob", "on hold", "cc @carol"} {
		if !strings.Contains(c, want) {
			t.Errorf("bot comment lacks %q:\n%s", want, c)
		}
	}
	// A second command edits the same comment.
	if err := h.deliver(t, "issue_comment", comment(t, "maint", "/remove-label bug\n/close", false)); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.gh.State(repo, 1); st != "closed" {
		t.Errorf("state after /close = %s", st)
	}
	c = h.botComment(t, 1)
	if !strings.Contains(c, "removed `bug`") || !strings.Contains(c, "assigned @bob") {
		t.Errorf("edited comment lost or lacks entries:\n%s", c)
	}
	if n := len(h.gh.Calls("POST", "/repos/"+repo+"/issues/1/comments")); n != 1 {
		t.Errorf("%d comments created, want 1 edited in place", n)
	}
}

func TestRefusalsNameWhoMay(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "reader", "read")
	if err := h.deliver(t, "issue_comment", comment(t, "reader", "/label bug\n/bounty $50\n/assign @someone\n/lgtm", false)); err != nil {
		t.Fatal(err)
	}
	if l := h.gh.Labels(repo, 1); len(l) != 0 {
		t.Errorf("labels = %q, want none", l)
	}
	if a := h.gh.Assignees(repo, 1); len(a) != 0 {
		t.Errorf("assignees = %q, want none", a)
	}
	if len(h.bn.requests) != 0 {
		t.Errorf("bounties called %d times for a refused /bounty", len(h.bn.requests))
	}
	c := h.botComment(t, 1)
	for _, want := range []string{"only maintainers and triagers", "only maintainers (write, maintain or admin access", "only maintainers, organization members", "works on pull requests only"} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks refusal %q:\n%s", want, c)
		}
	}
}

func TestConfigMaintainersAndOrgMembers(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetFile(repo, ConfigFile, "maintainers: [CfgUser]\ntrusted_users: [friend]\n")
	h.gh.AddOrgMember("Codertocat", "member")
	h.gh.AddPull(repo, githubtest.Pull{Number: 1, Author: "Codertocat", HeadSHA: "abc"})
	for _, tc := range []struct {
		login, cmd string
		ok         bool
	}{
		{"cfguser", "/approve", true}, // a maintainer by config though GitHub says none
		{"friend", "/approve", false}, // trusted is not maintainer
		{"friend", "/lgtm", true},     // trusted may lgtm
		{"member", "/ok-to-test", true},
		{"nobody", "/ok-to-test", false},
	} {
		h.gh.Reset()
		if err := h.deliver(t, "issue_comment", comment(t, tc.login, tc.cmd, true)); err != nil {
			t.Fatal(err)
		}
		refused := strings.Contains(h.botComment(t, 1), "@"+tc.login+" `"+tc.cmd+"`: sorry")
		if refused == tc.ok {
			t.Errorf("%s by %s: refused %v, want allowed %v\n%s", tc.cmd, tc.login, refused, tc.ok, h.botComment(t, 1))
		}
	}
	if l := h.gh.Labels(repo, 1); strings.Join(l, ",") != "approved,lgtm" {
		t.Errorf("labels = %q", l)
	}
	if len(h.ci.calls) != 1 || h.ci.calls[0] != "ok-to-test:member" {
		t.Errorf("ci calls = %q", h.ci.calls)
	}
}

func TestUnknownCommandListsValidOnes(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	if err := h.deliver(t, "issue_comment", comment(t, "someone", "/frobnicate now", false)); err != nil {
		t.Fatal(err)
	}
	c := h.botComment(t, 1)
	for _, want := range []string{"I don't know `/frobnicate`", "`/label`", "`/bounty`", "`/help`"} {
		if !strings.Contains(c, want) {
			t.Errorf("reply lacks %q:\n%s", want, c)
		}
	}
}

func TestEditRunsOnlyNewCommands(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "maint", "admin")
	edited := fixture(t, "issue_comment/edited.payload.json", func(m map[string]any) {
		m["installation"] = map[string]any{"id": 1}
		obj(m, "comment", "user")["login"] = "maint"
		obj(m, "sender")["login"] = "maint"
		obj(m, "comment")["body"] = "/label a\n/label b"
		obj(m, "changes", "body")["from"] = "/label a\n/lable b"
	})
	if err := h.deliver(t, "issue_comment", edited); err != nil {
		t.Fatal(err)
	}
	calls := h.gh.Calls("POST", "/repos/"+repo+"/issues/1/labels")
	if len(calls) != 1 || !strings.Contains(string(calls[0].Body), `"b"`) {
		t.Fatalf("label calls after the edit = %d (%v), want one adding b", len(calls), calls)
	}
}

func TestRetriedDeliveryDoesNotRepeatCommands(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "maint", "write")
	h.gh.AddPull(repo, githubtest.Pull{Number: 1, Author: "Codertocat", HeadSHA: "abc"})
	h.gh.FailNext("POST", "/repos/"+repo+"/issues/1/comments", http.StatusBadGateway, 1)
	payload := comment(t, "maint", "/retest\n/bounty-ban @spam", true)
	if err := h.deliverID(t, "retry-me", "issue_comment", payload); err == nil {
		t.Fatal("delivery succeeded although the reply could not be written")
	}
	if err := h.deliverID(t, "retry-me", "issue_comment", payload); err != nil {
		t.Fatal(err)
	}
	if len(h.ci.calls) != 1 || len(h.bn.requests) != 1 {
		t.Fatalf("after a retry: ci %q, bounties %d calls; want each once", h.ci.calls, len(h.bn.requests))
	}
	c := h.botComment(t, 1)
	if strings.Count(c, "re-running the checks") != 1 {
		t.Fatalf("reply repeated or missing:\n%s", c)
	}
}

func TestBountyCommandsReachBounties(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "maint", "maintain")
	h.gh.SetFile(repo, ConfigFile, "auto_approve_payouts: true\nbounties:\n  max_active_attempts: 3\n")
	h.bn.answer = func(op string, r BountyRequest) (string, error) {
		if op == "attempt" && r.Actor == "late" {
			return "", Refusef("@early holds the lock on #1 until 2 Jan.")
		}
		return op + " ok", nil
	}
	if err := h.deliver(t, "issue_comment", comment(t, "maint", "/bounty $1,000.50\n/tip $20 @helper", false)); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(t, "issue_comment", comment(t, "late", "/attempt", false)); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(t, "issue_comment", comment(t, "maint", "/bounty 12 euros", false)); err != nil {
		t.Fatal(err)
	}
	if len(h.bn.requests) != 3 {
		t.Fatalf("bounties got %d requests, want 3 (the bad amount never reaches it)", len(h.bn.requests))
	}
	b, tip, att := h.bn.requests[0], h.bn.requests[1], h.bn.requests[2]
	if b.Cents != 100050 || b.Repo != repo || b.Number != 1 || !b.ActorMaintainer || !b.AutoApprove || b.Policy.MaxActiveAttempts != 3 || b.Key == "" {
		t.Errorf("bounty request = %+v", b)
	}
	if tip.Cents != 2000 || len(tip.Users) != 1 || tip.Users[0] != "helper" || tip.Key == b.Key {
		t.Errorf("tip request = %+v", tip)
	}
	if att.Actor != "late" || att.ActorMaintainer || att.Target != (Ref{repo, 1}) || att.ActorCreatedAt.IsZero() {
		t.Errorf("attempt request = %+v", att)
	}
	c := h.botComment(t, 1)
	for _, want := range []string{"bounty ok", "tip ok", "@early holds the lock", "only US dollars"} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
}

func TestLabelChangesReachBounties(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	for _, f := range []string{"issues/labeled.payload.json", "issues/unlabeled.payload.json"} {
		if err := h.deliver(t, "issues", fixture(t, f, func(map[string]any) {})); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	onPR := fixture(t, "issues/labeled.payload.json", func(m map[string]any) {
		obj(m, "issue")["pull_request"] = map[string]any{"url": "https://api.github.com/repos/" + repo + "/pulls/1"}
	})
	if err := h.deliver(t, "issues", onPR); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.bn.labels, "; "); got != repo+"#1 bug removed=false; "+repo+"#1 bug removed=true" {
		t.Fatalf("label changes told to bounties: %q (pull requests' labels are not bounties' business)", got)
	}
}

func TestPullRequestLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db)
		h.gh.SetPermission(repo, "codertocat", "write")
		h.gh.AddPull(repo, githubtest.Pull{Number: 2, Author: "Codertocat", HeadSHA: "abc"})
		opened := fixture(t, "pull_request/opened.payload.json", func(m map[string]any) {
			obj(m, "pull_request")["body"] = "Fixes the thing.\n\n/claim #1\n/split @eve"
		})
		if err := h.deliver(t, "pull_request", opened); err != nil {
			t.Fatal(err)
		}
		if len(h.ci.pulls) != 1 || h.ci.pulls[0].Action != "opened" || !h.ci.pulls[0].Trusted || h.ci.pulls[0].HeadSHA == "" {
			t.Fatalf("ci got %+v", h.ci.pulls)
		}
		if len(h.bn.requests) != 2 || h.bn.requests[0].Target != (Ref{repo, 1}) || h.bn.requests[0].PR == nil || h.bn.requests[1].Users[0] != "eve" {
			t.Fatalf("bounties got %+v", h.bn.requests)
		}
		// An untrusted author's push is handed on untrusted.
		sync := fixture(t, "pull_request/synchronize.payload.json", func(m map[string]any) {
			obj(m, "pull_request", "user")["login"] = "drive-by"
			obj(m, "sender")["login"] = "drive-by"
		})
		if err := h.deliver(t, "pull_request", sync); err != nil {
			t.Fatal(err)
		}
		if last := h.ci.pulls[len(h.ci.pulls)-1]; last.Action != "synchronize" || last.Trusted {
			t.Fatalf("synchronize from an untrusted author = %+v", last)
		}
		// The fixtures never merge: derive a merged close, with a co-authored commit.
		number := 2
		h.gh.AddPull(repo, githubtest.Pull{Number: number, Author: "Codertocat", HeadSHA: "abc", Merged: true,
			Commits: []githubtest.Commit{{SHA: "abc", Author: "codertocat", Message: "work", CoAuthors: []string{"eve"}}}})
		merged := fixture(t, "pull_request/closed.payload.json", func(m map[string]any) {
			obj(m, "pull_request")["merged"] = true
			obj(m, "pull_request")["merged_by"] = map[string]any{"login": "maint"}
		})
		if err := h.deliver(t, "pull_request", merged); err != nil {
			t.Fatal(err)
		}
		closed := fixture(t, "pull_request/closed.payload.json", nil)
		if err := h.deliver(t, "pull_request", closed); err != nil {
			t.Fatal(err)
		}
		if len(h.bn.closed) != 2 {
			t.Fatalf("bounties told of %d closes, want 2", len(h.bn.closed))
		}
		m, c := h.bn.closed[0], h.bn.closed[1]
		if !m.Merged || m.MergedBy != "maint" || len(m.CoAuthors) != 1 || m.CoAuthors[0] != "eve" || m.Number != number {
			t.Errorf("merged close = %+v", m)
		}
		if c.Merged {
			t.Errorf("unmerged close reported merged: %+v", c)
		}
		// Both closes, merged or not, cancel the pull request's CI jobs.
		var cancels []PullRequest
		for _, p := range h.ci.pulls {
			if p.Action == "closed" {
				cancels = append(cancels, p)
			}
		}
		if len(cancels) != 2 || !cancels[0].Merged || cancels[1].Merged || cancels[0].Number != number || cancels[0].Repo != repo {
			t.Errorf("ci told of closes %+v, want the merged and the unmerged one", cancels)
		}
	})
}

func TestReviewBodyAndOwnCommentsIgnored(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "reviewer", "write")
	review := fixture(t, "pull_request_review/submitted.payload.json", func(m map[string]any) {
		obj(m, "review")["body"] = "Looks good.\n/lgtm"
		obj(m, "review", "user")["login"] = "reviewer"
		obj(m, "sender")["login"] = "reviewer"
	})
	if err := h.deliver(t, "pull_request_review", review); err != nil {
		t.Fatal(err)
	}
	number := int(obj(fixtureMap(t, "pull_request_review/submitted.payload.json"), "pull_request")["number"].(float64))
	if l := h.gh.Labels(repo, number); len(l) != 1 || l[0] != LGTMLabel {
		t.Fatalf("labels after review /lgtm = %q", l)
	}
	h.gh.Reset()
	own := comment(t, "gradforge[bot]", "/close", false)
	if err := h.deliver(t, "issue_comment", own); err != nil {
		t.Fatal(err)
	}
	if calls := h.gh.AllCalls(); len(calls) != 0 {
		t.Fatalf("the bot acted on its own comment: %v", calls)
	}
}

func fixtureMap(t *testing.T, name string) map[string]any {
	var out map[string]any
	fixture(t, name, func(m map[string]any) { out = m })
	return out
}

func TestCheckEvents(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	if err := h.deliver(t, "check_run", fixture(t, "check_run/rerequested.payload.json", nil)); err != nil {
		t.Fatal(err)
	}
	action := fixture(t, "check_run/requested_action.payload.json", nil)
	if err := h.deliver(t, "check_run", action); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(t, "check_suite", fixture(t, "check_suite/rerequested.payload.json", nil)); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(t, "check_run", fixture(t, "check_run/completed.payload.json", nil)); err != nil {
		t.Fatal(err)
	}
	if len(h.ci.check) != 3 {
		t.Fatalf("ci got %d check requests, want 3 (completed is ignored): %+v", len(h.ci.check), h.ci.check)
	}
	r := h.ci.check[0]
	if r.Action != "rerequested" || r.CheckRunID != 4 || r.Name != "randscape" || r.Repo != "github/hello-world" {
		t.Errorf("rerequested = %+v", r)
	}
	if h.ci.check[1].Action != "requested_action" || h.ci.check[2].SuiteID == 0 || h.ci.check[2].CheckRunID != 0 {
		t.Errorf("requested_action / suite = %+v / %+v", h.ci.check[1], h.ci.check[2])
	}
}

func TestInstallationEventsAndPost(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		if err := h.bot.Handle(ctx, Delivery{ID: "i1", Event: "installation", Payload: fixture(t, "installation/created.payload.json", nil)}); err != nil {
			t.Fatal(err)
		}
		if id, err := h.bot.InstallationOf(ctx, repo); err != nil || id != 957387 {
			t.Fatalf("installation of %s = %d, %v", repo, id, err)
		}
		added := fixture(t, "installation_repositories/removed.payload.json", func(m map[string]any) {
			m["action"] = "added"
			m["repositories_added"], m["repositories_removed"] = m["repositories_removed"], []any{}
		})
		if err := h.bot.Handle(ctx, Delivery{ID: "i2", Event: "installation_repositories", Payload: added}); err != nil {
			t.Fatal(err)
		}
		if id, err := h.bot.InstallationOf(ctx, "octocat/Hello-World"); err != nil || id != 2 {
			t.Fatalf("after added: %d, %v", id, err)
		}
		if err := h.bot.Handle(ctx, Delivery{ID: "i3", Event: "installation_repositories", Payload: fixture(t, "installation_repositories/removed.payload.json", nil)}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.bot.InstallationOf(ctx, "octocat/Hello-World"); err == nil {
			t.Fatal("removed repository still has an installation")
		}
		// Post is what the bounties notifier uses: a section and labels by repository.
		if err := h.bot.Post(ctx, repo, 5, "bounty", "**Bounty: $100**", []string{"bounty", "$100"}, []string{"paid"}); err != nil {
			t.Fatal(err)
		}
		if err := h.bot.Post(ctx, repo, 5, "bounty", "**Bounty: $150**", []string{"$150"}, []string{"$100"}); err != nil {
			t.Fatal(err)
		}
		if c := h.botComment(t, 5); !strings.Contains(c, "$150") || strings.Contains(c, "$100**") {
			t.Errorf("bounty section not replaced:\n%s", c)
		}
		if l := h.gh.Labels(repo, 5); strings.Join(l, ",") != "$150,bounty" {
			t.Errorf("labels = %q", l)
		}
	})
}

func TestMalformedPayloadFailsForGood(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	err := h.bot.Handle(context.Background(), Delivery{ID: "m", Event: "issue_comment", Payload: []byte(`{"action": }`)})
	var perm *permanentError
	if !errors.As(err, &perm) {
		t.Fatalf("malformed payload: %v, want a permanent error", err)
	}
	if err := h.bot.Handle(context.Background(), Delivery{ID: "u", Event: "star", Payload: []byte(`{"action":"created"}`)}); err != nil {
		t.Fatalf("an event the bot does not handle: %v, want nil", err)
	}
}

func TestIssueBodyCommands(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "codertocat", "admin")
	opened := fixture(t, "issues/opened.payload.json", func(m map[string]any) {
		m["installation"] = map[string]any{"id": 1}
		obj(m, "issue")["body"] = "Spotted a bug.\n\n/label bug\n/bounty $250"
	})
	if err := h.deliver(t, "issues", opened); err != nil {
		t.Fatal(err)
	}
	number := int(obj(fixtureMap(t, "issues/opened.payload.json"), "issue")["number"].(float64))
	if l := h.gh.Labels(repo, number); len(l) != 1 || l[0] != "bug" {
		t.Fatalf("labels from the issue body = %q", l)
	}
	if len(h.bn.requests) != 1 || h.bn.requests[0].Cents != 25000 {
		t.Fatalf("bounty from the issue body: %+v", h.bn.requests)
	}
}

func TestBadConfigIsToldNotRetried(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetFile(repo, ConfigFile, "maintainers: [unclosed\n")
	if err := h.deliver(t, "issue_comment", comment(t, "someone", "/label bug", false)); err != nil {
		t.Fatalf("a broken config failed the delivery (it would retry forever): %v", err)
	}
	if c := h.botComment(t, 1); !strings.Contains(c, "cannot read this repository's `.gradforge.yml`") {
		t.Fatalf("reply does not explain the broken config:\n%s", c)
	}
}

func TestEditorSpeaksForThemselves(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t))
	h.gh.SetPermission(repo, "maint", "write")
	// The author edits a maintainer's comment to add a maintainer-only command: the edit is
	// the author's, so it is refused.
	edited := fixture(t, "issue_comment/edited.payload.json", func(m map[string]any) {
		m["installation"] = map[string]any{"id": 1}
		obj(m, "comment", "user")["login"] = "maint"
		obj(m, "sender")["login"] = "sneaky"
		obj(m, "comment")["body"] = "/label approved-by-maint"
		obj(m, "changes", "body")["from"] = "fine by me"
	})
	if err := h.deliver(t, "issue_comment", edited); err != nil {
		t.Fatal(err)
	}
	if l := h.gh.Labels(repo, 1); len(l) != 0 {
		t.Fatalf("an edit by a non-maintainer applied %q", l)
	}
	if c := h.botComment(t, 1); !strings.Contains(c, "@sneaky `/label approved-by-maint`: sorry") {
		t.Fatalf("refusal not addressed to the editor:\n%s", c)
	}
}

func TestFailedDeliveryIsToldToPeople(t *testing.T) {
	db := dbtest.SQLite(t)
	h := newHarness(t, db)
	h.gh.SetPermission(repo, "maint", "write")
	h.gh.FailNext("POST", "/repos/"+repo+"/issues/1/labels", http.StatusBadGateway, 1<<20)
	store(t, db, "x") // a job that is not ours, to be sure only the failed one is reported
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := NewIntake(ctx, db, IntakeConfig{Secrets: []string{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Store(ctx, Delivery{ID: "doomed", Event: "issue_comment", Payload: comment(t, "maint", "/label bug", false)}); err != nil {
		t.Fatal(err)
	}
	w := &Workers{DB: db, N: 1, Poll: 5 * time.Millisecond, Backoff: time.Millisecond, MaxAttempts: 2, Handler: func(ctx context.Context, d Delivery) error {
		if d.ID == "x" {
			return nil
		}
		return h.bot.Handle(ctx, d)
	}, Failed: h.bot.Failed}
	runUntil(t, w, func() bool { return states(t, db)["doomed"].State == "failed" })
	if c := h.botComment(t, 1); !strings.Contains(c, "I could not act on delivery `doomed` (issue_comment)") {
		t.Fatalf("no word to people about the failed delivery:\n%s", c)
	}
}
