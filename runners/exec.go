package runners

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nobody is the unprivileged user untrusted jobs run as when the runner runs as root.
const nobody = 65534

func basicAuth(token string) string {
	if token == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
}

// execute prepares a clean workspace, fetches the code and runs the steps. It returns how
// the attempt ended and the result files.
func (a *Agent) execute(ctx context.Context, j *wireJob, logs *logStream, log *slog.Logger) (outcome, map[string][]byte) {
	if !j.Trusted && !a.Info.AllowUntrusted {
		return outcome{conclusion: InfraFailure, message: "this runner refuses untrusted jobs (its owner did not pass --allow-untrusted)"}, nil
	}
	bwrap, _ := exec.LookPath("bwrap")
	sandboxed := !j.Trusted && a.Sandbox != "none" && bwrap != ""
	switch {
	case !j.Trusted && a.Sandbox == "bwrap" && bwrap == "":
		return outcome{conclusion: InfraFailure, message: "untrusted job refused: --sandbox=bwrap but bubblewrap (bwrap) is not installed"}, nil
	case !j.Trusted && a.Sandbox == "auto" && bwrap == "" && os.Geteuid() != 0:
		// Neither a sandbox nor another user to run as: the job could read this runner's
		// credential. Say how to fix it instead.
		return outcome{conclusion: InfraFailure, message: "untrusted job refused: bubblewrap is not installed (apt-get install bubblewrap), " +
			"and the runner is not root so it cannot run the job as another user; --sandbox=none accepts the risk"}, nil
	}
	if err := os.MkdirAll(a.WorkDir, 0o755); err != nil {
		return outcome{conclusion: InfraFailure, message: fmt.Sprintf("create work dir: %v", err)}, nil
	}
	ws, err := os.MkdirTemp(a.WorkDir, fmt.Sprintf("job-%d-%d-", j.ID, j.Attempt))
	if err != nil {
		return outcome{conclusion: InfraFailure, message: fmt.Sprintf("create workspace: %v", err)}, nil
	}
	ws, _ = filepath.Abs(ws)
	defer func() {
		if err := os.RemoveAll(ws); err != nil {
			log.Warn("remove workspace", "dir", ws, "err", err)
		}
	}()
	src, base, results, home := filepath.Join(ws, "src"), filepath.Join(ws, "base"), filepath.Join(ws, "results"), filepath.Join(ws, "home")
	for _, d := range []string{results, home, filepath.Join(ws, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return outcome{conclusion: InfraFailure, message: fmt.Sprintf("create workspace: %v", err)}, nil
		}
	}
	if err := a.fetch(ctx, j, ws, src, base, logs); err != nil {
		if out, stopped := stoppedOutcome(ctx, time.Time{}); stopped {
			return out, nil
		}
		return outcome{conclusion: InfraFailure, message: fmt.Sprintf("fetch %s at %s: %v", j.Repo, j.HeadSHA, err)}, nil
	}
	asUser := !j.Trusted && os.Geteuid() == 0
	if asUser {
		if err := chownTree(ws, nobody); err != nil {
			return outcome{conclusion: InfraFailure, message: fmt.Sprintf("hand workspace to the unprivileged user: %v", err)}, nil
		}
	}
	cache := filepath.Join(a.WorkDir, "cache")
	for _, d := range []string{"gomod", "gobuild"} {
		if err := os.MkdirAll(filepath.Join(cache, d), 0o755); err != nil {
			return outcome{conclusion: InfraFailure, message: fmt.Sprintf("create cache: %v", err)}, nil
		}
	}
	env := stepEnv(j, ws, src, base, results, home, cache)
	uid := -1
	if asUser {
		uid = nobody
	}
	enf := a.enf
	if enf == nil {
		enf = newEnforcer(Limits{})
	}
	jc, err := enf.job(fmt.Sprintf("gradforge-job-%d-%d-%d", os.Getpid(), j.ID, j.Attempt), uid)
	if err != nil {
		return outcome{conclusion: InfraFailure, message: fmt.Sprintf("apply the runner's job limits: %v", err)}, nil
	}
	defer jc.close() // also kills what the steps left running, even outside their process group
	if enf.lim != (Limits{}) {
		logs.Line("[gradforge] limits set by the runner's owner: " + enf.lim.String())
	}
	for i, st := range j.Steps {
		name := st.Name
		if name == "" {
			name = fmt.Sprintf("step %d", i+1)
		}
		logs.Line(fmt.Sprintf("[gradforge] ==> %s", name))
		args := []string{"sh", "-c", st.Run}
		if sandboxed {
			args = append(bwrapArgs(bwrap, ws, src, j.Trusted, a.Hide), args...)
		}
		cmd := jc.command(args)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = src, env, logs, logs
		if asUser {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
		}
		start := time.Now()
		ooms := jc.oomKills()
		stopWatch := jc.watchOOM(ooms)
		killedAt, err := runGroup(ctx, cmd, a.KillGrace)
		stopWatch()
		if out, stopped := stoppedOutcome(ctx, killedAt); stopped {
			return out, nil
		}
		var ee *exec.ExitError
		if n := jc.oomKills() - ooms; n > 0 {
			code := -1
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			return outcome{conclusion: Failure, exitCode: code, message: fmt.Sprintf("%s was OOM-killed after %v: the job went past its memory limit of %s "+
				"(set by the runner's owner with --job-memory; the kernel killed %d process(es), then the runner ended the job)",
				name, time.Since(start).Round(time.Millisecond), FormatSize(enf.lim.Memory), n)}, collect(results, log)
		}
		if errors.As(err, &ee) {
			return outcome{conclusion: Failure, exitCode: ee.ExitCode(), message: fmt.Sprintf("%s failed with exit status %d after %v", name, ee.ExitCode(), time.Since(start).Round(time.Millisecond))}, collect(results, log)
		}
		if err != nil {
			return outcome{conclusion: InfraFailure, message: fmt.Sprintf("run %s: %v", name, err)}, nil
		}
	}
	return outcome{conclusion: Success, message: fmt.Sprintf("%d step(s) passed", len(j.Steps))}, collect(results, log)
}

