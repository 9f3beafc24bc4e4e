package runners

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestReapStaleKillsLeftoversOfADeadRunner(t *testing.T) {
	work := t.TempDir()
	ws := filepath.Join(work, "job-7-1-123", "src")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(work, "unrelated")
	os.MkdirAll(keep, 0o755)
	orphan := exec.Command("sleep", "60")
	orphan.Dir = ws
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	bystander := exec.Command("sleep", "60")
	bystander.Dir = keep
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer bystander.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- orphan.Wait() }()

	reapStale(work, slog.New(slog.NewTextHandler(io.Discard, nil)))
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		orphan.Process.Kill()
		t.Fatal("a process left in a job workspace survived reapStale")
	}
	if _, err := os.Stat(filepath.Join(work, "job-7-1-123")); !os.IsNotExist(err) {
		t.Errorf("stale workspace still there: %v", err)
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process outside job workspaces was killed: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a folder that is not a job workspace was removed: %v", err)
	}
}

func TestTwoRunnersCannotShareAWorkDir(t *testing.T) {
	work := t.TempDir()
	release, err := lockWorkDir(work)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockWorkDir(work); err == nil {
		t.Fatal("a second runner locked a work dir in use")
	}
	release()
	again, err := lockWorkDir(work)
	if err != nil {
		t.Fatalf("work dir still locked after release: %v", err)
	}
	again()
}
