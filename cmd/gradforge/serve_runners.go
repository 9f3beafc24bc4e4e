package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/runners"
	"github.com/spf13/pflag"
)

// runnerQueues holds the one job queue of each running server, so other parts (ci enqueues
// jobs and receives results) get the same Queue whichever part starts first.
var runnerQueues sync.Map // *Server → *runners.Queue

// runnerQueue returns the server's runner job queue, creating it on first use. ci wires
// itself with runnerQueue(s).SetResults(...) and enqueues through the same value.
func runnerQueue(s *Server) *runners.Queue {
	q, _ := runnerQueues.LoadOrStore(s, runners.NewQueue(s.DB))
	return q.(*runners.Queue)
}

func init() {
	var lease, heartbeat, hold, retention time.Duration
	var attempts int
	var maxLog int64
	registerServePart(servePart{
		name: "runners",
		flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&lease, "runner-lease", 2*time.Minute, "how long a runner holds a job without a heartbeat before it is requeued")
			fs.DurationVar(&heartbeat, "runner-heartbeat", 2*time.Second, "how often runners renew leases (and so how fast cancels reach them)")
			fs.DurationVar(&hold, "runner-hold", 30*time.Second, "longest a runner's long poll for a job is held open")
			fs.IntVar(&attempts, "runner-max-attempts", 3, "leases a job may have before it concludes as an infrastructure failure")
			fs.Int64Var(&maxLog, "runner-max-log-bytes", 8<<20, "log bytes kept per job attempt; the rest is dropped with a note")
			fs.DurationVar(&retention, "runner-log-retention", 30*24*time.Hour, "how long finished jobs' logs and result files are kept (0: forever)")
		},
		start: func(s *Server) error {
			q := runnerQueue(s)
			if lease <= 0 || heartbeat <= 0 || heartbeat >= lease || hold <= 0 || attempts < 1 || maxLog < 1024 || retention < 0 {
				return fmt.Errorf("runner settings: need 0 < --runner-heartbeat (%v) < --runner-lease (%v), --runner-hold > 0 (%v), "+
					"--runner-max-attempts ≥ 1 (%d), --runner-max-log-bytes ≥ 1024 (%d), --runner-log-retention ≥ 0 (%v)",
					heartbeat, lease, hold, attempts, maxLog, retention)
			}
			q.Lease, q.HeartbeatEvery, q.Hold, q.MaxAttempts, q.MaxLogBytes, q.Retention, q.Log = lease, heartbeat, hold, attempts, maxLog, retention, s.Log
			api := &runners.API{Queue: q, Registry: runners.NewRegistry(s.DB)}
			api.Routes(s.Router)
			// Reap lapsed leases at a fraction of the lease so a dead runner's job waits at
			// most about one lease before it runs again.
			every := min(max(lease/4, 100*time.Millisecond), 5*time.Second)
			s.Workers.Add(2)
			go func() {
				defer s.Workers.Done()
				q.Run(s.Ctx, every)
			}()
			// serve shuts down on SIGINT/SIGTERM by waiting for in-flight requests; runners'
			// held polls would keep it waiting for their whole hold, so end them on the same
			// signals.
			stop := make(chan os.Signal, 1)
			signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
			go func() {
				defer s.Workers.Done()
				defer signal.Stop(stop)
				select {
				case <-stop:
					q.Stop()
				case <-s.Ctx.Done():
				}
			}()
			return nil
		},
	})
}

// githubCloneTokens gives each runner job a fresh GitHub installation token that can only
// read the job's repository (and expires within the hour), so a runner never holds more than
// one repository's read access, and only while it could be fetching. The bot part wires it
// when it runs as a GitHub App:
//
//	runnerQueue(s).SetCloneCredentials(githubCloneTokens{App: app.AppClient, InstallationOf: b.InstallationOf})
type githubCloneTokens struct {
	App            func() (*github.Client, error)
	InstallationOf func(ctx context.Context, repo string) (int64, error)
}

// CloneToken mints the token; jobs without a repository (queued by hand) fetch anonymously.
func (g githubCloneTokens) CloneToken(ctx context.Context, job runners.Job) (string, error) {
	owner, name, ok := strings.Cut(job.Spec.Repo, "/")
	if !ok || owner == "" || name == "" {
		return "", nil
	}
	inst, err := g.InstallationOf(ctx, job.Spec.Repo)
	if err != nil {
		return "", err
	}
	c, err := g.App()
	if err != nil {
		return "", fmt.Errorf("clone token for %s: %w", job.Spec.Repo, err)
	}
	tok, _, err := c.Apps.CreateInstallationToken(ctx, inst, &github.InstallationTokenOptions{
		Repositories: []string{name},
		Permissions:  &github.InstallationPermissions{Contents: github.String("read")},
	})
	if err != nil {
		return "", fmt.Errorf("clone token for %s (installation %d): %w", job.Spec.Repo, inst, err)
	}
	return tok.GetToken(), nil
}
