package ci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/gradforge/gradforge/runners"
	"gorm.io/gorm"
)

const fixtures = "../../shared/fixtures/github-webhooks/"

// fixturePull reads a real pull_request webhook payload into ci's PullRequest.
func fixturePull(t *testing.T, file string, trusted bool) PullRequest {
	t.Helper()
	b, err := os.ReadFile(fixtures + file)
	if err != nil {
		t.Skipf("webhook fixtures not found: %v", err)
	}
	var ev github.PullRequestEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	p := ev.GetPullRequest()
	return PullRequest{Repo: ev.GetRepo().GetFullName(), Number: ev.GetNumber(), Author: p.GetUser().GetLogin(),
		HeadSHA: p.GetHead().GetSHA(), BaseSHA: p.GetBase().GetSHA(), BaseRef: p.GetBase().GetRef(),
		CloneURL: ev.GetRepo().GetCloneURL(), Trusted: trusted}
}

type harness struct {
	svc *Service
	gh  *githubtest.Server
	q   *runners.Queue
	db  *gorm.DB
}

func newHarness(t *testing.T, db *gorm.DB, cfg Config) *harness {
	gh := githubtest.New(t)
	q := runners.NewQueue(db)
	svc := &Service{DB: db, Checks: GitHub{Client: func(context.Context, string) (*github.Client, error) { return gh.Client(), nil }},
		Dispatch: RunnerQueue{q}, Config: cfg}
	q.SetResults(svc.Results())
	return &harness{svc: svc, gh: gh, q: q, db: db}
}

// checks returns the check runs on one commit by name (the newest of each name).
func (h *harness) checks(repo, sha string) map[string]githubtest.CheckRun {
	out := map[string]githubtest.CheckRun{}
	for _, c := range h.gh.CheckRuns(repo) {
		if c.HeadSHA == sha {
			if prev, ok := out[c.Name]; !ok || c.ID > prev.ID {
				out[c.Name] = c
			}
		}
	}
	return out
}

