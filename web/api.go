package web

import (
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// The JSON API serves the same data as the pages, for scripts and badges. Lists come in an
// object ({"bounties": [...], "total": N}) so fields can be added without breaking callers.

func (a *App) apiBounties(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	f, err := parseFilter(c.Request.URL.Query())
	if err != nil {
		a.failErr(c, "bounty filter", err)
		return
	}
	list, total, err := a.listBounties(c.Request.Context(), f)
	if err != nil {
		a.failErr(c, "bounties", err)
		return
	}
	if list == nil {
		list = []Bounty{}
	}
	c.JSON(http.StatusOK, gin.H{"bounties": list, "total": total, "filter": f})
}

func (a *App) apiBounty(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	b, err := a.getBounty(c)
	if err != nil {
		a.failErr(c, "bounty", err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (a *App) apiLeaderboard(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	l, err := a.bounties.Leaderboard(c.Request.Context(), 100)
	if err != nil {
		a.failErr(c, "leaderboard", err)
		return
	}
	if l == nil {
		l = []Leader{}
	}
	c.JSON(http.StatusOK, gin.H{"leaders": l})
}

func (a *App) apiProfile(c *gin.Context) {
	if p, ok := a.contributor(c); ok {
		c.JSON(http.StatusOK, p)
	}
}

func (a *App) apiRuns(c *gin.Context) {
	if a.ci == nil {
		a.unavailable(c, "CI")
		return
	}
	runs, err := a.ci.Runs(c.Request.Context(), c.Query("repo"), 100)
	if err != nil {
		a.failErr(c, "CI runs", err)
		return
	}
	if runs == nil {
		runs = []Run{}
	}
	c.JSON(http.StatusOK, gin.H{"runs": runs})
}

func (a *App) apiRun(c *gin.Context) {
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
	c.JSON(http.StatusOK, r)
}

// apiJobLog is what the live log script polls: the chunks after ?after=SEQ.
func (a *App) apiJobLog(c *gin.Context) {
	if a.runners == nil {
		a.unavailable(c, "runners")
		return
	}
	id, err := intParam(c, "job")
	if err != nil {
		a.failErr(c, "job", err)
		return
	}
	after := 0
	if s := c.Query("after"); s != "" {
		if after, err = strconv.Atoi(s); err != nil || after < 0 {
			a.failErr(c, "job log", BadInput("after must be a chunk sequence number."))
			return
		}
	}
	chunks, fin, err := a.runners.Log(c.Request.Context(), id, after)
	if err != nil {
		a.failErr(c, "job log", err)
		return
	}
	if chunks == nil {
		chunks = []LogChunk{}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"chunks": chunks, "done": fin})
}

func (a *App) apiRunners(c *gin.Context) {
	if a.runners == nil {
		a.unavailable(c, "runners")
		return
	}
	rs, err := a.runners.Registered(c.Request.Context())
	if err != nil {
		a.failErr(c, "runners", err)
		return
	}
	if rs == nil {
		rs = []Runner{}
	}
	c.JSON(http.StatusOK, gin.H{"runners": rs})
}

func (a *App) apiBadge(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	repo, err := repoParam(c)
	if err != nil {
		a.failErr(c, "repository", err)
		return
	}
	cents, n, err := a.bounties.OpenTotal(c.Request.Context(), repo)
	if err != nil {
		a.failErr(c, "badge", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"repo": repo, "open_cents": cents, "open_bounties": n})
}

// badge is an SVG badge in the usual two-part style: "bounties | $1,234 open". READMEs embed
// it through GitHub's image proxy, which caches; five minutes keeps it fresh enough.
func (a *App) badge(c *gin.Context) {
	if a.bounties == nil {
		a.unavailable(c, "bounties")
		return
	}
	repo, err := repoOf(c.Param("owner"), strings.TrimSuffix(c.Param("name"), ".svg"))
	if err != nil {
		a.failErr(c, "repository", err)
		return
	}
	cents, n, err := a.bounties.OpenTotal(c.Request.Context(), repo)
	if err != nil {
		a.failErr(c, "badge", err)
		return
	}
	value := money(cents) + " open"
	if n == 0 {
		value = "none open"
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "image/svg+xml", badgeSVG("bounties", value))
}

// badgeSVG draws a two-part badge; text widths are estimated at 7 px per character of
// Verdana 11 px, which is how wide such badges usually come out.
func badgeSVG(label, value string) []byte {
	lw, vw := 10+7*len(label), 10+7*len([]rune(value))
	w := lw + vw
	l, v := html.EscapeString(label), html.EscapeString(value)
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s"><title>%s: %s</title>`+
		`<linearGradient id="s" x2="0" y2="100%%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`+
		`<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="#2e8b57"/><rect width="%d" height="20" fill="url(#s)"/></g>`+
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="%d" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`,
		w, l, v, l, v, w, lw, lw, vw, w, lw/2, l, lw+vw/2, v)
}
