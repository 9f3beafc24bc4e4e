package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// flashes are the confirmations a console action redirects to (?done=code). Only these fixed
// texts can appear, so a crafted link cannot put words in the site's mouth.
var flashes = map[string]string{
	"approved":  "Payout approved.",
	"declined":  "Payout declined.",
	"accepted":  "Proposal accepted; it is now a bounty.",
	"rejected":  "Proposal declined.",
	"settings":  "Settings saved.",
	"candidate": "Marked as candidate.",
	"offer":     "Offer recorded.",
	"revoked":   "Runner revoked.",
}

// requireMaintainerAny lets through people who maintain at least one repository.
func (a *App) requireMaintainerAny(c *gin.Context) bool {
	if !a.maintainsAny(c.Request.Context(), sessionOf(c)) {
		a.fail(c, http.StatusForbidden, "The console is for maintainers of this forge's repositories.")
		return false
	}
	return true
}

// requireRepoMaintainer checks the person maintains the repository in the path and returns it.
func (a *App) requireRepoMaintainer(c *gin.Context) (string, bool) {
	repo, err := repoParam(c)
	if err != nil {
		a.failErr(c, "repository", err)
		return "", false
	}
	if !a.maintains(c.Request.Context(), sessionOf(c), repo) {
		a.fail(c, http.StatusForbidden, "Only maintainers of "+repo+" may use its console.")
		return "", false
	}
	if a.console == nil {
		a.unavailable(c, "bounties")
		return "", false
	}
	return repo, true
}

func (a *App) consoleHome(c *gin.Context) {
	if !a.requireMaintainerAny(c) {
		return
	}
	a.render(c, http.StatusOK, "console.html", "Console", "console", a.maintainedRepos(c.Request.Context(), sessionOf(c)))
}

type consoleRepoData struct {
	Repo      string
	Payouts   []Payout
	Proposals []Proposal
	Settings  *RepoSettings
}