func (h *harness) jobs(t *testing.T, repo string) []runners.Job {
	t.Helper()
	js, err := h.q.List(context.Background(), runners.JobFilter{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// finish delivers a job's end through the runners' Results interface, as the queue does.
func (h *harness) finish(t *testing.T, jobID int64, res runners.Result) {
	t.Helper()
	j, err := h.q.Get(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Results().JobFinished(context.Background(), j, res); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) run(t *testing.T, repo, sha, gate string) Run {
	t.Helper()
	var r Run
	if err := h.db.Where("repo = ? AND head_sha = ? AND gate = ?", repo, sha, gate).Order("attempt DESC").Take(&r).Error; err != nil {
		t.Fatalf("run %s: %v", gate, err)
	}
	return r
}

func TestPullRequestStartsGates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{DetailsURL: "https://forge.example/"})
		ctx := t.Context()
		pr := fixturePull(t, "pull_request/synchronize.payload.json", true)
		for range 2 { // a redelivered event changes nothing
			if err := h.svc.OnPullRequest(ctx, pr); err != nil {
				t.Fatal(err)
			}
		}
		checks := h.checks(pr.Repo, pr.HeadSHA)
		if len(h.gh.CheckRuns(pr.Repo)) != 3 || len(checks) != 3 {
			t.Fatalf("want 3 check runs once, got %+v", h.gh.CheckRuns(pr.Repo))
		}
		for _, g := range Gates {
			if c := checks[g]; c.Status != Queued || c.ExternalID == "" || c.DetailsURL != "https://forge.example/runs/"+c.ExternalID {
				t.Errorf("%s check: status %q external id %q details %q", g, c.Status, c.ExternalID, c.DetailsURL)
			}
		}
		jobs := h.jobs(t, pr.Repo)
		if len(jobs) != 3 {
			t.Fatalf("want 3 jobs, got %d", len(jobs))
		}
		labels := map[string]string{}
		for _, j := range jobs {
			gate := j.Spec.Key[strings.LastIndex(j.Spec.Key[:strings.LastIndex(j.Spec.Key, "/")], "/")+1 : strings.LastIndex(j.Spec.Key, "/")]
			labels[gate] = strings.Join(j.Spec.Labels, ",")
			if j.Spec.HeadSHA != pr.HeadSHA || j.Spec.BaseSHA != pr.BaseSHA || j.Spec.Group != pr.Repo+"#2" || !j.Spec.Trusted {
				t.Errorf("job spec %+v", j.Spec)
			}
			if !strings.Contains(j.Spec.Steps[0].Run, `cd "$GRADFORGE_BASE_DIR" && go build -o "$GRADFORGE_OUT"`) {
				t.Errorf("%s: the judging gradforge must be built from base first: %+v", gate, j.Spec.Steps)
			}
		}
		if labels[GateParity] != "cuda" || labels[GateSpeed] != "cuda" || labels[GateLines] != "" {
			t.Errorf("labels by gate = %v, want cuda for parity and speed only", labels)
		}

		// A push moves the head: the old commit's jobs are cancelled and its checks concluded.
		old := pr.HeadSHA
		pr.HeadSHA = strings.Repeat("b", 40)
		if err := h.svc.OnPullRequest(ctx, pr); err != nil {
			t.Fatal(err)
		}
		for _, c := range h.checks(pr.Repo, old) {
			if c.Conclusion != Cancelled {
				t.Errorf("old %s check: %s, want cancelled", c.Name, c.Conclusion)
			}
		}
		if n := len(h.checks(pr.Repo, pr.HeadSHA)); n != 3 {
			t.Errorf("new head has %d checks, want 3", n)
		}
		for _, j := range h.jobs(t, pr.Repo) {
			if j.Spec.HeadSHA == old && j.Conclusion != runners.Cancelled {
				t.Errorf("old job %d: %s %s, want cancelled", j.ID, j.State, j.Conclusion)
			}
			if j.Spec.HeadSHA == pr.HeadSHA && j.State != runners.Queued {
				t.Errorf("new job %d: %s", j.ID, j.State)
			}
		}
	})
}

