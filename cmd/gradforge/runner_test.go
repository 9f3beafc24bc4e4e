package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/runners"
)

// TestRunnerCLI attaches a runner the way an owner would, with the built binary only: a
// token from `runner token create`, `runner register` (credential saved 0600), `runner run`
// against `serve`, a job queued with `runner enqueue` and followed with `runner job
// --follow`; then revoking the runner stops it.
func TestRunnerCLI(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", "one"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	sha, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, url := startServe(t, dir, nil, "--runner-heartbeat", "200ms", "--runner-hold", "2s")

	tok, code := gradforge(t, dir, "runner", "token", "create", "--ttl", "5m")
	tok = strings.Fields(tok)[0]
	if code != 0 || !strings.HasPrefix(tok, "gfreg_") {
		t.Fatalf("token create: exit %d, %q", code, tok)
	}
	cfg := filepath.Join(dir, "conf", "runner.json")
	out, code := gradforge(t, dir, "runner", "register", "--url", url, "--token", tok, "--labels", "cuda,linux", "--name", "cli-runner", "--config", cfg)
	if code != 0 {
		t.Fatalf("register: exit %d: %s", code, out)
	}
	if st, err := os.Stat(cfg); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("runner config %v, %v; want mode 0600", st.Mode().Perm(), err)
	}
	if out, code := gradforge(t, dir, "runner", "register", "--url", url, "--token", tok, "--name", "again", "--config", cfg+"2"); code == 0 || !strings.Contains(out, "unknown, used or expired") {
		t.Fatalf("second register with one token: exit %d: %s", code, out)
	}

	// A stand-in nvidia-smi, so the runner reports GPUs as on a GPU machine.
	fake := filepath.Join(dir, "fakebin")
	os.MkdirAll(fake, 0o755)
	os.WriteFile(filepath.Join(fake, "nvidia-smi"), []byte("#!/bin/sh\nprintf 'NVIDIA H200\\nNVIDIA H200\\n'\n"), 0o755)
	run := exec.Command(bin, "runner", "run", "--config", cfg, "--work-dir", filepath.Join(dir, "work"))
	run.Env = append(cleanEnv(), "PATH="+fake+":"+os.Getenv("PATH"), "GRADFORGE_JOB_MEMORY=256M", "GRADFORGE_JOB_PIDS=512")
	var runLog strings.Builder
	run.Stdout, run.Stderr = &runLog, &runLog
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	t.Cleanup(func() {
		run.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("runner output:\n%s", runLog.String())
		}
	})

	id, code := gradforge(t, dir, "runner", "enqueue", "--clone-url", repo, "--sha", strings.TrimSpace(string(sha)), "--labels", "cuda",
		"--step", `greet=echo "hello from $GRADFORGE_HEAD_SHA"; echo '{"ok":true}' > "$GRADFORGE_RESULTS/report.json"`)
	if code != 0 {
		t.Fatalf("enqueue: exit %d: %s", code, id)
	}
	out, code = gradforge(t, dir, "runner", "job", strings.TrimSpace(id), "--follow")
	if code != 0 || !strings.Contains(out, "hello from "+strings.TrimSpace(string(sha))) || !strings.Contains(out, "finished success") ||
		!strings.Contains(out, "report.json") || !strings.Contains(out, "limits set by the runner's owner: memory 256MiB, pids 512") {
		t.Fatalf("job --follow: exit %d:\n%s", code, out)
	}
	if !strings.Contains(runLog.String(), "job limits:") || !strings.Contains(runLog.String(), "256MiB") {
		t.Errorf("runner did not say at start how its job limits are enforced:\n%s", runLog.String())
	}
	// A development build reports the commit it was built from as its version.
	ver, _ := gradforge(t, dir, "version")
	wantVer := "dev"
	if _, c, _ := strings.Cut(ver, "(commit "); len(c) > 12 && !strings.HasPrefix(c, "unknown") {
		wantVer = "dev-" + c[:12]
	}
	out, _ = gradforge(t, dir, "runner", "list")
	if !strings.Contains(out, "cli-runner") || !strings.Contains(out, "cuda,linux") || !strings.Contains(out, "idle") ||
		!strings.Contains(out, "2x NVIDIA H200") || !strings.Contains(out, wantVer) {
		t.Fatalf("runner list (want the GPUs from nvidia-smi and version %q):\n%s", wantVer, out)
	}
	if out, code := gradforge(t, dir, "runner", "revoke", "1"); code != 0 {
		t.Fatalf("revoke: exit %d: %s", code, out)
	}
	select {
	case err := <-exited:
		exited <- err
		if err == nil || !strings.Contains(runLog.String(), "credential rejected") {
			t.Fatalf("runner after revoke: %v\n%s", err, runLog.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("runner still running after its credential was revoked")
	}
}

// The App mints one read-only token per job, scoped to the job's repository.
func TestGitHubCloneTokens(t *testing.T) {
	gh := githubtest.New(t)
	g := githubCloneTokens{
		App: func() (*github.Client, error) { return gh.Client(), nil },
		InstallationOf: func(_ context.Context, repo string) (int64, error) {
			if repo != "o/r" {
				return 0, fmt.Errorf("no installation covers %s", repo)
			}
			return 42, nil
		},
	}
	tok, err := g.CloneToken(t.Context(), runners.Job{Spec: runners.Spec{Repo: "o/r"}})
	if err != nil || !strings.HasPrefix(tok, "ghs_fake_42_") {
		t.Fatalf("CloneToken = %q, %v", tok, err)
	}
	calls := gh.Calls("POST", "/app/installations/42/access_tokens")
	var body struct {
		Repositories []string          `json:"repositories"`
		Permissions  map[string]string `json:"permissions"`
	}
	if len(calls) != 1 || calls[0].JSON(&body) != nil || len(body.Repositories) != 1 || body.Repositories[0] != "r" ||
		len(body.Permissions) != 1 || body.Permissions["contents"] != "read" {
		t.Fatalf("token request %+v: want one request for repository r with contents:read only", body)
	}
	if _, err := g.CloneToken(t.Context(), runners.Job{Spec: runners.Spec{Repo: "x/y"}}); err == nil {
		t.Error("a repository no installation covers got a token")
	}
	if tok, err := g.CloneToken(t.Context(), runners.Job{}); tok != "" || err != nil {
		t.Errorf("a job without a repository: %q, %v; want an anonymous fetch", tok, err)
	}
}

// A runner's 30-second long poll must not hold up a server asked to stop.
func TestServeStopsPromptlyWithRunnersPolling(t *testing.T) {
	dir := t.TempDir()
	srv, url := startServe(t, dir, nil)
	tok, _ := gradforge(t, dir, "runner", "token", "create")
	cfg := filepath.Join(dir, "runner.json")
	if out, code := gradforge(t, dir, "runner", "register", "--url", url, "--token", strings.Fields(tok)[0], "--name", "poller", "--config", cfg); code != 0 {
		t.Fatalf("register: exit %d: %s", code, out)
	}
	// A stand-in nvidia-smi, so the runner reports GPUs as on a GPU machine.
	fake := filepath.Join(dir, "fakebin")
	os.MkdirAll(fake, 0o755)
	os.WriteFile(filepath.Join(fake, "nvidia-smi"), []byte("#!/bin/sh\nprintf 'NVIDIA H200\\nNVIDIA H200\\n'\n"), 0o755)
	run := exec.Command(bin, "runner", "run", "--config", cfg, "--work-dir", filepath.Join(dir, "work"))
	run.Env = append(cleanEnv(), "PATH="+fake+":"+os.Getenv("PATH"), "GRADFORGE_JOB_MEMORY=256M", "GRADFORGE_JOB_PIDS=512")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	waitListed(t, dir, "idle")
	time.Sleep(300 * time.Millisecond) // the runner's poll is held now

	srv.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want a clean exit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve still running 5 s after SIGTERM: a held runner poll keeps it waiting")
	}
}

// waitListed waits until `runner list` shows a runner in the given state.
func waitListed(t *testing.T, dir, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := gradforge(t, dir, "runner", "list")
		if strings.Contains(out, state) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no runner %s within 15 s:\n%s", state, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