func (a *App) consoleRepo(c *gin.Context) {
	repo, ok := a.requireRepoMaintainer(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d := consoleRepoData{Repo: repo}
	var err error
	if d.Payouts, err = a.console.AwaitingPayouts(ctx, repo); err != nil {
		a.failErr(c, "payouts", err)
		return
	}
	if d.Proposals, err = a.console.Proposals(ctx, repo); err != nil {
		a.failErr(c, "proposals", err)
		return
	}
	if a.settings != nil {
		s, err := a.settings.Load(ctx, repo)
		if err != nil {
			a.failErr(c, "settings", err)
			return
		}
		s.Repo = repo
		d.Settings = &s
	}
	a.render(c, http.StatusOK, "console_repo.html", "Console · "+repo, "console", d)
}

// done redirects after a console action (post/redirect/get), with a fixed confirmation.
func done(c *gin.Context, to, code string) {
	c.Redirect(http.StatusSeeOther, to+"?done="+code)
}

// reason reads the required reason of a decline.
func reason(c *gin.Context) (string, error) {
	r := strings.TrimSpace(c.PostForm("reason"))
	if r == "" {
		return "", BadInput("Say why: a decline needs a reason, which the contributor will read.")
	}
	if len(r) > 1000 {
		return "", BadInput("The reason is too long (at most 1,000 characters).")
	}
	return r, nil
}

func (a *App) approvePayout(c *gin.Context) {
	a.repoAction(c, "payout", "approved", func(repo string, id int64, by string) error {
		return a.console.ApprovePayout(c.Request.Context(), repo, id, by)
	})
}

func (a *App) declinePayout(c *gin.Context) {
	a.repoAction(c, "payout", "declined", func(repo string, id int64, by string) error {
		r, err := reason(c)
		if err != nil {
			return err
		}
		return a.console.DeclinePayout(c.Request.Context(), repo, id, by, r)
	})
}

func (a *App) acceptProposal(c *gin.Context) {
	a.repoAction(c, "proposal", "accepted", func(repo string, id int64, by string) error {
		return a.console.AcceptProposal(c.Request.Context(), repo, id, by)
	})
}

func (a *App) declineProposal(c *gin.Context) {
	a.repoAction(c, "proposal", "rejected", func(repo string, id int64, by string) error {
		r, err := reason(c)
		if err != nil {
			return err
		}
		return a.console.DeclineProposal(c.Request.Context(), repo, id, by, r)
	})
}

// repoAction is the shape of every per-repository console action: maintainer check, id
// from the path, the action, then back to the repository's console.
func (a *App) repoAction(c *gin.Context, what, code string, act func(repo string, id int64, by string) error) {
	repo, ok := a.requireRepoMaintainer(c)
	if !ok {
		return
	}
	id, err := intParam(c, "id")
	if err == nil {
		err = act(repo, id, sessionOf(c).Login)
	}
	if err != nil {
		a.failErr(c, what, err)
		return
	}
	a.log.InfoContext(c.Request.Context(), "console action", "action", code, "what", what, "repo", repo, "id", id, "by", sessionOf(c).Login)
	done(c, "/console/"+repo, code)
}

func (a *App) saveSettings(c *gin.Context) {
	repo, ok := a.requireRepoMaintainer(c)
	if !ok {
		return
	}
	if a.settings == nil {
		a.unavailable(c, "settings")
		return
	}
	s, err := parseSettings(c, repo)
	if err == nil {
		err = a.settings.Save(c.Request.Context(), s, sessionOf(c).Login)
	}
	if err != nil {
		a.failErr(c, "settings", err)
		return
	}
	done(c, "/console/"+repo, "settings")
}

func parseSettings(c *gin.Context, repo string) (RepoSettings, error) {
	s := RepoSettings{Repo: repo, AutoApprove: c.PostForm("auto_approve") == "1", FirstPRCanClaim: c.PostForm("first_pr_can_claim") == "1"}
	for _, f := range []struct {
		name, what string
		into       *int
		lo, hi     int
	}{
		{"max_active_attempts", "Active attempts per contributor", &s.MaxActiveAttempts, 0, 100},
		{"min_account_age_days", "Minimum account age", &s.MinAccountAgeDays, 0, 3650},
		{"attempt_days", "Attempt lock length", &s.AttemptDays, 1, 365},
		{"bounty_days", "Bounty lifetime", &s.BountyDays, 0, 3650},
	} {
		v, err := strconv.Atoi(strings.TrimSpace(c.PostForm(f.name)))
		if err != nil || v < f.lo || v > f.hi {
			return s, BadInput("%s must be a whole number from %d to %d.", f.what, f.lo, f.hi)
		}
		*f.into = v
	}
	return s, nil
}

// Stages are the hiring pipeline's columns, in order, as the bounties package names them.
var Stages = []string{"contributor", "hunter", "proposer", "candidate", "hired"}

// stageName is how a stage reads to people.
func stageName(s string) string {
	if s == "hunter" {
		return "bounty hunter"
	}
	return s
}

type stageColumn struct {
	ID, Name string
	People   []PipelineEntry
}

type pipelineData struct{ Stages []stageColumn }

func (a *App) pipelinePage(c *gin.Context) {
	if !a.requireMaintainerAny(c) {
		return
	}
	if a.console == nil {
		a.unavailable(c, "bounties")
		return
	}
	people, err := a.console.Pipeline(c.Request.Context())
	if err != nil {
		a.failErr(c, "pipeline", err)
		return
	}
	var d pipelineData
	for _, st := range Stages {
		col := stageColumn{ID: st, Name: stageName(st)}
		for _, p := range people {
			if p.Stage == st {
				col.People = append(col.People, p)
			}
		}
		d.Stages = append(d.Stages, col)
	}
	a.render(c, http.StatusOK, "pipeline.html", "Hiring pipeline", "console", d)
}

func (a *App) pipelineLogin(c *gin.Context) (string, bool) {
	if !a.requireMaintainerAny(c) {
		return "", false
	}
	if a.console == nil {
		a.unavailable(c, "bounties")
		return "", false
	}
	login := c.Param("login")
	if !loginRe.MatchString(login) {
		a.failErr(c, "person", BadInput("%q is not a GitHub login.", login))
		return "", false
	}
	return login, true
}

func (a *App) markCandidate(c *gin.Context) {
	login, ok := a.pipelineLogin(c)
	if !ok {
		return
	}
	if err := a.console.MarkCandidate(c.Request.Context(), login, sessionOf(c).Login); err != nil {
		a.failErr(c, "person", err)
		return
	}
	done(c, "/console/pipeline", "candidate")
}

func (a *App) recordOffer(c *gin.Context) {
	login, ok := a.pipelineLogin(c)
	if !ok {
		return
	}
	o, err := parseOffer(c, login)
	if err == nil {
		err = a.console.RecordOffer(c.Request.Context(), o)
	}
	if err != nil {
		a.failErr(c, "offer", err)
		return
	}
	done(c, "/console/pipeline", "offer")
}

func parseOffer(c *gin.Context, login string) (Offer, error) {
	o := Offer{Login: login, RecordedBy: sessionOf(c).Login, RecordedAt: time.Now().UTC()}
	var err error
	if o.StipendCents, err = parseDollars(c.PostForm("stipend"), "The stipend"); err != nil || o.StipendCents <= 0 {
		return o, BadInput("The stipend must be a positive amount in dollars per month.")
	}
	if o.EquityBps, err = strconv.Atoi(strings.TrimSpace(c.PostForm("equity_bps"))); err != nil || o.EquityBps < 0 || o.EquityBps > 10000 {
		return o, BadInput("Equity is in basis points, from 0 to 10000 (100 %%).")
	}
	if o.VestingStart, err = time.Parse("2006-01-02", c.PostForm("vesting_start")); err != nil {
		return o, BadInput("The vesting start must be a date like 2027-01-31.")
	}
	if o.CliffMonths, err = strconv.Atoi(strings.TrimSpace(c.PostForm("cliff_months"))); err != nil || o.CliffMonths < 0 || o.CliffMonths > 120 {
		return o, BadInput("The cliff must be a whole number of months from 0 to 120.")
	}
	return o, nil
}

type consoleRunnersData struct {
	Runners []Runner
	Token   string
	Expires time.Time
	URL     string
}

func (a *App) consoleRunners(c *gin.Context) {
	a.showConsoleRunners(c, "", time.Time{})
}

func (a *App) showConsoleRunners(c *gin.Context, token string, expires time.Time) {
	if !a.requireMaintainerAny(c) {
		return
	}
	if a.runners == nil {
		a.unavailable(c, "runners")
		return
	}
	rs, err := a.runners.Registered(c.Request.Context())
	if err != nil {
		a.failErr(c, "runners", err)
		return
	}
	a.render(c, http.StatusOK, "console_runners.html", "Runners · console", "console", consoleRunnersData{Runners: rs, Token: token, Expires: expires, URL: a.cfg.BaseURL})
}

// createRunnerToken makes a one-time registration token and shows it once, in the answer
// to the POST itself (never in a URL, so it stays out of logs and history).
func (a *App) createRunnerToken(c *gin.Context) {
	if !a.requireMaintainerAny(c) {
		return
	}
	if a.runners == nil {
		a.unavailable(c, "runners")
		return
	}
	ttl, err := time.ParseDuration(c.PostForm("ttl"))
	if err != nil || ttl < time.Minute || ttl > 30*24*time.Hour {
		a.failErr(c, "token", BadInput("Choose how long the token stays valid: between a minute and 30 days."))
		return
	}
	tok, exp, err := a.runners.CreateToken(c.Request.Context(), sessionOf(c).Login, ttl)
	if err != nil {
		a.failErr(c, "registration token", err)
		return
	}
	a.log.InfoContext(c.Request.Context(), "runner registration token created", "by", sessionOf(c).Login, "expires", exp)
	a.showConsoleRunners(c, tok, exp)
}

func (a *App) revokeRunner(c *gin.Context) {
	if !a.requireMaintainerAny(c) {
		return
	}
	if a.runners == nil {
		a.unavailable(c, "runners")
		return
	}
	id, err := intParam(c, "id")
	if err == nil {
		err = a.runners.Revoke(c.Request.Context(), id, sessionOf(c).Login)
	}
	if err != nil {
		a.failErr(c, "runner", err)
		return
	}
	done(c, "/console/runners", "revoked")
}
