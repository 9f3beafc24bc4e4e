package runners

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int64
		bad      bool
	}{
		{"plain bytes", "1048576", 1 << 20, false},
		{"short unit", "64M", 64 << 20, false},
		{"binary unit", "4GiB", 4 << 30, false},
		{"lower case with B", "512mb", 512 << 20, false},
		{"fraction", "1.5G", 3 << 29, false},
		{"space before unit", "2 K", 2 << 10, false},
		{"unknown unit", "3Q", 0, true},
		{"two units", "3MG", 0, true},
		{"no number", "G", 0, true},
		{"negative", "-1G", 0, true},
		{"overflow", "9999999T", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.bad != (err != nil) || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
			}
			if err == nil {
				if back, err := ParseSize(FormatSize(got)); err != nil || back != got {
					t.Errorf("FormatSize(%d) = %q does not read back (%d, %v)", got, FormatSize(got), back, err)
				}
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64M", "1.5GiB", "12", "1e3K", " 7 t "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Errorf("ParseSize(%q) = %d, a negative size", s, n)
		}
	})
}

// cgroupsOrSkip returns an enforcer with real cgroups for lim, or skips the test saying why.
func cgroupsOrSkip(t *testing.T, lim Limits) *enforcer {
	t.Helper()
	e := newEnforcer(lim)
	if e.cg == nil {
		t.Skipf("job limits need a cgroup this test can create, and there is none: %s", strings.Join(e.unenforced, "; "))
	}
	return e
}