// stoppedOutcome turns a job context that ended into the attempt's outcome.
func stoppedOutcome(ctx context.Context, killedAt time.Time) (outcome, bool) {
	if ctx.Err() == nil {
		return outcome{}, false
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errTimedOut):
		return outcome{conclusion: TimedOut, exitCode: -1, killedAt: killedAt, message: "the job ran past its timeout and was killed"}, true
	case errors.Is(cause, errCancelled):
		return outcome{conclusion: Cancelled, exitCode: -1, killedAt: killedAt, message: cause.Error()}, true
	case errors.Is(cause, errLost):
		return outcome{conclusion: InfraFailure, lost: true, killedAt: killedAt, message: "lease lost"}, true
	}
	return outcome{conclusion: InfraFailure, stopping: true, killedAt: killedAt, message: "the runner is stopping"}, true
}

// runGroup runs cmd in its own process group. When ctx ends it sends SIGTERM to the whole
// group, then SIGKILL after grace; after the command exits, anything it left in the group
// is killed too. It returns when the first signal was sent (zero if none).
func runGroup(ctx context.Context, cmd *exec.Cmd, grace time.Duration) (time.Time, error) {
	cmd.WaitDelay = 2 * time.Second // a grandchild holding the output pipe must not hang us
	if err := cmd.Start(); err != nil {
		return time.Time{}, err
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	signalled := make(chan time.Time, 1)
	go func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		signalled <- time.Now()
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	err := cmd.Wait()
	close(exited)
	syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of the group
	var at time.Time
	select {
	case at = <-signalled:
	default:
	}
	return at, err
}

// gitEnv is the environment of the runner's own git commands: no prompts, no user or system
// configuration, and the clone token as an HTTP header set through the environment so it
// never lands in .git/config or on a command line.
func gitEnv(home, token string) []string {
	env := []string{"HOME=" + home, "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "PATH=" + os.Getenv("PATH"), "LANG=C"}
	if token != "" {
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+basicAuth(token))
	}
	return env
}

// fetch checks the head commit out in src and, when the job names a base, the base in base.
// It fetches exactly the commits needed, falling back to a full fetch for servers that do
// not serve commits by id.
func (a *Agent) fetch(ctx context.Context, j *wireJob, ws, src, base string, logs *logStream) error {
	env := gitEnv(filepath.Join(ws, "home"), j.CloneToken)
	git := func(dir string, args ...string) error {
		logs.Line("[gradforge] $ git " + strings.Join(args, " "))
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, logs, logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		_, err := runGroup(ctx, cmd, 5*time.Second)
		if err != nil {
			return fmt.Errorf("git %s: %w", args[0], err)
		}
		return nil
	}
	if err := git(ws, "init", "-q", src); err != nil {
		return err
	}
	if err := git(src, "remote", "add", "origin", j.CloneURL); err != nil {
		return err
	}
	want := []string{j.HeadSHA}
	baseRev := j.BaseSHA
	if baseRev == "" && j.BaseRef != "" {
		baseRev = "refs/remotes/origin/base"
		want = append(want, "+refs/heads/"+strings.TrimPrefix(j.BaseRef, "refs/heads/")+":"+baseRev)
	} else if baseRev != "" {
		want = append(want, baseRev)
	}
	if err := git(src, append([]string{"fetch", "-q", "--no-tags", "--depth=1", "origin"}, want...)...); err != nil {
		if ctx.Err() != nil {
			return err
		}
		logs.Line("[gradforge] fetching by commit id failed; fetching everything")
		// Pull request heads live outside refs/heads on GitHub.
		if err := git(src, "fetch", "-q", "--no-tags", "origin", "+refs/heads/*:refs/remotes/origin/*",
			"+refs/pull/*/head:refs/remotes/origin/pull/*"); err != nil {
			return err
		}
		if baseRev == "refs/remotes/origin/base" {
			baseRev = "refs/remotes/origin/" + strings.TrimPrefix(j.BaseRef, "refs/heads/")
		}
	}
	if err := git(src, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", j.HeadSHA); err != nil {
		return err
	}
	if baseRev != "" {
		if err := git(src, "worktree", "add", "-q", "--detach", base, baseRev); err != nil {
			return err
		}
	}
	return nil
}

// stepEnv is the environment of a job's steps. Trusted jobs inherit the runner's environment
// (CUDA and driver settings live there) minus the runner's own GRADFORGE_ settings; untrusted
// jobs get only what a build needs.
//
// Go's caches persist in cache between jobs, so a job that builds the forge at two commits
// takes seconds, not minutes: trusted jobs share the module and build caches; untrusted jobs
// read the module cache (its content is checked against go.sum) but build with a fresh
// cache in their own home, so they cannot poison what trusted jobs build.
func stepEnv(j *wireJob, ws, src, base, results, home, cache string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GRADFORGE_") || strings.HasPrefix(k, "GIT_") || k == "HOME" || k == "TMPDIR" {
			continue
		}
		if !j.Trusted && !(k == "PATH" || k == "LANG" || k == "LD_LIBRARY_PATH" || strings.HasPrefix(k, "CUDA") ||
			strings.HasPrefix(k, "NVIDIA") || k == "GOROOT") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "CI=true", "HOME="+home, "TMPDIR="+filepath.Join(ws, "tmp"),
		"GRADFORGE_JOB_ID="+strconv.FormatInt(j.ID, 10), "GRADFORGE_ATTEMPT="+strconv.Itoa(j.Attempt),
		"GRADFORGE_REPO="+j.Repo, "GRADFORGE_HEAD_SHA="+j.HeadSHA, "GRADFORGE_WORKSPACE="+ws,
		"GRADFORGE_SRC="+src, "GRADFORGE_RESULTS="+results)
	if j.Trusted {
		for k, dir := range map[string]string{"GOMODCACHE": "gomod", "GOCACHE": "gobuild"} {
			if os.Getenv(k) == "" {
				env = append(env, k+"="+filepath.Join(cache, dir))
			}
		}
	} else {
		env = append(env, "GOMODCACHE="+filepath.Join(cache, "gomod"), "GOCACHE="+filepath.Join(home, ".cache", "go-build"),
			"GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
	}
	if j.BaseRef != "" || j.BaseSHA != "" {
		env = append(env, "GRADFORGE_BASE_DIR="+base, "GRADFORGE_BASE_SHA="+j.BaseSHA, "GRADFORGE_BASE_REF="+j.BaseRef)
	}
	for k, v := range j.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// bwrapArgs wraps a step in bubblewrap: the host read-only, the hidden paths (the runner's
// home and configuration, which hold its credential) replaced by empty folders, the
// workspace writable, a private /tmp, /proc and /dev (plus NVIDIA device nodes), and every
// namespace unshared — including the network unless the job is trusted.
func bwrapArgs(bwrap, ws, src string, trusted bool, hide []string) []string {
	args := []string{bwrap, "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"}
	for _, h := range hide {
		if st, err := os.Stat(h); err == nil && st.IsDir() {
			args = append(args, "--tmpfs", h)
		}
	}
	args = append(args, "--bind", ws, ws, "--unshare-all", "--chdir", src)
	if trusted {
		args = append(args, "--share-net")
	}
	nv, _ := filepath.Glob("/dev/nvidia*")
	for _, d := range nv {
		args = append(args, "--dev-bind", d, d)
	}
	return append(args, "--")
}

func chownTree(root string, id int) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
}

// collect reads the regular files the steps left in the results folder, skipping links
// (an untrusted job must not make the runner read host files) and stopping at
// MaxResultBytes.
func collect(dir string, log *slog.Logger) map[string][]byte {
	files := map[string][]byte{}
	total := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, int64(MaxResultBytes-total+1)))
		if err != nil {
			return nil
		}
		if total+len(b) > MaxResultBytes {
			log.Warn("result files over the limit; dropping the rest", "file", rel, "limit", MaxResultBytes)
			return fs.SkipAll
		}
		total += len(b)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	return files
}