func TestUntrustedWaitsForOkToTest(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	ctx := t.Context()
	pr := fixturePull(t, "pull_request/opened.payload.json", false)
	pr.HeadSHA = strings.Repeat("1", 40)
	if err := h.svc.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	if got := h.gh.Labels(pr.Repo, pr.Number); !contains(got, NeedsOkToTest) {
		t.Errorf("labels %v, want %s", got, NeedsOkToTest)
	}
	for _, g := range Gates {
		c := h.checks(pr.Repo, pr.HeadSHA)[g]
		if c.Conclusion != ActionRequired || c.DetailsURL == "" || !strings.Contains(c.Summary, "/ok-to-test") {
			t.Errorf("%s check %+v, want action_required with details", g, c)
		}
	}
	if n := len(h.jobs(t, pr.Repo)); n != 0 {
		t.Fatalf("%d jobs queued before /ok-to-test", n)
	}
	if err := h.svc.Retest(ctx, pr.Repo, pr.Number); !errors.Is(err, ErrNeedsOkToTest) {
		t.Errorf("retest before ok-to-test: %v", err)
	}
	if err := h.svc.OkToTest(ctx, pr.Repo, pr.Number); err != nil {
		t.Fatal(err)
	}
	if got := h.gh.Labels(pr.Repo, pr.Number); contains(got, NeedsOkToTest) {
		t.Errorf("label still there after /ok-to-test: %v", got)
	}
	for _, g := range Gates {
		if c := h.checks(pr.Repo, pr.HeadSHA)[g]; c.Status != Queued {
			t.Errorf("%s after ok-to-test: %+v", g, c)
		}
	}
	if n := len(h.jobs(t, pr.Repo)); n != 3 {
		t.Fatalf("%d jobs after /ok-to-test, want 3", n)
	}
	for _, j := range h.jobs(t, pr.Repo) {
		if j.Spec.Trusted {
			t.Error("an untrusted author's job must stay flagged untrusted")
		}
	}
	// By default the approval covers later pushes, like Prow's ok-to-test label.
	pr.HeadSHA = strings.Repeat("2", 40)
	if err := h.svc.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	if c := h.checks(pr.Repo, pr.HeadSHA)[GateLines]; c.Status != Queued {
		t.Errorf("push after ok-to-test: %+v", c)
	}
	// Configured to need it on every push, it waits again.
	h.svc.Config.OkToTestEachPush = true
	pr.HeadSHA = strings.Repeat("3", 40)
	if err := h.svc.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	if c := h.checks(pr.Repo, pr.HeadSHA)[GateLines]; c.Conclusion != ActionRequired {
		t.Errorf("push with OkToTestEachPush: %+v", c)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestResultsConcludeChecks(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{Budget: 10})
	ctx := t.Context()

	// A real repository: the head adds core lines past a budget of 10.
	r := newTestRepo(t)
	base := r.commit("base", map[string]string{"framework/a.go": "package a\n\nvar x = 1\n"})
	head := r.commit("head", map[string]string{"framework/a.go": "package a\n\nvar x = 1\n" + strings.Repeat("var _ = 2\n", 12)})
	lines, err := Lines(ctx, r.repo(), Core{}, base, head, 10)
	if err != nil {
		t.Fatal(err)
	}
	linesJSON, _ := json.Marshal(lines)

	pr := PullRequest{Repo: "o/r", Number: 9, Author: "alice", HeadSHA: head, BaseSHA: base, BaseRef: "main", Trusted: true}
	if err := h.svc.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	lr := h.run(t, "o/r", head, GateLines)
	h.finish(t, lr.JobID, runners.Result{Conclusion: runners.Failure, ExitCode: 1, Files: map[string][]byte{"lines.json": linesJSON}})
	c := h.checks("o/r", head)[GateLines]
	if c.Conclusion != Failure || !strings.Contains(c.Title, "over the 10 budget") || !strings.Contains(c.Summary, "| `framework/a.go` | 2 | 14 | +12 |") {
		t.Errorf("lines check: %s %q\n%s", c.Conclusion, c.Title, c.Summary)
	}
	comments := h.gh.Comments("o/r", 9)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "| `framework/a.go` | 2 | 14 | +12 |") {
		t.Fatalf("want one line-count comment, got %+v", comments)
	}
	// Delivered again (at-least-once): nothing changes.
	h.finish(t, lr.JobID, runners.Result{Conclusion: runners.Failure, Files: map[string][]byte{"lines.json": linesJSON}})
	if n := len(h.gh.Calls("PATCH", "/repos/o/r/check-runs")); n != 1 {
		t.Errorf("a repeated result updated the check %d times, want 1", n)
	}

	// Parity: 120 failing cases go out as 50+50+20 annotations.
	par := ParityReport{Device: "CUDA", Seed: 99}
	for i := range 120 {
		par.Cases = append(par.Cases, ParityCase{Name: fmt.Sprintf("conv2d_%03d", i), Family: "conv", Status: "fail", FwdMaxAbs: 0.5, Path: "testops/cases_conv.go", Line: 10 + i})
	}
	par.Cases = append(par.Cases, ParityCase{Name: "add", Family: "binary", Status: "pass"})
	parJSON, _ := json.Marshal(par)
	pr2 := h.run(t, "o/r", head, GateParity)
	before := len(h.gh.Calls("PATCH", ""))
	h.finish(t, pr2.JobID, runners.Result{Conclusion: runners.Failure, Files: map[string][]byte{"parity.json": parJSON}})
	patches := h.gh.Calls("PATCH", "")[before:]
	if len(patches) != 3 {
		t.Fatalf("parity result sent %d updates, want 3", len(patches))
	}
	for i, want := range []int{50, 50, 20} {
		var body github.UpdateCheckRunOptions
		if err := patches[i].JSON(&body); err != nil {
			t.Fatal(err)
		}
		if got := len(body.Output.Annotations); got != want {
			t.Errorf("update %d carries %d annotations, want %d", i, got, want)
		}
	}
	pc := h.checks("o/r", head)[GateParity]
	if pc.Conclusion != Failure || len(pc.Annotations) != 120 || !strings.Contains(pc.Annotations[0].GetMessage(), "TESTOPS_SEED=99") ||
		!strings.Contains(pc.Summary, "| conv | 120 | 0 | **120** |") {
		t.Errorf("parity check: %s, %d annotations\n%s", pc.Conclusion, len(pc.Annotations), pc.Summary)
	}

	// Speed: the runner died; the check says it was infrastructure, not the code.
	sr := h.run(t, "o/r", head, GateSpeed)
	h.finish(t, sr.JobID, runners.Result{Conclusion: runners.InfraFailure, Message: "lease lapsed 3 times"})
	sc := h.checks("o/r", head)[GateSpeed]
	if sc.Conclusion != Failure || !strings.Contains(sc.Title, "Infrastructure") || !strings.Contains(sc.Summary, "lease lapsed") {
		t.Errorf("speed check after infra failure: %s %q %q", sc.Conclusion, sc.Title, sc.Summary)
	}

	// /retest reruns what did not succeed: all three here, as new check runs and jobs.
	if err := h.svc.Retest(ctx, "o/r", 9); err != nil {
		t.Fatal(err)
	}
	if n := len(h.gh.CheckRuns("o/r")); n != 6 {
		t.Errorf("%d check runs after /retest, want 6", n)
	}
	// The Re-run button on one check reruns only that gate.
	if err := h.svc.OnCheckRerequested(ctx, "o/r", h.checks("o/r", head)[GateSpeed].ID); err != nil {
		t.Fatal(err)
	}
	if got := h.run(t, "o/r", head, GateSpeed).Attempt; got != 3 {
		t.Errorf("speed attempt %d after re-run, want 3", got)
	}
	if got := h.run(t, "o/r", head, GateLines).Attempt; got != 2 {
		t.Errorf("lines attempt %d, want 2 (untouched by the speed re-run)", got)
	}

	// A later push's line count edits the same comment in place.
	pr.HeadSHA = strings.Repeat("c", 40)
	if err := h.svc.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	lines.HeadSHA, lines.Head = pr.HeadSHA, 9
	lines.Files[0].Head = 9
	linesJSON, _ = json.Marshal(lines)
	h.finish(t, h.run(t, "o/r", pr.HeadSHA, GateLines).JobID, runners.Result{Conclusion: runners.Success, Files: map[string][]byte{"lines.json": linesJSON}})
	comments = h.gh.Comments("o/r", 9)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "| 2 | 9 | +7 |") {
		t.Errorf("want the one comment edited to the new count, got %+v", comments)
	}
	if c := h.checks("o/r", pr.HeadSHA)[GateLines]; c.Conclusion != Success {
		t.Errorf("within budget: %s", c.Conclusion)
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("row of the table\n", 5000) // 85,000 characters
	got := truncate(long, MaxText)
	if n := len([]rune(got)); n > MaxText {
		t.Errorf("truncated to %d characters, over %d", n, MaxText)
	}
	if !strings.Contains(got, "truncated: ") || !strings.Contains(got, "of 85000 characters shown") {
		t.Errorf("no truncation note at the end: %q", got[len(got)-120:])
	}
	if truncate("short", MaxText) != "short" {
		t.Error("short text must be left alone")
	}
	multi := strings.Repeat("é", 70000)
	if n := len([]rune(truncate(multi, MaxText))); n > MaxText {
		t.Errorf("counts characters, not bytes: %d", n)
	}
}

func TestHistoryForTheWebApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{})
		ctx := t.Context()
		mainSHA := strings.Repeat("a", 40)
		for i, head := range []string{strings.Repeat("d", 40), strings.Repeat("e", 40)} {
			pr := PullRequest{Repo: "o/r", Number: 20 + i, Author: "al", HeadSHA: head, BaseSHA: mainSHA, Trusted: true}
			if err := h.svc.OnPullRequest(ctx, pr); err != nil {
				t.Fatal(err)
			}
			rep := LinesReport{Root: "framework", BaseSHA: mainSHA, HeadSHA: head, Budget: 9000, Base: 100, Head: 100 + i,
				Files: []FileLines{{"framework/a.go", 100, 100 + i}}}
			b, _ := json.Marshal(rep)
			h.finish(t, h.run(t, "o/r", head, GateLines).JobID, runners.Result{Conclusion: runners.Success, Files: map[string][]byte{"lines.json": b}})
			sp := SpeedReport{BaseSHA: mainSHA, HeadSHA: head, Pairs: 10, Benchmarks: []BenchResult{{Name: "pkg.BenchmarkAdd", Base: 1000, Head: 1000, BaseNs: []float64{1000}, HeadNs: []float64{1000}, Verdict: Unchanged}}}
			b, _ = json.Marshal(sp)
			h.finish(t, h.run(t, "o/r", head, GateSpeed).JobID, runners.Result{Conclusion: runners.Success, Files: map[string][]byte{"speed.json": b}})
		}
		heads, err := h.svc.Heads(ctx, "o/r", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(heads) != 2 || heads[0].Number != 21 || len(heads[0].Runs) != 3 {
			t.Fatalf("heads %+v, want #21 then #20 with three runs each", heads)
		}
		one, err := h.svc.Head(ctx, heads[1].ID)
		if err != nil || one.Number != 20 {
			t.Fatalf("Head(%d) = %+v, %v", heads[1].ID, one, err)
		}
		cols, rows, err := one.Runs[1].Table() // lines
		if err != nil || len(cols) != 4 || len(rows) != 2 || rows[1][0] != "total" {
			t.Errorf("lines table %v %v %v", cols, rows, err)
		}
		lh, err := h.svc.LineHistory(ctx, "o/r")
		if err != nil || len(lh) != 1 || lh[0].SHA != mainSHA || lh[0].Value != 100 {
			t.Errorf("line history %+v %v: want main's one commit at 100", lh, err)
		}
		sh, err := h.svc.SpeedHistory(ctx, "o/r")
		if err != nil || len(sh["pkg.BenchmarkAdd"]) != 1 {
			t.Errorf("speed history %+v %v", sh, err)
		}
		if _, err := h.svc.Head(ctx, 999999); !errors.Is(err, ErrUnknownRun) {
			t.Errorf("unknown id: %v", err)
		}
	})
}

