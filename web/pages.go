package web

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// boardPageSize is how many bounties one board page shows; the board stays fast however many
// bounties there are because only one page is ever drawn.
const boardPageSize = 50

var (
	boardStatuses = []string{"open", "claimed", "paid", "cancelled", "expired", ""}
	boardSorts    = []struct{ Value, Label string }{{"amount", "largest amount first"}, {"new", "newest first"}, {"age", "oldest first"}}
)

// parseFilter reads the board's filters from the query string. The status defaults to open,
// because that is what people come to the board for; status= (empty) means any status.
func parseFilter(q url.Values) (BountyFilter, error) {
	f := BountyFilter{
		Repo:   strings.TrimSpace(q.Get("repo")),
		Label:  strings.TrimSpace(q.Get("label")),
		Query:  strings.TrimSpace(q.Get("q")),
		Sort:   q.Get("sort"),
		Status: "open",
		Limit:  boardPageSize,
	}
	if s, ok := q["status"]; ok {
		f.Status = s[0]
		if f.Status == "any" {
			f.Status = ""
		}
	}
	okStatus := false
	for _, s := range boardStatuses {
		okStatus = okStatus || s == f.Status
	}
	if !okStatus {
		return f, BadInput("Unknown status %q: use open, claimed, paid, cancelled, expired or any.", f.Status)
	}
	switch f.Sort {
	case "":
		f.Sort = "amount"
	case "amount", "age", "new":
	default:
		return f, BadInput("Unknown sort %q: use amount, new or age.", f.Sort)
	}
	if len(f.Query) > 200 {
		return f, BadInput("The search is too long (at most 200 characters).")
	}
	var err error
	if f.MinCents, err = parseDollars(q.Get("min"), "min"); err != nil {
		return f, err
	}
	if f.MaxCents, err = parseDollars(q.Get("max"), "max"); err != nil {
		return f, err
	}
	if f.MaxCents > 0 && f.MinCents > f.MaxCents {
		return f, BadInput("The minimum amount is above the maximum.")
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100000 {
			return f, BadInput("page must be a whole number from 1.")
		}
		f.Offset = (n - 1) * boardPageSize
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return f, BadInput("limit must be a whole number from 1 to 500.")
		}
		f.Limit = n
	}
	return f, nil
}

// parseDollars reads an amount in dollars ("250", "1,000", "12.50") as integer cents; empty
// is 0.
func parseDollars(s, field string) (int64, error) {
	s = strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), "$")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1e9 || math.IsNaN(v) {
		return 0, BadInput("%s must be an amount in dollars, like 250 or 12.50.", field)
	}
	return int64(math.Round(v * 100)), nil
}

func dollars(cents int64) string {
	if cents == 0 {
		return ""
	}
	if cents%100 == 0 {
		return strconv.FormatInt(cents/100, 10)
	}
	return strconv.FormatFloat(float64(cents)/100, 'f', 2, 64)
}

type boardData struct {
	Filter          BountyFilter
	Bounties        []Bounty
	Total           int
	OpenCents       int64
	Repos, Statuses []string
	Sorts           []struct{ Value, Label string }
	SortLabel       string
	Min, Max        string
	Page, Pages     int
	Labels          bool // the source can filter by label
	PrevURL         string
	NextURL         string
}

func (a *App) board(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	f, err := parseFilter(c.Request.URL.Query())
	if err != nil {
		a.failErr(c, "bounty filter", err)
		return
	}
	anonymous := sessionOf(c) == nil
	if anonymous {
		if html, ok := a.boards.page(f); ok {
			a.writePage(c, http.StatusOK, html)
			return
		}
	}
	ctx := c.Request.Context()
	list, total, err := a.listBounties(ctx, f)
	if err != nil {
		a.failErr(c, "bounties", err)
		return
	}
	repos, err := a.listRepos(ctx)
	if err != nil {
		a.failErr(c, "repositories", err)
		return
	}
	d := boardData{Filter: f, Bounties: list, Total: total, Repos: repos, Statuses: boardStatuses, Sorts: boardSorts,
		Min: dollars(f.MinCents), Max: dollars(f.MaxCents), Page: f.Offset/boardPageSize + 1, Pages: max(1, (total+boardPageSize-1)/boardPageSize)}
	if lf, ok := a.bounties.(LabelFilter); ok {
		d.Labels = lf.FiltersLabels()
	}
	for _, s := range boardSorts {
		if s.Value == f.Sort {
			d.SortLabel = s.Label
		}
	}
	for _, b := range list {
		if b.Status == "open" {
			d.OpenCents += b.AmountCents
		}
	}
	q := c.Request.URL.Query()
	if d.Page > 1 {
		q.Set("page", strconv.Itoa(d.Page-1))
		d.PrevURL = "/?" + q.Encode()
	}
	if d.Page < d.Pages {
		q.Set("page", strconv.Itoa(d.Page+1))
		d.NextURL = "/?" + q.Encode()
	}
	html, ok := a.draw(c, "board.html", "Bounties", "board", d)
	if !ok {
		return
	}
	if anonymous {
		a.boards.keepPage(f, html)
	}
	a.writePage(c, http.StatusOK, html)
}

