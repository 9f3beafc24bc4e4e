package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/ci"
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

func ciPull(pr bot.PullRequest) ci.PullRequest {
	return ci.PullRequest{Repo: pr.Repo, Number: pr.Number, Author: pr.Author, HeadSHA: pr.HeadSHA, BaseSHA: pr.BaseSHA,
		BaseRef: pr.BaseRef, Trusted: pr.Trusted, CloneURL: "https://github.com/" + pr.Repo + ".git"}
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
			fs.StringVar(&cfg.GPULabel, "ci-gpu-label", "cuda", `runner label for the parity and speed jobs ("-" for none)`)
			fs.StringVar(&cfg.Device, "ci-device", "CUDA", "framework device the parity and speed jobs use")
			fs.BoolVar(&cfg.OkToTestEachPush, "ci-ok-to-test-each-push", false, "an untrusted author's every push needs a new /ok-to-test")
			fs.StringVar(&cfg.DetailsURL, "ci-details-url", "", "base URL of the web app for check runs' Details links (default: the server's URL)")
			fs.DurationVar(&cfg.Timeout, "ci-job-timeout", 30*time.Minute, "wall-clock limit of one gate's job")
		},
		start: func(s *Server) error {
			if cfg.Budget <= 0 {
				return fmt.Errorf("--ci-line-budget must be positive, got %d", cfg.Budget)
			}
			svc := ciService(s)
			svc.Config = cfg
			if svc.Config.DetailsURL == "" {
				svc.Config.DetailsURL = s.URL
			}
			runnerQueue(s).SetResults(svc.Results())
			return nil
		},
	})
}
