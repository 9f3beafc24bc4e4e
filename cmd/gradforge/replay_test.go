package main

import (
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
	p, err := filepath.Abs(filepath.Join(fixtures, name))
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