func TestCloseCancelsAndReopenRestarts(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	ctx := t.Context()
	pr := fixturePull(t, "pull_request/reopened.payload.json", true)
	pr.HeadSHA = strings.Repeat("f", 40)
	if err := h.svc.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.OnClosed(ctx, pr.Repo, pr.Number); err != nil {
		t.Fatal(err)
	}
	for _, c := range h.checks(pr.Repo, pr.HeadSHA) {
		if c.Conclusion != Cancelled {
			t.Errorf("%s after close: %s, want cancelled", c.Name, c.Conclusion)
		}
	}
	for _, j := range h.jobs(t, pr.Repo) {
		if j.Conclusion != runners.Cancelled {
			t.Errorf("job %d after close: %s", j.ID, j.Conclusion)
		}
	}
	if err := h.svc.OnPullRequest(ctx, pr); err != nil { // reopened, same head
		t.Fatal(err)
	}
	for _, g := range Gates {
		if c := h.checks(pr.Repo, pr.HeadSHA)[g]; c.Status != Queued {
			t.Errorf("%s after reopen: %+v", g, c)
		}
	}
	if err := h.svc.OnClosed(ctx, "o/unknown", 1); err != nil {
		t.Errorf("closing a pull request ci never saw: %v", err)
	}
}

// checkFor runs a gate result through the Service as a runner job's result file and returns
// the check run GitHub ends up with.
func checkFor(t *testing.T, gate string, result any) githubtest.CheckRun {
	t.Helper()
	h := newHarness(t, dbtest.SQLite(t), Config{})
	sha := strings.Repeat("5", 40)
	if err := h.svc.OnPullRequest(t.Context(), PullRequest{Repo: "o/r", Number: 1, Author: "a", HeadSHA: sha, Trusted: true}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(result)
	if err != nil {
		t.Fatal(err)
	}
	h.finish(t, h.run(t, "o/r", sha, gate).JobID, runners.Result{Conclusion: runners.Failure, ExitCode: 1, Files: map[string][]byte{gate + ".json": b}})
	return h.checks("o/r", sha)[gate]
}

func TestProgressShowsStartedJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		h := newHarness(t, db, Config{})
		ctx := t.Context()
		sha := strings.Repeat("7", 40)
		if err := h.svc.OnPullRequest(ctx, PullRequest{Repo: "o/r", Number: 4, Author: "a", HeadSHA: sha, BaseSHA: strings.Repeat("6", 40), Trusted: true}); err != nil {
			t.Fatal(err)
		}
		if n, err := h.svc.Progress(ctx); err != nil || n != 0 {
			t.Fatalf("nothing started yet: %d, %v", n, err)
		}
		reg := runners.NewRegistry(db)
		tok, _, err := reg.CreateToken(ctx, time.Hour, "test", "admin")
		if err != nil {
			t.Fatal(err)
		}
		cpu, _, err := reg.Register(ctx, tok, runners.Info{Name: "cpu-1", Labels: []string{"linux"}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := h.q.Next(ctx, cpu, time.Second) // a runner without "cuda" can only take the lines job
		if err != nil || a == nil {
			t.Fatalf("claim: %v %v", a, err)
		}
		if n, err := h.svc.Progress(ctx); err != nil || n != 1 {
			t.Fatalf("one job started: marked %d, %v", n, err)
		}
		c := h.checks("o/r", sha)
		if c[GateLines].Status != InProgress || c[GateParity].Status != Queued || c[GateSpeed].Status != Queued {
			t.Errorf("statuses: lines %s, parity %s, speed %s", c[GateLines].Status, c[GateParity].Status, c[GateSpeed].Status)
		}
		if n, _ := h.svc.Progress(ctx); n != 0 {
			t.Errorf("marked again: %d", n)
		}
		rep, _ := json.Marshal(LinesReport{Root: "framework", Budget: 9000, Base: 1, Head: 2})
		h.finish(t, a.Job.ID, runners.Result{Conclusion: runners.Success, Files: map[string][]byte{"lines.json": rep}})
		if c := h.checks("o/r", sha)[GateLines]; c.Status != Completed || c.Conclusion != Success {
			t.Errorf("after the result: %s %s", c.Status, c.Conclusion)
		}
	})
}