// repoParam joins :owner/:name and checks both halves look like GitHub names.
func repoParam(c *gin.Context) (string, error) { return repoOf(c.Param("owner"), c.Param("name")) }

func repoOf(o, n string) (string, error) {
	if !loginRe.MatchString(o) || n == "" || len(n) > 100 || strings.ContainsAny(n, "/ \\") {
		return "", BadInput("%q is not a repository name like owner/name.", o+"/"+n)
	}
	return o + "/" + n, nil
}

func intParam(c *gin.Context, name string) (int64, error) {
	v, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || v < 1 {
		return 0, BadInput("%s must be a positive whole number, not %q.", name, c.Param(name))
	}
	return v, nil
}

type bountyData struct{ Bounty Bounty }

func (a *App) bountyPage(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	b, err := a.getBounty(c)
	if err != nil {
		a.failErr(c, "bounty", err)
		return
	}
	a.render(c, http.StatusOK, "bounty.html", b.Title, "board", bountyData{b})
}

func (a *App) getBounty(c *gin.Context) (Bounty, error) {
	repo, err := repoParam(c)
	if err != nil {
		return Bounty{}, err
	}
	n, err := intParam(c, "issue")
	if err != nil {
		return Bounty{}, err
	}
	return a.bounties.Get(c.Request.Context(), repo, int(n))
}

func (a *App) leaderboard(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	l, err := a.bounties.Leaderboard(c.Request.Context(), 100)
	if err != nil {
		a.failErr(c, "leaderboard", err)
		return
	}
	a.render(c, http.StatusOK, "leaderboard.html", "Leaderboard", "leaderboard", l)
}

type profileData struct {
	C           Contributor
	CanSeeOffer bool
}

func (a *App) profile(c *gin.Context) {
	if p, ok := a.contributor(c); ok {
		a.render(c, http.StatusOK, "profile.html", "@"+p.Login, "leaderboard", profileData{C: p, CanSeeOffer: a.canSeeOffer(c, p.Login)})
	}
}

// contributor loads the person named in the path, or answers the request itself.
func (a *App) contributor(c *gin.Context) (Contributor, bool) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return Contributor{}, false
	}
	login := c.Param("login")
	if !loginRe.MatchString(login) {
		a.failErr(c, "contributor", BadInput("%q is not a GitHub login.", login))
		return Contributor{}, false
	}
	p, err := a.bounties.Contributor(c.Request.Context(), login)
	if err != nil {
		a.failErr(c, "contributor", err)
		return Contributor{}, false
	}
	return p, true
}

// canSeeOffer is the one rule for offers: the person it is for, and maintainers.
func (a *App) canSeeOffer(c *gin.Context, login string) bool {
	s := sessionOf(c)
	if s == nil {
		return false
	}
	return strings.EqualFold(s.Login, login) || a.maintainsAny(c.Request.Context(), s)
}

type offerData struct {
	Login string
	Offer *Offer
}

func (a *App) offerPage(c *gin.Context) {
	login := c.Param("login")
	if sessionOf(c) == nil {
		a.requireSignIn(c)
		return
	}
	if !a.canSeeOffer(c, login) {
		a.fail(c, http.StatusForbidden, "Offers are private: only maintainers and the person they are for can see them.")
		return
	}
	if a.console == nil {
		a.unavailable(c, "bounties")
		return
	}
	s := sessionOf(c)
	o, err := a.console.Offer(c.Request.Context(), login, s.Login, a.maintainsAny(c.Request.Context(), s))
	if err != nil {
		a.failErr(c, "offer", err)
		return
	}
	a.render(c, http.StatusOK, "offer.html", "Offer for @"+login, "", offerData{Login: login, Offer: o})
}

