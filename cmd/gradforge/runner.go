package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/runners"
	"github.com/spf13/cobra"
)

// runnerConfig is what `gradforge runner register` saves and `gradforge runner run` reads.
// It holds the runner's credential, so it is written with mode 0600.
type runnerConfig struct {
	URL            string   `json:"url"`
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	Labels         []string `json:"labels"`
	AllowUntrusted bool     `json:"allow_untrusted"`
	Credential     string   `json:"credential"`
}

func defaultRunnerConfig() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "gradforge", "runner.json")
}

// writeRunnerConfig writes the config atomically: a 0600 temporary file beside it, renamed
// over it, so a crash never leaves a half-written credential or a readable one.
func writeRunnerConfig(path string, c runnerConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create config folder: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".runner-*.json")
	if err != nil {
		return fmt.Errorf("write runner config: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write runner config: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write runner config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write runner config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write runner config: %w", err)
	}
	return nil
}

func readRunnerConfig(path string) (runnerConfig, error) {
	var c runnerConfig
	st, err := os.Stat(path)
	if err != nil {
		return c, fmt.Errorf("read runner config (run `gradforge runner register` first): %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return c, fmt.Errorf("runner config %s is readable by others (mode %v); it holds a credential: chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read runner config: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parse runner config %s: %w", path, err)
	}
	if c.URL == "" || c.Credential == "" {
		return c, fmt.Errorf("runner config %s has no url or credential; register again", path)
	}
	return c, nil
}

func init() {
	register(func() *cobra.Command {
		root := &cobra.Command{
			Use:   "runner",
			Short: "Run a self-hosted runner, or manage runners and registration tokens",
			Long: `A runner polls a forge for jobs whose labels it has and runs them. Attach a machine in two
steps: a maintainer creates a one-time token (gradforge runner token create, or the web
console), then on the machine:

  gradforge runner register --url https://forge.example --token gfreg_… --labels cuda,h200 --name gpu1
  gradforge runner run`,
		}
		root.AddCommand(runnerRegisterCmd(), runnerRunCmd(), runnerTokenCmd(), runnerListCmd(), runnerRevokeCmd(),
			runnerEnqueueCmd(), runnerJobCmd(), runnerCancelCmd())
		return root
	})
}

func runnerRegisterCmd() *cobra.Command {
	var url, token, labels, name, config string
	var allowUntrusted bool
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Trade a one-time registration token for this runner's credential",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" || token == "" {
				return errors.New("--url and --token are required")
			}
			if name == "" {
				name, _ = os.Hostname()
			}
			ls, err := runners.ParseLabels(labels)
			if err != nil {
				return fmt.Errorf("--labels: %w", err)
			}
			info := runners.Info{Name: name, Labels: ls, Version: runnerVersion(), GPU: runners.DetectGPU(cmd.Context()), AllowUntrusted: allowUntrusted}
			id, cred, err := runners.Register(cmd.Context(), url, token, info)
			if err != nil {
				return err
			}
			if err := writeRunnerConfig(config, runnerConfig{URL: url, ID: id, Name: name, Labels: ls, AllowUntrusted: allowUntrusted, Credential: cred}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered runner %d %q with labels [%s]; credential saved in %s\n", id, name, strings.Join(ls, ","), config)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the forge's base URL")
	cmd.Flags().StringVar(&token, "token", "", "one-time registration token from a maintainer")
	cmd.Flags().StringVar(&labels, "labels", "", "comma-separated labels this runner offers, e.g. cuda,h200")
	cmd.Flags().StringVar(&name, "name", "", "runner name shown in the web app (default: host name)")
	cmd.Flags().StringVar(&config, "config", defaultRunnerConfig(), "where to save the runner's credential (mode 0600)")
	cmd.Flags().BoolVar(&allowUntrusted, "allow-untrusted", false, "accept jobs with code from untrusted authors (run sandboxed)")
	return envHelp(cmd)
}

