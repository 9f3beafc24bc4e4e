package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gradforge/gradforge/bot/githubtest"
)

const fixtures = "../../../shared/fixtures/github-webhooks"

// replay runs `gradforge replay` in dir and returns its output and error.
func replay(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"replay"}, args...)...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func fixturePath(t *testing.T, name string) string {
	t.Helper()
	dir := fixtures
	if d := os.Getenv("GRADFORGE_TEST_FIXTURES"); d != "" {
		dir = d // a copy carried to a machine without the shared folder
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("webhook fixtures not found: %v", err)
	}
	return p
}

func TestReplayZeroConfig(t *testing.T) {
	dir := t.TempDir()
	_, url := startServe(t, dir, nil)
	if _, err := os.Stat(filepath.Join(dir, defaultSecretFile)); err != nil {
		t.Fatalf("zero-config serve made no local webhook secret: %v", err)
	}
	f := fixturePath(t, "issue_comment/created.with-installation.payload.json")
	out, err := replay(t, dir, f, "--url", url, "--delivery", "d1")
	if err != nil || !strings.Contains(out, "issue_comment d1: 202") || !strings.Contains(out, `"duplicate":false`) {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	out, err = replay(t, dir, f, "--url", url, "--delivery", "d1")
	if err != nil || !strings.Contains(out, `"duplicate":true`) {
		t.Fatalf("second replay of d1: %v\n%s", err, out)
	}
	out, err = replay(t, dir, f, "--url", url, "--webhook-secret", "not-the-secret")
	if err == nil || !strings.Contains(out, "401") {
		t.Fatalf("replay with a wrong secret succeeded: %s", out)
	}
	out, err = replay(t, t.TempDir(), f, "--url", url)
	if err == nil || !strings.Contains(out, "no --webhook-secret") {
		t.Fatalf("replay without any secret: %v %s", err, out)
	}
	if out, err = replay(t, dir, filepath.Join(dir, defaultSecretFile), "--url", url); err == nil {
		t.Fatalf("replay of a non-JSON file succeeded: %s", out)
	}
}

func TestServeRefusesAppWithoutSecret(t *testing.T) {
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--github-app-id", "12", "--github-app-key", "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no webhook secret configured") {
		t.Fatalf("serve with an App and no secret: %v\n%s", err, out)
	}
}

