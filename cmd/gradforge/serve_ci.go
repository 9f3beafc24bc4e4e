package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/ci"
	"github.com/gradforge/gradforge/web"
	"github.com/spf13/pflag"
)

// ciServices holds each running server's one ci.Service, so the bot part and the runners
// part reach the same value whichever starts first (as runnerQueues does).
var ciServices sync.Map // *Server → *ci.Service

// ciService returns the server's CI service, creating it on first use. It dispatches through
// the server's runner queue; its GitHub side is set by ciForBot.
func ciService(s *Server) *ci.Service {
	v, _ := ciServices.LoadOrStore(s, &ci.Service{DB: s.DB, Dispatch: ci.RunnerQueue{Q: runnerQueue(s)}, Log: s.Log})
	return v.(*ci.Service)
}

// ciForBot gives the bot its CI: the bot part calls it with its installation-client lookup
// (Bot.ClientFor), which ci uses for check runs, labels and its comment:
//
//	theBot.CI = ciForBot(s, theBot.ClientFor)
func ciForBot(s *Server, clientFor func(ctx context.Context, repo string) (*github.Client, error)) bot.CI {
	svc := ciService(s)
	svc.Checks = ci.GitHub{Client: clientFor}
	return botCI{svc}
}

// botCI adapts ci.Service to the interface the bot declares, translating its plain pull
// request facts and turning "needs /ok-to-test" into a reply for the person who asked.
type botCI struct{ svc *ci.Service }

// cloneURL is where runners fetch a repository from: --ci-clone-url with {repo} replaced
// (GitHub Enterprise: https://HOST/{repo}.git).
var cloneURL = "https://github.com/{repo}.git"

func ciPull(pr bot.PullRequest) ci.PullRequest {
	return ci.PullRequest{Repo: pr.Repo, Number: pr.Number, Author: pr.Author, HeadSHA: pr.HeadSHA, BaseSHA: pr.BaseSHA,
		BaseRef: pr.BaseRef, Trusted: pr.Trusted, CloneURL: strings.ReplaceAll(cloneURL, "{repo}", pr.Repo)}
}

func refuse(err error) error {
	if errors.Is(err, ci.ErrNeedsOkToTest) {
		return bot.Refusef("This pull request's code has not been approved to run yet: a maintainer must comment `/ok-to-test` first.")
	}
	return err
}

func (b botCI) OnPullRequest(ctx context.Context, pr bot.PullRequest) error {
	return b.svc.OnPullRequest(ctx, ciPull(pr))
}

// Retest reruns the failed gates; a pull request ci has not seen yet (opened before the App
// was installed) is taken in first, which starts every gate.
func (b botCI) Retest(ctx context.Context, pr bot.PullRequest, _ string) error {
	err := b.svc.Retest(ctx, pr.Repo, pr.Number)
	if errors.Is(err, ci.ErrUnknownPull) {
		if err := b.svc.OnPullRequest(ctx, ciPull(pr)); err != nil {
			return err
		}
		return refuse(b.svc.Retest(ctx, pr.Repo, pr.Number))
	}
	return refuse(err)
}

func (b botCI) OkToTest(ctx context.Context, pr bot.PullRequest, _ string) error {
	if err := b.svc.OnPullRequest(ctx, ciPull(pr)); err != nil { // records the current head first
		return err
	}
	return b.svc.OkToTest(ctx, pr.Repo, pr.Number)
}

// OnClosed cancels a closed pull request's gate jobs (for the bot to call on
// pull_request closed; reopening starts them again through OnPullRequest).
func (b botCI) OnClosed(ctx context.Context, pr bot.PullRequest) error {
	return b.svc.OnClosed(ctx, pr.Repo, pr.Number)
}

func (b botCI) OnCheckRequest(ctx context.Context, req bot.CheckRequest) error {
	switch {
	case req.CheckRunID != 0 && req.Action == "rerequested":
		return refuse(b.svc.OnCheckRerequested(ctx, req.Repo, req.CheckRunID))
	case req.CheckRunID == 0 && req.Action == "rerequested":
		return refuse(b.svc.OnCheckSuiteRerequested(ctx, req.Repo, req.HeadSHA))
	}
	return nil // "requested" suites come with the pull_request event that ci acts on
}

