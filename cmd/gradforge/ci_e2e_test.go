package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/bot/githubtest"
)

// TestCIEndToEnd is the whole loop with real parts: a clone of this repository as the pull
// request's repository, `gradforge serve` with the bot pointed at the fake GitHub, a real
// `gradforge runner run`, and a signed pull_request webhook whose head adds core lines. The
// runner builds gradforge from the BASE commit and runs the lines gate against the head; the
// check run concludes with the table and the PR gets its line-count comment.
//
// It builds gradforge inside the job, so it is opt-in: GRADFORGE_TEST_CI_E2E=1.
func TestCIEndToEnd(t *testing.T) {
	if os.Getenv("GRADFORGE_TEST_CI_E2E") == "" {
		t.Skip("set GRADFORGE_TEST_CI_E2E=1 to run the CI end to end (builds gradforge in a runner job, minutes)")
	}
	dir := t.TempDir()
	const repo = "Codertocat/Hello-World"
	src := filepath.Join(dir, "git", repo)
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "clone", "-q", strings.TrimSpace(string(top)), src).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	base := git("rev-parse", "HEAD")
	extra := "package framework\n\n// added by the pull request under test\nvar (\n" + strings.Repeat("\t_ = 1\n", 20) + ")\n"
	if err := os.WriteFile(filepath.Join(src, "framework", "zz_extra.go"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "framework/zz_extra.go")
	git("commit", "-q", "-m", "add core lines")
	head := git("rev-parse", "HEAD")

	gh := githubtest.New(t)
	gh.SetPermission(repo, "codertocat", "admin")
	gh.SetUser("codertocat", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC))
	_, url := startServe(t, dir, nil, "--github-token", "t", "--github-api-url", gh.URL+"/", "--webhook-secret", "s3cret",
		"--ci-gates", "lines", "--ci-line-budget", "100", "--ci-clone-url", filepath.Join(dir, "git", "{repo}"),
		"--runner-heartbeat", "500ms", "--runner-hold", "2s")

	goEnv := func(k string) string {
		v, _ := exec.Command("go", "env", k).Output()
		return strings.TrimSpace(string(v))
	}
	startRunner(t, dir, url, "linux", "GOCACHE="+goEnv("GOCACHE"), "GOMODCACHE="+goEnv("GOMODCACHE"), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	postSynchronize(t, dir, url, base, head)

	var lines githubtest.CheckRun
	for deadline := time.Now().Add(8 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		for _, c := range gh.CheckRuns(repo) {
			if c.Name == "lines" && c.HeadSHA == head {
				lines = c
			}
		}
		if lines.Status == "completed" {
			break
		}
	}
	if lines.Conclusion != "failure" || !strings.Contains(lines.Title, "over the 100 budget") ||
		!strings.Contains(lines.Summary, "| `framework/zz_extra.go` | 0 | 23 | +23 |") {
		t.Fatalf("lines check run: %s %s %q\n%s", lines.Status, lines.Conclusion, lines.Title, lines.Summary)
	}
	comments := gh.Comments(repo, 2)
	if len(comments) == 0 || !strings.Contains(comments[len(comments)-1].Body, "framework/zz_extra.go") {
		t.Errorf("no line-count comment on the pull request: %+v", comments)
	}
	t.Logf("lines check: %s — %s", lines.Conclusion, lines.Title)
}

// startRunner registers a runner with labels at url and runs it until the test ends (its
// output is logged if the test fails); env is added to its environment.
func startRunner(t *testing.T, dir, url, labels string, env ...string) *strings.Builder {
	t.Helper()
	tok, _ := gradforge(t, dir, "runner", "token", "create", "--ttl", "5m")
	cfg := filepath.Join(dir, "runner.json")
	if out, code := gradforge(t, dir, "runner", "register", "--url", url, "--token", strings.Fields(tok)[0], "--labels", labels, "--name", "e2e", "--config", cfg); code != 0 {
		t.Fatalf("register: %s", out)
	}
	run := exec.Command(bin, "runner", "run", "--config", cfg, "--work-dir", filepath.Join(dir, "work"))
	run.Env = append(cleanEnv(), env...)
	var runLog strings.Builder
	run.Stdout, run.Stderr = &runLog, &runLog
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run.Process.Kill()
		run.Wait()
		if t.Failed() {
			t.Logf("runner output:\n%s", runLog.String())
		}
	})
	return &runLog
}

// postSynchronize signs and posts the real pull_request synchronize payload, moved to this
// repository's base and head, to the server at url.
func postSynchronize(t *testing.T, dir, url, base, head string) {
	t.Helper()
	raw, err := os.ReadFile(fixturePath(t, "pull_request/synchronize.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	pr := ev["pull_request"].(map[string]any)
	pr["head"].(map[string]any)["sha"] = head
	pr["base"].(map[string]any)["sha"] = base
	payload := filepath.Join(dir, "synchronize.json")
	b, _ := json.Marshal(ev)
	os.WriteFile(payload, b, 0o644)
	if out, err := replay(t, dir, payload, "--url", url, "--webhook-secret", "s3cret", "--event", "pull_request"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
}
