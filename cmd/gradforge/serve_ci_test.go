package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/ci"
	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/gradforge/gradforge/runners"
)

// The bot's CI and the web app's CI are the same ci.Service, wired through the runner queue.
func TestCIWiring(t *testing.T) {
	gh := githubtest.New(t)
	s := &Server{Ctx: t.Context(), DB: dbtest.SQLite(t), Log: slog.Default()}
	b := ciForBot(s, func(context.Context, string) (*github.Client, error) { return gh.Client(), nil })
	ctx := t.Context()
	pr := bot.PullRequest{Repo: "o/r", Number: 3, Author: "eve", HeadSHA: strings.Repeat("a", 40), BaseSHA: strings.Repeat("b", 40), BaseRef: "main"}

	if err := b.OnPullRequest(ctx, pr); err != nil {
		t.Fatal(err)
	}
	err := b.Retest(ctx, pr, "eve")
	if !errors.Is(err, bot.ErrRefused) || !strings.Contains(err.Error(), "/ok-to-test") {
		t.Errorf("retest by an untrusted author before /ok-to-test: %v, want a refusal that explains", err)
	}
	if err := b.OkToTest(ctx, pr, "maintainer"); err != nil {
		t.Fatal(err)
	}
	jobs, err := runnerQueue(s).List(ctx, runnersFilter("o/r"))
	if err != nil || len(jobs) != 3 {
		t.Fatalf("%d jobs after /ok-to-test (%v), want 3", len(jobs), err)
	}
	// A check run's Re-run button reaches ci through the bot's check request.
	var lines int64
	for _, c := range gh.CheckRuns("o/r") {
		if c.Name == ci.GateLines && c.Status == ci.Queued {
			lines = c.ID
		}
	}
	if err := b.OnCheckRequest(ctx, bot.CheckRequest{Repo: "o/r", Action: "rerequested", CheckRunID: lines, HeadSHA: pr.HeadSHA}); err != nil {
		t.Fatal(err)
	}
	runs, err := webCIFor(s).Runs(ctx, "o/r", 10)
	if err != nil || len(runs) != 1 || len(runs[0].Checks) != 3 || runs[0].Status != ci.Queued {
		t.Fatalf("web runs %+v (%v)", runs, err)
	}
	if n := len(gh.CheckRuns("o/r")); n != 7 { // 3 waiting, 3 after /ok-to-test, 1 re-run
		t.Errorf("%d check runs, want 7", n)
	}
	// Closing the pull request (as the bot reports pull_request closed) cancels its jobs and
	// concludes its unfinished check runs as cancelled.
	if err := b.OnClosed(ctx, pr); err != nil {
		t.Fatal(err)
	}
	jobs, err = runnerQueue(s).List(ctx, runnersFilter("o/r"))
	if err != nil || len(jobs) == 0 {
		t.Fatalf("jobs after close: %d (%v)", len(jobs), err)
	}
	for _, j := range jobs {
		if j.State != runners.Finished || j.Conclusion != runners.Cancelled {
			t.Errorf("job %d after the PR closed: %s/%s, want finished/cancelled", j.ID, j.State, j.Conclusion)
		}
	}
	for _, c := range gh.CheckRuns("o/r") {
		if c.Status != ci.Completed {
			t.Errorf("check run %s (%d) still %s after the PR closed", c.Name, c.ID, c.Status)
		}
	}
	if err := b.OnClosed(ctx, bot.PullRequest{Repo: "o/r", Number: 99}); err != nil {
		t.Errorf("closing a pull request ci never saw: %v, want nil", err)
	}
}

func runnersFilter(repo string) runners.JobFilter { return runners.JobFilter{Repo: repo} }

// TestServePullRequestCreatesChecks runs the real binary: a signed pull_request webhook goes
// in through the bot, and ci creates the three check runs on the fake GitHub and queues the
// jobs, which the web API then lists.
func TestServePullRequestCreatesChecks(t *testing.T) {
	gh := githubtest.New(t)
	const repo = "Codertocat/Hello-World"
	gh.SetPermission(repo, "codertocat", "admin")
	gh.SetUser("codertocat", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	_, url := startServe(t, dir, nil, "--github-token", "test-token", "--github-api-url", gh.URL+"/", "--webhook-secret", "s3cret",
		"--ci-details-url", "https://forge.test", "--ci-clone-url", "https://ghe.example/{repo}.git")
	f := fixturePath(t, "pull_request/synchronize.payload.json")
	if out, err := replay(t, dir, f, "--url", url, "--webhook-secret", "s3cret", "--delivery", "pr-1"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	var runs []githubtest.CheckRun
	for time.Now().Before(deadline) {
		if runs = gh.CheckRuns(repo); len(runs) >= 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	names := map[string]githubtest.CheckRun{}
	for _, r := range runs {
		names[r.Name] = r
	}
	for _, g := range ci.Gates {
		c, ok := names[g]
		if !ok || c.HeadSHA != "ec26c3e57ca3a959ca5aad62de7213c562f8c821" || c.Status != ci.Queued || !strings.HasPrefix(c.DetailsURL, "https://forge.test/runs/") {
			t.Errorf("%s check run: %+v (all: %+v)", g, c, runs)
		}
	}
	// The jobs are in the runners' queue, for the right commit and clone URL.
	db, err := migrations.Open(t.Context(), filepath.Join(dir, defaultDB))
	if err != nil {
		t.Fatal(err)
	}
	defer migrations.Close(db)
	jobs, err := runners.NewQueue(db).List(t.Context(), runners.JobFilter{Repo: repo})
	if err != nil || len(jobs) != 3 {
		t.Fatalf("%d jobs (%v), want 3", len(jobs), err)
	}
	for _, j := range jobs {
		if j.Spec.CloneURL != "https://ghe.example/"+repo+".git" || j.Spec.HeadSHA != "ec26c3e57ca3a959ca5aad62de7213c562f8c821" || !j.Spec.Trusted {
			t.Errorf("job %d: clone %q head %q trusted %v", j.ID, j.Spec.CloneURL, j.Spec.HeadSHA, j.Spec.Trusted)
		}
	}
	resp, err := http.Get(url + "/api/runs?repo=" + repo)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"lines"`) || !strings.Contains(string(body), "ec26c3e57ca3a959ca5aad62de7213c562f8c821") {
		t.Errorf("GET /api/runs: %d %s", resp.StatusCode, body)
	}
}