func init() {
	var cfg ci.Config
	registerServePart(servePart{
		name: "ci",
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&cfg.Budget, "ci-line-budget", ci.DefaultBudget, "most code lines the framework core may have (lines gate)")
			fs.Float64Var(&cfg.SpeedThreshold, "ci-speed-threshold", 0.05, "slowdown that fails the speed gate, as a fraction")
			fs.StringVar(&cfg.SpeedBench, "ci-speed-bench", ".", "benchmarks the speed gate runs (regexp, as go test -bench)")
			fs.IntVar(&cfg.SpeedPairs, "ci-speed-pairs", 10, "measured base/head pairs per benchmark (at least 6)")
			fs.StringVar(&cfg.GPULabel, "ci-gpu-label", "cuda", `runner label for the parity and speed jobs ("-" for none)`)
			fs.StringVar(&cfg.Device, "ci-device", "CUDA", "framework device the parity and speed jobs use")
			fs.BoolVar(&cfg.OkToTestEachPush, "ci-ok-to-test-each-push", false, "an untrusted author's every push needs a new /ok-to-test")
			fs.StringVar(&cfg.DetailsURL, "ci-details-url", "", "base URL of the web app for check runs' Details links (default: the server's URL)")
			fs.DurationVar(&cfg.Timeout, "ci-job-timeout", 30*time.Minute, "wall-clock limit of one gate's job")
			fs.StringVar(&cloneURL, "ci-clone-url", cloneURL, "where runners fetch repositories from; {repo} becomes owner/name")
			fs.StringVar(&cfg.Build, "ci-build", ci.DefaultBuild, `shell command a job runs in a checkout to build gradforge into "$GRADFORGE_OUT"`)
			fs.StringSliceVar(&cfg.Gates, "ci-gates", ci.Gates, "gates to run on pull requests: parity, lines, speed")
		},
		start: func(s *Server) error {
			if cfg.Budget <= 0 {
				return fmt.Errorf("--ci-line-budget must be positive, got %d", cfg.Budget)
			}
			for _, g := range cfg.Gates {
				if !slices.Contains(ci.Gates, g) {
					return fmt.Errorf("--ci-gates: unknown gate %q (parity, lines or speed)", g)
				}
			}
			if cfg.SpeedPairs < 6 {
				return fmt.Errorf("--ci-speed-pairs must be at least 6 for a 95 %% interval, got %d", cfg.SpeedPairs)
			}
			if _, err := regexp.Compile(cfg.SpeedBench); err != nil {
				return fmt.Errorf("--ci-speed-bench: %w", err)
			}
			if !strings.Contains(cloneURL, "{repo}") {
				return fmt.Errorf("--ci-clone-url %q must contain {repo}", cloneURL)
			}
			svc := ciService(s)
			svc.Config = cfg
			if svc.Config.DetailsURL == "" {
				svc.Config.DetailsURL = s.URL
			}
			runnerQueue(s).SetResults(svc.Results())
			// Show started jobs as in progress on GitHub.
			s.Workers.Add(1)
			go func() {
				defer s.Workers.Done()
				t := time.NewTicker(3 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-s.Ctx.Done():
						return
					case <-t.C:
						if _, err := svc.Progress(s.Ctx); err != nil && s.Ctx.Err() == nil {
							s.Log.Warn("ci: check-run progress", "err", err)
						}
					}
				}
			}()
			return nil
		},
	})
}

// webCIFor gives the web app its read side of CI: the web part sets
//
//	src.CI = webCIFor(s)
func webCIFor(s *Server) web.CI { return webCI{ciService(s)} }

// webCI adapts ci's runs and histories to the web app's types.
type webCI struct{ svc *ci.Service }

func (w webCI) Runs(ctx context.Context, repo string, limit int) ([]web.Run, error) {
	heads, err := w.svc.Heads(ctx, repo, limit)
	if err != nil {
		return nil, err
	}
	out := make([]web.Run, len(heads))
	for i, h := range heads {
		out[i] = webRun(h)
	}
	return out, nil
}

func (w webCI) Run(ctx context.Context, id int64) (web.Run, error) {
	h, err := w.svc.Head(ctx, id)
	if err != nil {
		return web.Run{}, err
	}
	return webRun(h), nil
}

func webRun(h ci.Head) web.Run {
	r := web.Run{ID: h.ID, Repo: h.Repo, PR: h.Number, SHA: h.SHA, Title: fmt.Sprintf("%s#%d at %.7s", h.Repo, h.Number, h.SHA),
		Status: ci.Completed, CreatedAt: h.CreatedAt}
	for _, run := range h.Runs {
		c := web.Check{Name: run.Gate, Status: run.Status, Conclusion: run.Conclusion, Summary: run.Title}
		if run.Status == "waiting" {
			c.Status = ci.Completed
		}
		if run.Status == ci.Queued && r.Status == ci.Completed {
			r.Status = ci.Queued
		}
		if run.Status == ci.InProgress {
			r.Status = ci.InProgress
		}
		if cols, rows, err := run.Table(); err == nil && cols != nil {
			c.Tables = []web.Table{{Title: run.Gate, Columns: cols, Rows: rows}}
		}
		r.Checks = append(r.Checks, c)
		if run.JobID != 0 {
			r.Jobs = append(r.Jobs, web.Job{ID: run.JobID, Name: run.Gate, Status: jobStatus(run)})
		}
	}
	return r
}

func jobStatus(r ci.Run) string {
	switch {
	case r.Status == ci.InProgress:
		return "running"
	case r.Status != ci.Completed:
		return "queued"
	case r.Conclusion == ci.Success || r.Conclusion == ci.Neutral:
		return "passed"
	case r.Conclusion == ci.Cancelled:
		return "cancelled"
	}
	return "failed"
}

func (w webCI) SpeedHistory(ctx context.Context, repo string) ([]web.Series, error) {
	h, err := w.svc.SpeedHistory(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := make([]web.Series, 0, len(h))
	for name, pts := range h {
		out = append(out, web.Series{Name: name, Unit: "ns/op", Points: webPoints(pts)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (w webCI) LineHistory(ctx context.Context, repo string) (web.Series, error) {
	pts, err := w.svc.LineHistory(ctx, repo)
	if err != nil {
		return web.Series{}, err
	}
	return web.Series{Name: "framework core", Unit: "lines", Points: webPoints(pts)}, nil
}

func webPoints(pts []ci.Point) []web.Point {
	out := make([]web.Point, len(pts))
	for i, p := range pts {
		out[i] = web.Point{SHA: p.SHA, At: p.At, Value: p.Value}
	}
	return out
}