// TestJobCgroup creates a job's cgroup and reads the limits back from the kernel's files.
func TestJobCgroup(t *testing.T) {
	lim := Limits{Memory: 96 << 20, CPUs: 1.5, PIDs: 64}
	e := cgroupsOrSkip(t, lim)
	t.Logf("enforced: %s", strings.Join(e.how, "; "))
	jc, err := e.job(fmt.Sprintf("gradforge-job-%d-test", os.Getpid()), -1)
	if err != nil {
		t.Fatal(err)
	}
	read := func(ctl, file string) string {
		b, err := os.ReadFile(filepath.Join(jc.dirs[ctl], file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	want := map[[2]string]string{{"memory", "memory.limit_in_bytes"}: "100663296", {"cpu", "cpu.cfs_quota_us"}: "150000",
		{"cpu", "cpu.cfs_period_us"}: "100000", {"pids", "pids.max"}: "64"}
	if e.cg.v2 {
		want = map[[2]string]string{{"memory", "memory.max"}: "100663296", {"cpu", "cpu.max"}: "150000 100000", {"pids", "pids.max"}: "64"}
	}
	for f, v := range want {
		if got := read(f[0], f[1]); got != v {
			t.Errorf("%s = %q, want %q", f[1], got, v)
		}
	}
	dirs := jc.unique()
	jc.close()
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("job cgroup %s still exists after close", d)
		}
	}
}

// TestLimitsWithoutCgroups pins the unprivileged fallback: CPUs through affinity, processes
// through RLIMIT_NPROC (not for root), and memory reported as not enforced.
func TestLimitsWithoutCgroups(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset (util-linux) is not installed")
	}
	e := &enforcer{lim: Limits{Memory: 1 << 30, CPUs: 1, PIDs: 100}}
	e.fallback("no cgroups in this test")
	if len(e.unenforced) == 0 || !strings.HasPrefix(e.unenforced[0], "memory: no cgroups in this test") {
		t.Errorf("memory without cgroups: unenforced = %q, want it listed with the reason", e.unenforced)
	}
	if root := os.Geteuid() == 0; root != strings.Contains(strings.Join(e.unenforced, ";"), "RLIMIT_NPROC does not bind root") {
		t.Errorf("pids as root=%v: unenforced = %q", root, e.unenforced)
	}
	jc, err := e.job("unused", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer jc.close()
	cmd := jc.command([]string{"sh", "-c", "grep Cpus_allowed_list /proc/self/status; cat /proc/self/limits"})
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Fields(strings.SplitN(string(out), "\n", 2)[0]); len(n) != 2 || strings.ContainsAny(n[1], ",-") {
		t.Errorf("a step under a 1-CPU limit may run on CPUs %v, want one", n)
	}
	if os.Geteuid() != 0 && !regexp.MustCompile(`Max processes +100 +100`).Match(out) {
		t.Errorf("a step under a 100-process limit has limits:\n%s", out)
	}
}

// TestJobLimits runs real jobs under limits: one that allocates past its memory limit fails
// promptly with an OOM message in its log, one under it passes, one that forks past its
// process limit fails, and every step runs inside the job's cgroup.
func TestJobLimits(t *testing.T) {
	t.Parallel()
	lim := Limits{Memory: 64 << 20, CPUs: 1, PIDs: 32}
	cgroupsOrSkip(t, lim)
	f := newForge(t, dbtest.SQLite(t))
	_, cred := f.register(t, "limited", "linux")
	agentLog := &syncBuffer{}
	work := filepath.Join(t.TempDir(), "work")
	for d := work; d != "/" && d != os.TempDir(); d = filepath.Dir(d) { // untrusted jobs run as nobody
		os.MkdirAll(d, 0o755)
		os.Chmod(d, 0o755)
	}
	a := &Agent{Client: &Client{URL: f.url, Credential: cred}, Info: Info{Name: "limited", Labels: []string{"linux"}, AllowUntrusted: true},
		WorkDir: work, KillGrace: 500 * time.Millisecond, Wait: 5 * time.Second,
		LogEvery: 50 * time.Millisecond, Limits: lim, Log: slog.New(slog.NewTextHandler(agentLog, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	src := newSource(t)
	f.q.SetCloneCredentials(src)
	job := func(key string, steps ...Step) Job {
		t.Helper()
		trusted := !strings.HasPrefix(key, "untrusted")
		j, err := f.q.Enqueue(context.Background(), Spec{Key: key, Labels: []string{"linux"}, Repo: "owner/repo", CloneURL: src.url,
			HeadSHA: src.head, Steps: steps, Trusted: trusted, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return f.results.wait(t, j.ID, 90*time.Second)
	}

	// A hung job would time out after 2 minutes and fail the wait for its result first.
	// tail holds all of a line in memory, and 512 MiB of zeros is one line. The script goes
	// on after tail is killed (on cgroup v1 the kernel kills only tail), but the job fails.
	got := job("oom", Step{"allocate 512 MiB", `head -c 512m /dev/zero | tail | wc -c; echo survived`})
	log := logText(t, f.q, got.ID, 0)
	if got.Conclusion != Failure || !strings.Contains(got.Message, "OOM-killed") || !strings.Contains(got.Message, "64MiB") {
		t.Errorf("job past its memory limit: %s: %s; want a failure that says it was OOM-killed at 64MiB", got.Conclusion, got.Message)
	}
	if !strings.Contains(log, "OOM-killed") || !strings.Contains(log, "limits set by the runner's owner: memory 64MiB, cpus 1, pids 32") {
		t.Errorf("log of the job past its memory limit:\n%s", log)
	}

	// An untrusted job runs as another user and sandboxed, and still enters its cgroup.
	got = job("untrusted oom", Step{"allocate 512 MiB", `head -c 512m /dev/zero | tail | wc -c`})
	if got.Conclusion != Failure || !strings.Contains(got.Message, "OOM-killed") {
		t.Errorf("untrusted job past its memory limit: %s: %s\n%s", got.Conclusion, got.Message, logText(t, f.q, got.ID, 0))
	}

	got = job("fits", Step{"allocate 8 MiB", `head -c 8m /dev/zero | tail | wc -c`},
		Step{"where", `cat /proc/self/cgroup > "$GRADFORGE_RESULTS/cgroup"`})
	if got.Conclusion != Success {
		t.Errorf("job under its limits: %s: %s\n%s", got.Conclusion, got.Message, logText(t, f.q, got.ID, 0))
	}
	res, err := f.q.Result(context.Background(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cg := string(res.Files["cgroup"]); strings.Count(cg, "gradforge-job-") < 1 ||
		!a.enf.cg.v2 && strings.Count(cg, "gradforge-job-") < 3 {
		t.Errorf("a step ran outside its job's cgroups:\n%s", cg)
	}

	got = job("forks", Step{"fork 100", `i=0; while [ $i -lt 100 ]; do sleep 3 & i=$((i+1)); done; wait`})
	if log := logText(t, f.q, got.ID, 0); got.Conclusion != Failure || !strings.Contains(strings.ToLower(log), "fork") {
		t.Errorf("job forking past its process limit: %s: %s\n%s", got.Conclusion, got.Message, log)
	}
	if !strings.Contains(agentLog.String(), "job limits: enforced") {
		t.Errorf("the runner did not report its limits at start:\n%s", agentLog.String())
	}
}

// syncBuffer is a bytes.Buffer a logger may write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