func TestRetestAndOkToTestAreIdempotent(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	ctx := t.Context()
	sha := strings.Repeat("9", 40)
	if err := h.svc.OnPullRequest(ctx, PullRequest{Repo: "o/r", Number: 5, Author: "x", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the bot retries a command whose reply failed
		if err := h.svc.OkToTest(ctx, "o/r", 5); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.gh.CheckRuns("o/r")); n != 6 {
		t.Errorf("%d check runs after two /ok-to-test, want 3 waiting + 3 queued", n)
	}
	// Everything is still running: /retest has nothing finished to rerun.
	if err := h.svc.Retest(ctx, "o/r", 5); err != nil {
		t.Fatal(err)
	}
	if n := len(h.gh.CheckRuns("o/r")); n != 6 {
		t.Errorf("/retest while all gates run made %d check runs, want 6", n)
	}
	rep, _ := json.Marshal(LinesReport{Budget: 9000, Base: 1, Head: 1})
	h.finish(t, h.run(t, "o/r", sha, GateLines).JobID, runners.Result{Conclusion: runners.Success, Files: map[string][]byte{"lines.json": rep}})
	// Lines passed, the others run: /retest reruns just the finished lines gate.
	if err := h.svc.Retest(ctx, "o/r", 5); err != nil {
		t.Fatal(err)
	}
	if a := h.run(t, "o/r", sha, GateLines).Attempt; a != 3 {
		t.Errorf("lines attempt %d, want 3 (waiting, first run, retest)", a)
	}
	if a := h.run(t, "o/r", sha, GateSpeed).Attempt; a != 2 {
		t.Errorf("speed attempt %d, want 2: a running gate is left alone", a)
	}
}

func TestResultRetriedWhenGitHubFails(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{})
	ctx := t.Context()
	sha := strings.Repeat("4", 40)
	if err := h.svc.OnPullRequest(ctx, PullRequest{Repo: "o/r", Number: 6, Author: "a", HeadSHA: sha, Trusted: true}); err != nil {
		t.Fatal(err)
	}
	run := h.run(t, "o/r", sha, GateLines)
	j, err := h.q.Get(ctx, run.JobID)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := json.Marshal(LinesReport{Budget: 9000, Base: 1, Head: 3, Files: []FileLines{{"framework/a.go", 1, 3}}})
	res := runners.Result{Conclusion: runners.Success, Files: map[string][]byte{"lines.json": rep}}
	for _, fail := range []struct{ method, prefix string }{{"POST", "/repos/o/r/issues/6/comments"}, {"PATCH", "/repos/o/r/check-runs"}} {
		h.gh.FailNext(fail.method, fail.prefix, 502, 1)
		if err := h.svc.Results().JobFinished(ctx, j, res); err == nil {
			t.Fatalf("GitHub answered 502 to %s %s, but JobFinished reported success (no retry would come)", fail.method, fail.prefix)
		}
		if r := h.run(t, "o/r", sha, GateLines); r.Status == Completed {
			t.Fatalf("run completed although GitHub was not told")
		}
	}
	if err := h.svc.Results().JobFinished(ctx, j, res); err != nil {
		t.Fatal(err)
	}
	if c := h.checks("o/r", sha)[GateLines]; c.Conclusion != Success {
		t.Errorf("after the retry: %s", c.Conclusion)
	}
	if n := len(h.gh.Comments("o/r", 6)); n != 1 {
		t.Errorf("%d comments, want one", n)
	}
}

func TestBatchesRespectGitHubLimits(t *testing.T) {
	long := strings.Repeat("é", 40000)
	in := &Output{Title: strings.Repeat("t", 300), Summary: strings.Repeat("s", 70000), Text: long + long,
		Annotations: []Annotation{{Path: "a.go", StartLine: 1, EndLine: 1, Level: LevelFailure, Message: long}}}
	outs := batches(in)
	o := outs[0]
	if len([]rune(o.Title)) > 255 || len([]rune(o.Summary)) > MaxText || len([]rune(o.Text)) > MaxText {
		t.Errorf("sizes: title %d, summary %d, text %d", len([]rune(o.Title)), len([]rune(o.Summary)), len([]rune(o.Text)))
	}
	if n := len(o.Annotations[0].Message); n >= 64<<10 {
		t.Errorf("annotation message is %d bytes, over GitHub's 64 KB", n)
	}
	if in.Annotations[0].Message != long {
		t.Error("batches changed the caller's annotations")
	}
}