func runnerRunCmd() *cobra.Command {
	var config, workDir, sandbox, labels, memory string
	var grace time.Duration
	var lim runners.Limits
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Poll the forge for jobs and run them until stopped",
		Long: `run polls the forge for jobs, one at a time. SIGINT or SIGTERM stops it; a job it was running
is killed and handed back to the queue for another runner.

--job-memory, --job-cpus and --job-pids cap each job. They are enforced with a cgroup per job
when the runner can create one (as root, or in a cgroup delegated to it, e.g. a systemd
service with Delegate=yes; cgroup v2 or v1). Without one, CPUs are capped by CPU affinity
(taskset) and processes by RLIMIT_NPROC (prlimit), and memory is not capped (RLIMIT_AS would
break CUDA). The runner says at start which limits are enforced and how. A job that goes past
its memory limit is OOM-killed and fails, saying so in its log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := readRunnerConfig(config)
			if err != nil {
				return err
			}
			if memory != "" {
				if lim.Memory, err = runners.ParseSize(memory); err != nil {
					return fmt.Errorf("--job-memory: %w", err)
				}
			}
			if lim.CPUs < 0 || lim.CPUs > 0 && lim.CPUs < 0.01 || lim.PIDs < 0 {
				return errors.New("--job-cpus must be 0 (no cap) or at least 0.01, and --job-pids not negative")
			}
			ls := cfg.Labels
			if labels != "" {
				if ls, err = runners.ParseLabels(labels); err != nil {
					return fmt.Errorf("--labels: %w", err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a := &runners.Agent{
				Client:    &runners.Client{URL: cfg.URL, Credential: cfg.Credential},
				Info:      runners.Info{Name: cfg.Name, Labels: ls, Version: runnerVersion(), GPU: runners.DetectGPU(ctx), AllowUntrusted: cfg.AllowUntrusted},
				WorkDir:   workDir,
				Hide:      []string{filepath.Dir(config)},
				Sandbox:   sandbox,
				KillGrace: grace,
				Limits:    lim,
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&config, "config", defaultRunnerConfig(), "the runner config written by register")
	cmd.Flags().StringVar(&workDir, "work-dir", "", "folder for per-job workspaces (default /var/lib/gradforge-runner as root, else the user cache folder)")
	cmd.Flags().StringVar(&sandbox, "sandbox", "auto", "isolation of untrusted jobs: auto (bubblewrap when installed), bwrap (required) or none")
	cmd.Flags().StringVar(&labels, "labels", "", "override the registered labels")
	cmd.Flags().DurationVar(&grace, "kill-grace", 10*time.Second, "time between SIGTERM and SIGKILL for cancelled or timed-out jobs")
	cmd.Flags().StringVar(&memory, "job-memory", "", "most memory each job may use, e.g. 32G (OOM-killed past it; default: no cap)")
	cmd.Flags().Float64Var(&lim.CPUs, "job-cpus", 0, "most CPU cores each job may use, fractions allowed (default: no cap)")
	cmd.Flags().IntVar(&lim.PIDs, "job-pids", 0, "most processes and threads each job may have (default: no cap)")
	return envHelp(cmd)
}

// runnerVersion is what a runner reports as its version: the release, or for a development
// build the commit it was built from, so owners can tell which runners need an update.
func runnerVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

// parseID reads a job or runner id given on the command line.
func parseID(what, arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s id %q is not a positive number", what, arg)
	}
	return id, nil
}

func openDB(cmd *cobra.Command, dsn string) (context.Context, func(), *runners.Registry, error) {
	ctx, done, _, reg, err := openQueue(cmd, dsn)
	return ctx, done, reg, err
}

func openQueue(cmd *cobra.Command, dsn string) (context.Context, func(), *runners.Queue, *runners.Registry, error) {
	ctx := cmd.Context()
	db, err := migrations.Open(ctx, dsn)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return ctx, func() { migrations.Close(db) }, runners.NewQueue(db), runners.NewRegistry(db), nil
}

func runnerTokenCmd() *cobra.Command {
	tok := &cobra.Command{Use: "token", Short: "Manage runner registration tokens"}
	var dsn, note string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a one-time registration token and print it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, done, reg, err := openDB(cmd, dsn)
			if err != nil {
				return err
			}
			defer done()
			by := os.Getenv("USER")
			t, exp, err := reg.CreateToken(ctx, ttl, note, "cli:"+by)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t)
			fmt.Fprintf(cmd.ErrOrStderr(), "one-time token, expires %s\n", exp.Format(time.RFC3339))
			return nil
		},
	}
	create.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token may be used")
	create.Flags().StringVar(&note, "note", "", "what the token is for, shown to maintainers")
	tok.AddCommand(envHelp(create))
	return tok
}

func runnerListCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered runners: labels, GPU, busy or idle, last seen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, done, reg, err := openDB(cmd, dsn)
			if err != nil {
				return err
			}
			defer done()
			list, err := reg.List(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tLABELS\tVERSION\tGPU\tSTATE\tLAST SEEN")
			now := time.Now()
			for _, r := range list {
				state := "offline"
				switch {
				case r.Revoked:
					state = "revoked"
				case r.Busy:
					state = fmt.Sprintf("busy (job %d)", r.JobID)
				case r.Online(now):
					state = "idle"
				}
				seen := "never"
				if !r.LastSeen.IsZero() {
					seen = now.Sub(r.LastSeen).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, strings.Join(r.Labels, ","), r.Version, r.GPU, state, seen)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
	return envHelp(cmd)
}

func runnerRevokeCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "revoke RUNNER_ID",
		Short: "Revoke a runner's credential",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("runner", args[0])
			if err != nil {
				return err
			}
			ctx, done, reg, err := openDB(cmd, dsn)
			if err != nil {
				return err
			}
			defer done()
			if err := reg.Revoke(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked runner %d\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
	return envHelp(cmd)
}

func runnerEnqueueCmd() *cobra.Command {
	var dsn, cloneURL, sha, baseRef, baseSHA, labels, key, repo string
	var steps, env []string
	var timeout time.Duration
	var untrusted bool
	cmd := &cobra.Command{
		Use:   "enqueue --clone-url URL --sha SHA --step 'NAME=COMMAND' ...",
		Short: "Queue a job by hand (ci queues its own); prints the job id",
		Long: `enqueue queues a job straight into the forge's database, for trying runners out and for
operators. The running server hands it to a runner within about a second. Follow it with
gradforge runner job ID --follow.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := runners.Spec{Key: key, Repo: repo, CloneURL: cloneURL, HeadSHA: sha, BaseRef: baseRef, BaseSHA: baseSHA,
				Timeout: timeout, Trusted: !untrusted, Env: map[string]string{}}
			var err error
			if spec.Labels, err = runners.ParseLabels(labels); err != nil {
				return fmt.Errorf("--labels: %w", err)
			}
			for i, st := range steps {
				name, run, ok := strings.Cut(st, "=")
				if !ok {
					name, run = fmt.Sprintf("step %d", i+1), st
				}
				spec.Steps = append(spec.Steps, runners.Step{Name: name, Run: run})
			}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--env %q: want NAME=VALUE", kv)
				}
				spec.Env[k] = v
			}
			ctx, done, q, _, err := openQueue(cmd, dsn)
			if err != nil {
				return err
			}
			defer done()
			j, err := q.Enqueue(ctx, spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), j.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
	f.StringVar(&cloneURL, "clone-url", "", "repository to fetch (https URL, or a path on the runner's machine)")
	f.StringVar(&sha, "sha", "", "full commit id to run at")
	f.StringVar(&baseRef, "base-ref", "", "branch to check out beside it in $GRADFORGE_BASE_DIR")
	f.StringVar(&baseSHA, "base-sha", "", "commit to check out beside it in $GRADFORGE_BASE_DIR")
	f.StringVar(&labels, "labels", "", "labels a runner needs, e.g. cuda")
	f.StringVar(&key, "key", "", "dedupe key: a second enqueue with the same key returns the first job")
	f.StringVar(&repo, "repo", "", "owner/name, for display")
	f.StringArrayVar(&steps, "step", nil, "a step, NAME=SHELL COMMAND (repeatable; run in order)")
	f.StringArrayVar(&env, "env", nil, "NAME=VALUE for every step (repeatable)")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "wall-clock limit of the job")
	f.BoolVar(&untrusted, "untrusted", false, "mark the code untrusted: only runners that allow it take it, sandboxed")
	return envHelp(cmd)
}