// TestKilledServerFinishesAckedDelivery runs the real binary against a fake GitHub that
// fails every call, so the acknowledged delivery cannot finish; kills it with SIGKILL;
// heals the fake; restarts; and checks the command ran exactly once.
func TestKilledServerFinishesAckedDelivery(t *testing.T) {
	gh := githubtest.New(t)
	repo := "Codertocat/Hello-World"
	gh.SetPermission(repo, "codertocat", "write")
	gh.FailNext("", "/", http.StatusBadGateway, 1<<30)
	dir := t.TempDir()
	env := []string{"GRADFORGE_GITHUB_API_URL=" + gh.URL, "GRADFORGE_GITHUB_TOKEN=t", "GRADFORGE_WEBHOOK_SECRET=s3", "GRADFORGE_BOT_BACKOFF=50ms", "GRADFORGE_BOT_JOB_LEASE=1s"}
	first, url := startServe(t, dir, env)
	body := strings.NewReplacer("You are totally right! I'll get this fixed right away.", "/label after-crash").Replace(readFile(t, fixturePath(t, "issue_comment/created.with-installation.payload.json")))
	payload := filepath.Join(dir, "issue_comment.json")
	os.WriteFile(payload, []byte(body), 0o600)
	if out, err := replay(t, dir, payload, "--event", "issue_comment", "--url", url, "--webhook-secret", "s3", "--delivery", "crash"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	for start := time.Now(); len(gh.AllCalls()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the first server never tried the delivery")
		}
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	gh.ClearFailures()
	startServe(t, dir, env)
	deadline := time.Now().Add(20 * time.Second)
	for len(gh.Labels(repo, 1)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := gh.Labels(repo, 1); len(l) != 1 || l[0] != "after-crash" {
		var seen []string
		for _, c := range gh.AllCalls() {
			seen = append(seen, c.Method+" "+c.Path)
		}
		t.Fatalf("labels after restart = %q, want [after-crash]; GitHub saw %q", l, seen)
	}
	if n := len(gh.Calls("POST", "/repos/"+repo+"/issues/1/labels")); n != 1 {
		t.Fatalf("label requests that succeeded = %d, want 1", n)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBountyCommandThroughTheWholeServer replays a maintainer's /bounty comment and a
// contributor's /attempt to the real binary, wired to the real bounties service, and checks
// what GitHub is told: the bounty section of the bot's one comment and the labels.
func TestBountyCommandThroughTheWholeServer(t *testing.T) {
	gh := githubtest.New(t)
	repo := "Codertocat/Hello-World"
	gh.SetPermission(repo, "lead", "admin")
	dir := t.TempDir()
	env := []string{"GRADFORGE_GITHUB_API_URL=" + gh.URL, "GRADFORGE_GITHUB_TOKEN=t", "GRADFORGE_WEBHOOK_SECRET=s3", "GRADFORGE_BOUNTIES_TICK=0"}
	_, url := startServe(t, dir, env)
	original := readFile(t, fixturePath(t, "issue_comment/created.with-installation.payload.json"))
	send := func(name, login, body string) {
		t.Helper()
		p := strings.NewReplacer("You are totally right! I'll get this fixed right away.", body, `"login": "Codertocat"`, `"login": "`+login+`"`).Replace(original)
		f := filepath.Join(dir, name+".json")
		os.WriteFile(f, []byte(p), 0o600)
		if out, err := replay(t, dir, f, "--event", "issue_comment", "--url", url, "--webhook-secret", "s3"); err != nil {
			t.Fatalf("replay %s: %v\n%s", name, err, out)
		}
	}
	send("bounty", "lead", "/bounty $1,000.50")
	replayWait(t, func() bool { return len(gh.Labels(repo, 1)) > 0 })
	send("attempt", "hunter", "/attempt")
	replayWait(t, func() bool {
		cs := gh.Comments(repo, 1)
		return len(cs) == 1 && strings.Contains(cs[0].Body, "@hunter `/attempt`")
	})
	cs := gh.Comments(repo, 1)
	if len(cs) != 1 {
		t.Fatalf("%d bot comments, want one edited in place", len(cs))
	}
	if !strings.Contains(cs[0].Body, "$1,000.50") || !strings.Contains(cs[0].Body, "@lead `/bounty $1,000.50`") {
		t.Fatalf("bot comment lacks the bounty status or the command reply:\n%s", cs[0].Body)
	}
	t.Logf("bot comment:\n%s", cs[0].Body)
	if l := gh.Labels(repo, 1); !replayHas(l, "bounty") {
		t.Fatalf("labels = %q, want bounty among them", l)
	}
}

func replayWait(t *testing.T, cond func() bool, state ...func() any) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			var got []any
			for _, f := range state {
				got = append(got, f())
			}
			t.Fatalf("condition not met within 20s; state: %+v", got)
		}
	}
}

func replayHas(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// editFixture writes a variant of a fixture into dir and returns its path; the original is
// untouched.
func editFixture(t *testing.T, dir, name string, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(readFile(t, fixturePath(t, name))), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	f := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestUntrustedPullRequestWaitsForOkToTest replays a pull request from an author with no
// access to the real binary: ci's checks wait (action_required) under needs-ok-to-test, and
// a maintainer's /ok-to-test comment on the PR queues them; CI's text goes in the bot's one
// comment.
func TestUntrustedPullRequestWaitsForOkToTest(t *testing.T) {
	gh := githubtest.New(t)
	repo := "Codertocat/Hello-World"
	gh.SetPermission(repo, "lead", "write")
	head := "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	gh.AddPull(repo, githubtest.Pull{Number: 2, Author: "Codertocat", HeadSHA: head, BaseSHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", BaseRef: "master"})
	dir := t.TempDir()
	env := []string{"GRADFORGE_GITHUB_API_URL=" + gh.URL, "GRADFORGE_GITHUB_TOKEN=t", "GRADFORGE_WEBHOOK_SECRET=s3", "GRADFORGE_BOUNTIES_TICK=0"}
	_, url := startServe(t, dir, env)
	opened := editFixture(t, dir, "pull_request/opened.payload.json", func(map[string]any) {})
	if out, err := replay(t, dir, opened, "--url", url, "--webhook-secret", "s3", "--event", "pull_request"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	replayWait(t, func() bool { return len(gh.CheckRuns(repo)) >= 3 })
	for _, c := range gh.CheckRuns(repo) {
		if c.HeadSHA != head || c.Conclusion != "action_required" {
			t.Fatalf("check run before /ok-to-test = %+v, want action_required on %s", c, head)
		}
	}
	replayWait(t, func() bool { return replayHas(gh.Labels(repo, 2), "needs-ok-to-test") })
	ok := editFixture(t, dir, "issue_comment/created.with-installation.payload.json", func(m map[string]any) {
		is := m["issue"].(map[string]any)
		is["number"] = 2
		is["pull_request"] = map[string]any{"url": "https://api.github.com/repos/" + repo + "/pulls/2"}
		c := m["comment"].(map[string]any)
		c["body"] = "Looks safe.\n/ok-to-test"
		c["user"].(map[string]any)["login"] = "lead"
		m["sender"].(map[string]any)["login"] = "lead"
	})
	if out, err := replay(t, dir, ok, "--url", url, "--webhook-secret", "s3", "--event", "issue_comment"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	replayWait(t, func() bool {
		queued := 0
		for _, c := range gh.CheckRuns(repo) {
			if c.Status == "queued" {
				queued++
			}
		}
		// The reply is posted after ci queued the gates and dropped the label: wait for it too.
		cs := gh.Comments(repo, 2)
		return queued == 3 && !replayHas(gh.Labels(repo, 2), "needs-ok-to-test") && len(cs) == 1 && strings.Contains(cs[0].Body, "@lead `/ok-to-test`")
	}, func() any { return gh.CheckRuns(repo) }, func() any { return gh.Labels(repo, 2) }, func() any { return gh.Comments(repo, 2) })
	if cs := gh.Comments(repo, 2); len(cs) != 1 || !strings.Contains(cs[0].Body, "@lead `/ok-to-test`") {
		t.Fatalf("want one bot comment with the /ok-to-test reply, got %+v", cs)
	}
}

// TestMergedClaimThroughTheWholeServer follows a bounty from /bounty to a merged claim and
// /approve-payout through the real binary, its bot and the real bounties service; the
// fixtures never merge, so the merged close is derived here.
func TestMergedClaimThroughTheWholeServer(t *testing.T) {
	gh := githubtest.New(t)
	repo := "Codertocat/Hello-World"
	gh.SetPermission(repo, "lead", "admin")
	head := "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	gh.AddPull(repo, githubtest.Pull{Number: 5, Author: "Codertocat", HeadSHA: "0123", Merged: true}) // an earlier merged PR
	gh.AddPull(repo, githubtest.Pull{Number: 2, Author: "Codertocat", HeadSHA: head, Body: "/claim #1"})
	dir := t.TempDir()
	env := []string{"GRADFORGE_GITHUB_API_URL=" + gh.URL, "GRADFORGE_GITHUB_TOKEN=t", "GRADFORGE_WEBHOOK_SECRET=s3", "GRADFORGE_BOUNTIES_TICK=0"}
	_, url := startServe(t, dir, env)
	send := func(event, name string, edit func(m map[string]any)) {
		t.Helper()
		f := editFixture(t, dir, name, edit)
		if out, err := replay(t, dir, f, "--url", url, "--webhook-secret", "s3", "--event", event); err != nil {
			t.Fatalf("replay %s: %v\n%s", name, err, out)
		}
	}
	comment := func(number int, pr bool, login, body string) func(m map[string]any) {
		return func(m map[string]any) {
			is := m["issue"].(map[string]any)
			is["number"] = number
			if pr {
				is["pull_request"] = map[string]any{"url": "https://api.github.com/repos/" + repo + "/pulls/2"}
			}
			c := m["comment"].(map[string]any)
			c["body"] = body
			c["user"].(map[string]any)["login"] = login
			m["sender"].(map[string]any)["login"] = login
		}
	}
	issueComment := func() string {
		if cs := gh.Comments(repo, 1); len(cs) == 1 {
			return cs[0].Body
		}
		return ""
	}
	send("issue_comment", "issue_comment/created.with-installation.payload.json", comment(1, false, "lead", "/bounty $100"))
	replayWait(t, func() bool { return strings.Contains(issueComment(), "Bounty: $100") }, func() any { return issueComment() })
	send("pull_request", "pull_request/opened.payload.json", func(m map[string]any) {
		m["pull_request"].(map[string]any)["body"] = "Solves it.\n\n/claim #1"
	})
	replayWait(t, func() bool { return strings.Contains(issueComment(), "Claim #2 by @codertocat: pending") }, func() any { return issueComment() },
		func() any { return gh.Comments(repo, 2) })
	gh.AddPull(repo, githubtest.Pull{Number: 2, Author: "Codertocat", HeadSHA: head, Body: "/claim #1", Merged: true, MergedBy: "lead"})
	send("pull_request", "pull_request/closed.payload.json", func(m map[string]any) {
		p := m["pull_request"].(map[string]any)
		p["merged"] = true
		p["merged_by"] = map[string]any{"login": "lead"}
	})
	replayWait(t, func() bool { return strings.Contains(issueComment(), "Payout to @codertocat") }, func() any { return issueComment() })
	send("issue_comment", "issue_comment/created.with-installation.payload.json", comment(2, true, "lead", "/approve-payout"))
	replayWait(t, func() bool {
		cs := gh.Comments(repo, 2)
		// The PR's own bounty section shows the approval too, not only the issue's.
		return len(cs) == 1 && strings.Contains(cs[0].Body, "@lead `/approve-payout`") && strings.Contains(cs[0].Body, "Payout to @codertocat: $100, approved")
	}, func() any { return gh.Comments(repo, 2) })
	if l := gh.Labels(repo, 1); !replayHas(l, "bounty-claimed") {
		t.Errorf("issue labels after the merged claim = %q, want bounty-claimed", l)
	}
	t.Logf("issue comment:\n%s\nPR comment:\n%s", issueComment(), gh.Comments(repo, 2)[0].Body)
}