func (a *App) runsPage(c *gin.Context) {
	if a.ci == nil {
		a.unavailable(c, "CI")
		return
	}
	runs, err := a.ci.Runs(c.Request.Context(), c.Query("repo"), 100)
	if err != nil {
		a.failErr(c, "CI runs", err)
		return
	}
	a.render(c, http.StatusOK, "runs.html", "CI runs", "runs", runs)
}

func (a *App) getRun(c *gin.Context) (Run, error) {
	id, err := intParam(c, "id")
	if err != nil {
		return Run{}, err
	}
	return a.ci.Run(c.Request.Context(), id)
}

func (a *App) runPage(c *gin.Context) {
	if a.ci == nil {
		a.unavailable(c, "CI")
		return
	}
	r, err := a.getRun(c)
	if err != nil {
		a.failErr(c, "CI run", err)
		return
	}
	a.fillJobs(c.Request.Context(), &r)
	a.render(c, http.StatusOK, "run.html", r.Title, "runs", r)
}

// fillJobs asks the runners part for what the CI record of a job leaves out: the runner
// that runs or ran it, and the files it left. What cannot be read stays empty, and the page
// still renders.
func (a *App) fillJobs(ctx context.Context, r *Run) {
	if a.runners == nil {
		return
	}
	for i, j := range r.Jobs {
		if j.Runner == "" {
			name, err := a.runners.JobRunner(ctx, j.ID)
			if err != nil {
				a.log.WarnContext(ctx, "job runner", "job", j.ID, "err", err)
			}
			r.Jobs[i].Runner = name
		}
		if len(j.Artifacts) > 0 {
			continue
		}
		arts, err := a.runners.Artifacts(ctx, j.ID)
		if err != nil {
			a.log.WarnContext(ctx, "job artifacts", "job", j.ID, "err", err)
			continue
		}
		r.Jobs[i].Artifacts = arts
	}
}

// runJob finds a job within its run, so a job id under the wrong run is a 404.
func (a *App) runJob(c *gin.Context) (Run, Job, error) {
	r, err := a.getRun(c)
	if err != nil {
		return r, Job{}, err
	}
	jid, err := intParam(c, "job")
	if err != nil {
		return r, Job{}, err
	}
	a.fillJobs(c.Request.Context(), &r)
	for _, j := range r.Jobs {
		if j.ID == jid {
			return r, j, nil
		}
	}
	return r, Job{}, ErrNotFound
}

type jobLogData struct {
	RunID  int64
	Job    Job
	Chunks []LogChunk
	Last   int
	Done   bool
}

func (a *App) jobLogPage(c *gin.Context) {
	if a.ci == nil || a.runners == nil {
		a.unavailable(c, "CI")
		return
	}
	r, j, err := a.runJob(c)
	if err != nil {
		a.failErr(c, "job", err)
		return
	}
	chunks, done, err := a.runners.Log(c.Request.Context(), j.ID, 0)
	if err != nil {
		a.failErr(c, "job log", err)
		return
	}
	d := jobLogData{RunID: r.ID, Job: j, Chunks: chunks, Done: done}
	if len(chunks) > 0 {
		d.Last = chunks[len(chunks)-1].Seq
	}
	a.render(c, http.StatusOK, "joblog.html", "Log of "+j.Name, "runs", d)
}

// artifact downloads a job's artifact; it is always an attachment, never rendered inline,
// so an artifact cannot run script on this origin.
func (a *App) artifact(c *gin.Context) {
	if a.ci == nil || a.runners == nil {
		a.unavailable(c, "CI")
		return
	}
	_, j, err := a.runJob(c)
	if err != nil {
		a.failErr(c, "job", err)
		return
	}
	name := c.Param("artifact")
	found := false
	for _, art := range j.Artifacts {
		found = found || art.Name == name
	}
	if !found {
		a.failErr(c, "artifact", ErrNotFound)
		return
	}
	b, err := a.runners.Artifact(c.Request.Context(), j.ID, name)
	if err != nil {
		a.failErr(c, "artifact", err)
		return
	}
	c.Header("Content-Disposition", "attachment; filename="+strconv.Quote(name))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "application/octet-stream", b)
}

func (a *App) runnersPage(c *gin.Context) {
	if a.runners == nil {
		a.unavailable(c, "runners")
		return
	}
	rs, err := a.runners.Registered(c.Request.Context())
	if err != nil {
		a.failErr(c, "runners", err)
		return
	}
	a.render(c, http.StatusOK, "runners.html", "Runners", "runners", rs)
}
