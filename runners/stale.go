package runners

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// reapStale cleans up after a runner that died mid-job (kill -9, power loss): its job's
// processes, which lived in their own process group, may still run — holding the GPU — and
// its workspaces are still on disk. It kills every process whose working directory is inside
// a job workspace under workDir and removes the workspaces. Only a runner starting up may
// call it, since a running job's workspace looks the same.
func reapStale(workDir string, log *slog.Logger) {
	abs, err := filepath.Abs(workDir)
	if err != nil {
		return
	}
	stale, _ := filepath.Glob(filepath.Join(abs, "job-*"))
	if len(stale) == 0 {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", p.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, abs+string(filepath.Separator)+"job-") {
			continue
		}
		log.Warn("killing a process left by an earlier run of this runner", "pid", pid, "cwd", cwd)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, dir := range stale {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("remove a stale workspace", "dir", dir, "err", err)
		}
	}
}

// lockWorkDir takes an exclusive lock on a runner's work dir, so a second runner pointed at
// the same folder fails at start instead of reaping the first one's running job.
func lockWorkDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock work dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("work dir %s is in use by another runner (give each runner its own --work-dir): %w", dir, err)
	}
	return func() { f.Close() }, nil
}
