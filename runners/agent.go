package runners

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Agent is the runner: it long-polls the forge for jobs its labels fit, runs each in a clean
// workspace while renewing its lease, streams the log, obeys cancels and reports the result.
// It runs one job at a time.
type Agent struct {
	Client *Client
	Info   Info
	// WorkDir holds the per-job workspaces (each removed after its job). The default is
	// /var/lib/gradforge-runner for root and the user cache folder otherwise; untrusted jobs
	// running as nobody need every folder above it to be searchable by others.
	WorkDir string
	// Hide lists folders sandboxed jobs must not see, such as the one holding the runner's
	// credential; the runner's home folder is always hidden.
	Hide []string
	// Sandbox says how untrusted jobs are isolated: "auto" uses bubblewrap when installed,
	// "bwrap" requires it (refusing untrusted jobs without it), "none" uses only an
	// unprivileged user. Trusted jobs run unsandboxed so they can reach GPUs and the network.
	Sandbox string
	// KillGrace is how long a cancelled or timed-out job has between SIGTERM and SIGKILL.
	KillGrace time.Duration
	// Wait is how long each long poll asks the server to hold (the server caps it).
	Wait time.Duration
	// LogEvery is how often buffered output is sent.
	LogEvery time.Duration
	// Limits caps the memory, CPU and processes of each job; Run logs how they are enforced.
	Limits Limits
	Log    *slog.Logger

	enf *enforcer
}

