package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/testops"
)

// TestCIParityOnDevice is the parity gate end to end on a real accelerator: `gradforge serve`
// with the bot pointed at the fake GitHub, a runner labelled for the device, a signed
// pull_request webhook, and the whole testops suite run by the runner on that device against
// PyTorch, concluded as the check run's output. The pull request's repository holds the
// gradforge under test as a prebuilt binary and the job "builds" by copying it (--ci-build),
// so the runner machine needs git, Python with torch, and the device, but no Go toolchain.
//
// Opt-in, as it runs the suite: GRADFORGE_TEST_CI_DEVICE=CUDA (or CPU, CL). With
// GRADFORGE_TEST_OUT set, the check run's summary is written there.
func TestCIParityOnDevice(t *testing.T) {
	device := os.Getenv("GRADFORGE_TEST_CI_DEVICE")
	if device == "" {
		t.Skip("set GRADFORGE_TEST_CI_DEVICE=CUDA (or CPU, CL) to run the parity gate through a runner on that device (minutes)")
	}
	dir := t.TempDir()
	const repo = "Codertocat/Hello-World"
	src := filepath.Join(dir, "git", repo)
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", src, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q")
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "gradforge"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	git("add", "gradforge")
	git("commit", "-q", "-m", "base: the gradforge under test")
	base := git("rev-parse", "HEAD")
	os.WriteFile(filepath.Join(src, "NOTES.md"), []byte("a pull request that changes no code\n"), 0o644)
	git("add", "NOTES.md")
	git("commit", "-q", "-m", "head")
	head := git("rev-parse", "HEAD")

	label := strings.ToLower(device)
	gh := githubtest.New(t)
	gh.SetPermission(repo, "codertocat", "admin")
	gh.SetUser("codertocat", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC))
	_, url := startServe(t, dir, nil, "--github-token", "t", "--github-api-url", gh.URL+"/", "--webhook-secret", "s3cret",
		"--ci-gates", "parity", "--ci-device", device, "--ci-gpu-label", label, "--ci-build", `cp ./gradforge "$GRADFORGE_OUT"`,
		"--ci-clone-url", filepath.Join(dir, "git", "{repo}"), "--runner-heartbeat", "2s", "--runner-hold", "2s")

	runLog := startRunner(t, dir, url, label+",linux")
	start := time.Now()
	postSynchronize(t, dir, url, base, head)

	var parity githubtest.CheckRun
	for deadline := time.Now().Add(25 * time.Minute); time.Now().Before(deadline) && parity.Status != "completed"; time.Sleep(time.Second) {
		for _, c := range gh.CheckRuns(repo) {
			if c.Name == "parity" && c.HeadSHA == head {
				parity = c
			}
		}
	}
	took := time.Since(start).Round(time.Second)
	if out := os.Getenv("GRADFORGE_TEST_OUT"); out != "" {
		report := fmt.Sprintf("check run %q on %s: %s %s in %s\n%s\n\n%s\n", parity.Name, parity.HeadSHA, parity.Status, parity.Conclusion, took, parity.Title, parity.Summary)
		os.WriteFile(filepath.Join(out, "parity-check-run.md"), []byte(report), 0o644)
		os.WriteFile(filepath.Join(out, "runner.log"), []byte(runLog.String()), 0o644)
	}
	want := fmt.Sprintf("0 failed, %d passed, 0 skipped on %s", len(testops.Cases()), device)
	if parity.Conclusion != "success" || parity.Title != want || !strings.Contains(parity.Summary, "Device `"+device+"`, PyTorch `") {
		t.Fatalf("parity check run after %s: %s %s %q (want %q)\n%s", took, parity.Status, parity.Conclusion, parity.Title, want, parity.Summary)
	}
	t.Logf("parity check run concluded in %s: %s — %s", took, parity.Conclusion, parity.Title)
}
