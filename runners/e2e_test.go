package runners

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// TestEndToEnd runs two runner processes with different labels against a forge on loopback,
// fetching from a real git repository over HTTP with per-job tokens: jobs that pass, fail,
// time out, hang until cancelled, an untrusted one, and one whose runner is killed -9.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end runner processes: skipped in -short")
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		f := newForge(t, db)
		src := newSource(t)
		f.q.SetCloneCredentials(src)
		// A stand-in for the runner's credential folder, which sandboxed jobs must not see. It
		// lives outside /tmp, which the sandbox replaces anyway, and is readable by all, so
		// only the sandbox keeps the job out.
		hidden, err := os.MkdirTemp("/var/tmp", "gradforge-hidden-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(hidden) })
		os.Chmod(hidden, 0o755)
		secretFile := filepath.Join(hidden, "runner.json")
		os.WriteFile(secretFile, []byte("credential"), 0o644)
		alpha := startRunner(t, f, "alpha", false, hidden, "linux")
		beta := startRunner(t, f, "beta", true, hidden, "linux", "cuda")
		spec := func(key string, trusted bool, labels []string, steps ...Step) Spec {
			return Spec{Key: key, Group: "owner/repo#1", Labels: labels, Repo: "owner/repo", CloneURL: src.url,
				HeadSHA: src.head, BaseRef: "main", Steps: steps, Trusted: trusted, Timeout: 30 * time.Second}
		}
		enqueue := func(s Spec) Job {
			t.Helper()
			j, err := f.q.Enqueue(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}

		pass := enqueue(spec("pass", true, []string{"cuda"},
			Step{"checkout", `test "$(git rev-parse HEAD)" = "$GRADFORGE_HEAD_SHA" && test -f head.txt &&
				test -f "$GRADFORGE_BASE_DIR/base.txt" && test ! -e "$GRADFORGE_BASE_DIR/head.txt"`},
			Step{"count", `i=1; while [ $i -le 300 ]; do echo "line $i"; i=$((i+1)); done`},
			Step{"report", `echo '{"passed":12}' > "$GRADFORGE_RESULTS/report.json"`}))
		fail := enqueue(spec("fail", true, []string{"linux"}, Step{"fails", `echo before; exit 3`}, Step{"never", `echo never-runs`}))
		slow := spec("timeout", true, []string{"linux"}, Step{"sleeps", `echo sleeping; sleep 20`})
		slow.Timeout = time.Second
		timeout := enqueue(slow)
		hang := enqueue(spec("hang", true, []string{"linux"}, Step{"hangs", `trap "" TERM; echo hanging; while :; do sleep 0.1; done`}))
		us := spec("untrusted", false, []string{"linux"},
			Step{"inspect", `id -u > "$GRADFORGE_RESULTS/uid"; cat /proc/1/comm > "$GRADFORGE_RESULTS/pid1"; cat /proc/net/dev > "$GRADFORGE_RESULTS/net"
				cat "$SECRET_FILE" > "$GRADFORGE_RESULTS/secret" 2>/dev/null || echo unreadable > "$GRADFORGE_RESULTS/secret"`})
		us.Env = map[string]string{"SECRET_FILE": secretFile}
		untrusted := enqueue(us)

		// Cancel the hanging job once it runs; it ignores SIGTERM, so it takes SIGKILL.
		waitFor(t, 20*time.Second, "the hanging job to start", func() bool {
			return strings.Contains(logText(t, f.q, hang.ID, 0), "hanging")
		})
		if err := f.q.Cancel(ctx, hang.ID, "new push"); err != nil {
			t.Fatal(err)
		}

		got := f.results.wait(t, pass.ID, 30*time.Second)
		if got.Conclusion != Success || got.Runner != beta.id {
			t.Errorf("pass job: conclusion %s on runner %d, want success on beta (%d): %s", got.Conclusion, got.Runner, beta.id, got.Message)
		}
		res, err := f.q.Result(ctx, pass.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Files["report.json"]) != "{\"passed\":12}\n" {
			t.Errorf("pass job results = %q", res.Files)
		}
		var want strings.Builder
		for i := 1; i <= 300; i++ {
			fmt.Fprintf(&want, "line %d\n", i)
		}
		if log := logText(t, f.q, pass.ID, 0); !strings.Contains(log, want.String()) || strings.Count(log, "line 17\n") != 1 {
			t.Errorf("pass job log does not hold lines 1..300 once and in order:\n%s", log)
		}

		got = f.results.wait(t, fail.ID, 30*time.Second)
		if got.Conclusion != Failure || got.ExitCode != 3 || got.Runner != alpha.id && got.Runner != beta.id {
			t.Errorf("fail job: %s exit %d: %s", got.Conclusion, got.ExitCode, got.Message)
		}
		if log := logText(t, f.q, fail.ID, 0); !strings.Contains(log, "before") || strings.Contains(log, "never-runs") {
			t.Errorf("fail job log:\n%s", log)
		}

		got = f.results.wait(t, timeout.ID, 30*time.Second)
		if got.Conclusion != TimedOut || got.KilledAt.IsZero() {
			t.Errorf("timeout job: %s killed at %v: %s", got.Conclusion, got.KilledAt, got.Message)
		}

		got = f.results.wait(t, hang.ID, 30*time.Second)
		if got.Conclusion != Cancelled {
			t.Errorf("hang job: %s: %s", got.Conclusion, got.Message)
		}
		if d := got.KilledAt.Sub(got.CancelRequestedAt); got.KilledAt.IsZero() || d < 0 || d >= 5*time.Second {
			t.Errorf("cancel reached the job %v after it was requested (killed %v, requested %v); want under 5s", d, got.KilledAt, got.CancelRequestedAt)
		}

		t.Logf("cancel requested %s, job signalled %s later", got.CancelRequestedAt.Format(time.StampMilli), got.KilledAt.Sub(got.CancelRequestedAt))
		got = f.results.wait(t, untrusted.ID, 30*time.Second)
		res, err = f.q.Result(ctx, untrusted.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Conclusion != Success || got.Runner != beta.id {
			t.Errorf("untrusted job: %s on runner %d, want success on beta, which alone allows untrusted jobs: %s", got.Conclusion, got.Runner, got.Message)
		}
		if os.Geteuid() == 0 && strings.TrimSpace(string(res.Files["uid"])) != "65534" {
			t.Errorf("untrusted job ran as uid %q, want the unprivileged 65534", res.Files["uid"])
		}
		if _, err := exec.LookPath("bwrap"); err == nil {
			if pid1 := strings.TrimSpace(string(res.Files["pid1"])); pid1 != "bwrap" {
				t.Errorf("untrusted job's pid 1 is %q, want bwrap (a private pid namespace)", pid1)
			}
			if secret := strings.TrimSpace(string(res.Files["secret"])); secret != "unreadable" {
				t.Errorf("untrusted job read the runner's hidden credential folder: %q", secret)
			}
			if net := string(res.Files["net"]); strings.Count(net, ":") != 1 || !strings.Contains(net, "lo:") {
				t.Errorf("untrusted job sees network devices beyond loopback:\n%s", net)
			}
		} else {
			t.Log("bwrap not installed: sandbox assertions skipped (apt-get install bubblewrap)")
		}

		// kill -9 the runner holding a job: the lease lapses and the other runner finishes it.
		survivor := enqueue(spec("survivor", true, []string{"linux"}, Step{"slow", `echo start; sleep 2; echo end`}))
		var holder Job
		waitFor(t, 20*time.Second, "the survivor job to start", func() bool {
			holder, err = f.q.Get(ctx, survivor.ID)
			return err == nil && holder.State == Running && strings.Contains(logText(t, f.q, survivor.ID, 0), "start")
		})
		victim, other := alpha, beta
		if holder.Runner == beta.id {
			victim, other = beta, alpha
		}
		victim.kill()
		got = f.results.wait(t, survivor.ID, 30*time.Second)
		if got.Conclusion != Success || got.Attempt != 2 || got.Runner != other.id {
			t.Errorf("survivor job: %s after %d attempts on runner %d, want success on attempt 2 on %s (%d): %s",
				got.Conclusion, got.Attempt, got.Runner, other.name, other.id, got.Message)
		}
		t.Logf("runner %s killed -9 holding job %d; attempt %d finished on %s", victim.name, survivor.ID, got.Attempt, other.name)
		if log := logText(t, f.q, survivor.ID, 2); strings.Count(log, "start\n") != 1 || strings.Count(log, "end\n") != 1 {
			t.Errorf("survivor attempt 2 log:\n%s", log)
		}

		// SIGTERM the runner holding a job: it kills the job and releases it back to the
		// queue at once, without counting an attempt.
		other.stop(t) // the last runner standing; a fresh one takes the next job
		third := startRunner(t, f, "gamma", false, hidden, "linux")
		handback := enqueue(spec("handback", true, []string{"linux"}, Step{"slow", `echo begin; sleep 30`}))
		waitFor(t, 20*time.Second, "the handback job to start", func() bool {
			return strings.Contains(logText(t, f.q, handback.ID, 0), "begin")
		})
		stopped := time.Now()
		third.stop(t)
		waitFor(t, 10*time.Second, "the released job to be queued again", func() bool {
			j, err := f.q.Get(ctx, handback.ID)
			return err == nil && j.State == Queued
		})
		t.Logf("released job queued again %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
		// A lapsed lease would have left the attempt counted; a release does not.
		if j, _ := f.q.Get(ctx, handback.ID); j.Attempt != 0 {
			t.Errorf("released job has %d attempts counted, want 0 (did it wait for the lease instead?)", j.Attempt)
		}
		if err := f.q.Cancel(ctx, handback.ID, "test over"); err != nil {
			t.Fatal(err)
		}

		for _, tok := range src.secrets() {
			for _, j := range []Job{pass, fail, timeout, hang, untrusted, survivor} {
				for a := 1; a <= 2; a++ {
					if strings.Contains(logText(t, f.q, j.ID, a), tok) {
						t.Errorf("job %d attempt %d log leaks a clone token", j.ID, a)
					}
				}
			}
		}
		if len(src.secrets()) == 0 {
			t.Error("no clone token was minted: the source was fetched without one")
		}
		f.results.mu.Lock()
		for id, n := range f.results.got {
			if n != 1 {
				t.Errorf("job %d delivered %d times", id, n)
			}
		}
		f.results.mu.Unlock()
	})
}