func (a *Agent) defaults() {
	if a.KillGrace <= 0 {
		a.KillGrace = 10 * time.Second
	}
	if a.Wait <= 0 {
		a.Wait = 30 * time.Second
	}
	if a.LogEvery <= 0 {
		a.LogEvery = 250 * time.Millisecond
	}
	if a.Log == nil {
		a.Log = slog.Default()
	}
	if a.Sandbox == "" {
		a.Sandbox = "auto"
	}
	if a.WorkDir == "" {
		a.WorkDir = "/var/lib/gradforge-runner"
		if os.Geteuid() != 0 {
			dir, err := os.UserCacheDir()
			if err != nil {
				dir = os.TempDir()
			}
			a.WorkDir = filepath.Join(dir, "gradforge-runner")
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		a.Hide = append(a.Hide, home)
	}
}

// jitter spreads retries of many runners: d scaled by a random factor in [0.5, 1.5).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// Run polls for and runs jobs until ctx ends (then it kills a running job and releases it
// back to the queue, and returns nil) or the server rejects the runner's credential.
func (a *Agent) Run(ctx context.Context) error {
	a.defaults()
	if a.Sandbox != "auto" && a.Sandbox != "bwrap" && a.Sandbox != "none" {
		return fmt.Errorf("sandbox %q: want auto, bwrap or none", a.Sandbox)
	}
	release, err := lockWorkDir(a.WorkDir)
	if err != nil {
		return err
	}
	defer release()
	reapStale(a.WorkDir, a.Log)
	a.enf = newEnforcer(a.Limits)
	if a.enf.cg != nil {
		a.enf.cg.reapStale(a.Log)
	}
	switch {
	case a.Limits == (Limits{}):
		a.Log.Info("job limits: none (the runner's owner may set --job-memory, --job-cpus, --job-pids)")
	case len(a.enf.unenforced) > 0:
		a.Log.Warn("job limits: some are NOT enforced", "enforced", strings.Join(a.enf.how, "; "), "not_enforced", strings.Join(a.enf.unenforced, "; "))
	default:
		a.Log.Info("job limits: enforced", "how", strings.Join(a.enf.how, "; "))
	}
	a.Log.Info("runner polling for jobs", "url", a.Client.URL, "name", a.Info.Name, "labels", a.Info.Labels, "gpu", a.Info.GPU)
	backoff := time.Second
	for ctx.Err() == nil {
		j, err := a.Client.next(ctx, a.Info, a.Wait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, ErrUnauthorized) {
				return fmt.Errorf("runner credential rejected (revoked?): %w", err)
			}
			d := jitter(backoff)
			a.Log.Warn("poll for jobs failed; retrying", "in", d.Round(time.Millisecond), "err", err)
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		if j != nil {
			a.runJob(ctx, j)
		}
	}
	return nil
}

// outcome is how one job attempt ended on the runner.
type outcome struct {
	conclusion Conclusion
	exitCode   int
	message    string
	killedAt   time.Time
	lost       bool // the lease is gone: report nothing
	stopping   bool // the runner is stopping: release the job
}

// stop causes, set on the job's context.
var (
	errCancelled = errors.New("cancelled")
	errTimedOut  = errors.New("timed out")
	errLost      = errors.New("lease lost")
)

func (a *Agent) runJob(ctx context.Context, j *wireJob) {
	log := a.Log.With("job", j.ID, "attempt", j.Attempt)
	log.Info("job started", "repo", j.Repo, "sha", j.HeadSHA, "steps", len(j.Steps))
	// The job's own context: cancelled by the heartbeat (cancel, lease lost), the wall
	// clock, or the runner stopping.
	jctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if j.TimeoutS > 0 {
		var cancelT context.CancelFunc
		jctx, cancelT = context.WithTimeoutCause(jctx, time.Duration(j.TimeoutS)*time.Second, errTimedOut)
		defer cancelT()
	}
	// Heartbeats go on until the result is reported, so the lease holds while logs flush.
	hbCtx, hbStop := context.WithCancel(ctx)
	var hbWG sync.WaitGroup
	hbWG.Add(1)
	go func() {
		defer hbWG.Done()
		a.heartbeats(hbCtx, j, stop, log)
	}()

	red := newRedactor(j.CloneToken, basicAuth(j.CloneToken), a.Client.Credential)
	logCtx, logGiveUp := context.WithCancel(context.WithoutCancel(ctx))
	defer logGiveUp()
	logs := newLogStream(logCtx, red, log, a.LogEvery, func(c context.Context, seq int, data []byte) (bool, error) {
		return a.Client.log(c, j.ID, j.Attempt, seq, data)
	})
	out, files := a.execute(jctx, j, logs, log)
	logs.Line(fmt.Sprintf("[gradforge] job %s: %s", out.conclusion, out.message))
	// Flushing the log may not outlast the lease: past it, the job is someone else's anyway.
	giveUp := time.AfterFunc(max(time.Duration(j.LeaseS*float64(time.Second)), 10*time.Second), logGiveUp)
	logs.Close()
	giveUp.Stop()
	if out.lost || errors.Is(context.Cause(jctx), errLost) {
		hbStop()
		hbWG.Wait()
		log.Warn("lease lost; the job was taken back by the server", "conclusion", out.conclusion)
		return
	}
	if out.stopping {
		hbStop()
		hbWG.Wait()
		// Give the job back so another runner starts it now, not after the lease lapses.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := a.Client.release(rctx, j.ID, j.Attempt); err != nil {
			log.Warn("runner stopping; could not release the job, it returns to the queue when its lease lapses", "err", err)
		} else {
			log.Info("runner stopping; job released back to the queue")
		}
		return
	}
	req := finishRequest{Attempt: j.Attempt, Conclusion: out.conclusion, ExitCode: out.exitCode, Message: out.message,
		Files: files, KilledAt: out.killedAt}
	// The job ended by itself: report it even if the runner is asked to stop meanwhile,
	// retrying for up to a lease.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(j.LeaseS*float64(time.Second))+30*time.Second)
	defer cancel()
	backoff := time.Second
	for {
		err := a.Client.finish(fctx, j.ID, req)
		if err == nil || permanent(err) || fctx.Err() != nil {
			if err != nil {
				log.Error("report job result", "err", err)
			}
			break
		}
		log.Warn("report job result; retrying", "err", err)
		select {
		case <-time.After(jitter(backoff)):
		case <-fctx.Done():
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	hbStop()
	hbWG.Wait()
	log.Info("job done", "conclusion", out.conclusion, "exit_code", out.exitCode)
}

// heartbeats renews the lease every interval the server asked for and stops the job when
// the server says it was cancelled or is no longer this runner's.
func (a *Agent) heartbeats(ctx context.Context, j *wireJob, stop context.CancelCauseFunc, log *slog.Logger) {
	every := time.Duration(j.HeartbeatS * float64(time.Second))
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ans, err := a.Client.heartbeat(ctx, j.ID, j.Attempt)
		switch {
		case errors.Is(err, ErrLeaseLost), errors.Is(err, ErrUnauthorized):
			stop(errLost) // the job moved on, or this runner was revoked
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("heartbeat failed; the lease may lapse", "err", err)
			}
		case ans.Cancel:
			stop(fmt.Errorf("%w: %s", errCancelled, ans.Reason))
		}
	}
}

// DetectGPU names the machine's NVIDIA GPUs from nvidia-smi, e.g. "NVIDIA H200", or
// "2x NVIDIA H200"; it returns "" when there is no nvidia-smi or it finds no GPU.
func DetectGPU(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=name", "--format=csv,noheader").Output()
	if err != nil {
		return ""
	}
	count := map[string]int{}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if count[l] == 0 {
				names = append(names, l)
			}
			count[l]++
		}
	}
	for i, n := range names {
		if count[n] > 1 {
			names[i] = fmt.Sprintf("%dx %s", count[n], n)
		}
	}
	return strings.Join(names, ", ")
}