func runnerJobCmd() *cobra.Command {
	var dsn string
	var follow bool
	cmd := &cobra.Command{
		Use:   "job ID",
		Short: "Show a job: its state, log and result files (--follow streams until it ends)",
		Long: `job prints a job's log as stored so far, then its state. With --follow it keeps printing new
log chunks until the job finishes, and exits 1 unless the job succeeded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("job", args[0])
			if err != nil {
				return err
			}
			ctx, done, q, _, err := openQueue(cmd, dsn)
			if err != nil {
				return err
			}
			defer done()
			out := cmd.OutOrStdout()
			attempt, seq := 0, -1
			for {
				j, err := q.Get(ctx, id)
				if err != nil {
					return err
				}
				if j.Attempt != attempt && j.Attempt > 0 {
					if attempt != 0 {
						fmt.Fprintf(out, "\n[gradforge] attempt %d\n", j.Attempt)
					}
					attempt, seq = j.Attempt, -1
				}
				if attempt > 0 {
					chunks, err := q.Logs(ctx, id, attempt, seq)
					if err != nil {
						return err
					}
					for _, c := range chunks {
						out.Write(c.Data)
						seq = c.Seq
					}
				}
				if j.State == runners.Finished || !follow {
					fmt.Fprintf(out, "job %d: %s", j.ID, j.State)
					if j.State == runners.Finished {
						fmt.Fprintf(out, " %s (exit %d) after %d attempt(s): %s", j.Conclusion, j.ExitCode, j.Attempt, j.Message)
						if res, err := q.Result(ctx, id); err == nil && len(res.Files) > 0 {
							var names []string
							for n, b := range res.Files {
								names = append(names, fmt.Sprintf("%s (%d bytes)", n, len(b)))
							}
							fmt.Fprintf(out, "\nresult files: %s", strings.Join(names, ", "))
						}
					}
					fmt.Fprintln(out)
					if follow && j.Conclusion != runners.Success {
						return fmt.Errorf("job %d %s", j.ID, j.Conclusion)
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(300 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the log until the job finishes")
	return envHelp(cmd)
}

func runnerCancelCmd() *cobra.Command {
	var dsn, reason string
	cmd := &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a job; a running one is killed by its runner within seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("job", args[0])
			if err != nil {
				return err
			}
			ctx, done, q, _, err := openQueue(cmd, dsn)
			if err != nil {
				return err
			}
			defer done()
			if err := q.Cancel(ctx, id, reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancelled job %d\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "db", defaultDB, "database: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")
	cmd.Flags().StringVar(&reason, "reason", "cancelled from the command line", "why, shown in the job and its check run")
	return envHelp(cmd)
}
