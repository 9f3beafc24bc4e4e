package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// Config is what the web app needs to know at start.
type Config struct {
	// BaseURL is where people reach the server, e.g. https://forge.example.org; it builds the
	// OAuth callback and decides whether cookies are marked Secure (https only).
	BaseURL string
	// Secret keys the CSRF tokens and the OAuth state cookie. Empty: a random one per start,
	// which signs everyone out on restart.
	Secret []byte
	// OAuth configures "Sign in with GitHub"; a zero ClientID turns it off.
	OAuth OAuth
	// DevLogin offers a form to sign in as anyone, with a chosen role, without GitHub. For
	// `gradforge serve` on a laptop only: never turn it on where others can reach the server.
	DevLogin bool
	// SessionTTL is how long a sign-in lasts (default 14 days).
	SessionTTL time.Duration
	// Repos are repositories the console offers even before they have bounties.
	Repos []string
	// BoardCache is how long a board page may be served from memory (default 5 s; negative
	// turns the cache off). Signed-in or not, everyone sees the same board.
	BoardCache time.Duration
}

// OAuth is a GitHub App's OAuth user flow configuration.
type OAuth struct {
	ClientID     string
	ClientSecret string
	// WebBase is where /login/oauth/authorize and /login/oauth/access_token live
	// (default https://github.com); APIBase is where /user lives (default
	// https://api.github.com). Tests point both at an httptest server.
	WebBase string
	APIBase string
}

// App is the web app: pages, console, JSON API and badges over the forge's data.
type App struct {
	cfg      Config
	db       *gorm.DB
	log      *slog.Logger
	bounties Bounties
	console  Console
	ci       CI
	runners  Runners
	settings Settings
	perms    Permissions
	client   *http.Client
	pages    map[string]*template.Template
	boards   boardCache

	permMu    sync.Mutex
	permCache map[string]permEntry // repo+"\x00"+login → permission, for a minute
}

// Sources are the data the app shows; any may be nil, and its pages then say the part is
// not running.
type Sources struct {
	Bounties    Bounties
	Console     Console
	CI          CI
	Runners     Runners
	Settings    Settings
	Permissions Permissions
}

// New builds the app. db holds the app's own tables (sessions).
func New(db *gorm.DB, log *slog.Logger, cfg Config, src Sources) (*App, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = make([]byte, 32)
		if _, err := rand.Read(cfg.Secret); err != nil {
			return nil, fmt.Errorf("web: random secret: %w", err)
		}
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 14 * 24 * time.Hour
	}
	if cfg.OAuth.WebBase == "" {
		cfg.OAuth.WebBase = "https://github.com"
	}
	if cfg.OAuth.APIBase == "" {
		cfg.OAuth.APIBase = "https://api.github.com"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.BoardCache == 0 {
		cfg.BoardCache = 5 * time.Second
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &App{
		cfg: cfg, db: db, log: log, pages: pages,
		bounties: src.Bounties, console: src.Console, ci: src.CI, runners: src.Runners,
		settings: src.Settings, perms: src.Permissions,
		client:    &http.Client{Timeout: 15 * time.Second},
		boards:    boardCache{ttl: cfg.BoardCache},
		permCache: map[string]permEntry{},
	}, nil
}

// Routes adds the app's pages, console, JSON API, badges and static assets to r, and makes
// unknown paths answer with the app's 404 page.
func (a *App) Routes(r *gin.Engine) {
	r.GET("/static/*file", a.static)
	r.GET("/badge/:owner/:name", a.badge)

	g := r.Group("/", a.loadSession, a.checkCSRF)
	g.GET("/", a.board)
	g.GET("/bounties/:owner/:name/:issue", a.bountyPage)
	g.GET("/leaderboard", a.leaderboard)
	g.GET("/people/:login", a.profile)
	g.GET("/people/:login/offer", a.offerPage)
	g.GET("/runs", a.runsPage)
	g.GET("/runs/:id", a.runPage)
	g.GET("/runs/:id/jobs/:job/log", a.jobLogPage)
	g.GET("/runs/:id/jobs/:job/artifacts/:artifact", a.artifact)
	g.GET("/runners", a.runnersPage)
	g.GET("/charts", a.chartsPage)
	g.GET("/charts/:chart", a.chartSVG)

	g.GET("/login", a.loginPage)
	g.POST("/login/dev", a.devLogin)
	g.GET("/login/github", a.githubLogin)
	g.GET("/login/github/callback", a.githubCallback)
	g.POST("/logout", a.logout)

	m := g.Group("/console", a.requireSignIn)
	m.GET("", a.consoleHome)
	m.GET("/pipeline", a.pipelinePage)
	m.POST("/pipeline/:login/candidate", a.markCandidate)
	m.POST("/pipeline/:login/offer", a.recordOffer)
	m.GET("/runners", a.consoleRunners)
	m.POST("/runners/tokens", a.createRunnerToken)
	m.POST("/runners/:id/revoke", a.revokeRunner)
	m.GET("/:owner/:name", a.consoleRepo)
	m.POST("/:owner/:name/payouts/:id/approve", a.approvePayout)
	m.POST("/:owner/:name/payouts/:id/decline", a.declinePayout)
	m.POST("/:owner/:name/proposals/:id/accept", a.acceptProposal)
	m.POST("/:owner/:name/proposals/:id/decline", a.declineProposal)
	m.POST("/:owner/:name/settings", a.saveSettings)

	api := r.Group("/api", a.loadSession, a.checkCSRF)
	api.GET("/bounties", a.apiBounties)
	api.GET("/bounties/:owner/:name/:issue", a.apiBounty)
	api.GET("/leaderboard", a.apiLeaderboard)
	api.GET("/people/:login", a.apiProfile)
	api.GET("/runs", a.apiRuns)
	api.GET("/runs/:id", a.apiRun)
	api.GET("/jobs/:job/log", a.apiJobLog)
	api.GET("/runners", a.apiRunners)
	api.GET("/charts/:chart", a.apiChart)
	api.GET("/repos/:owner/:name/badge", a.apiBadge)

	r.NoRoute(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			c.JSON(http.StatusNotFound, gin.H{"error": "no such API route"})
			return
		}
		a.loadSession(c)
		a.fail(c, http.StatusNotFound, "There is no page at this address.")
	})
}

// page is what every template gets: the signed-in person, the page's own data, and the
// CSRF token for its forms.
type page struct {
	Title      string
	Nav        string // which top navigation entry is current
	User       *Session
	Maintainer bool // the console link shows
	Flash      string
	Data       any

	app *App
	c   *gin.Context
}

// CSRF is the token every form posts back; templates call it only where there is a form,
// so anonymous visitors get the pre-session cookie only when they meet one.
func (p *page) CSRF() string { return p.app.csrfToken(p.c) }

// render writes a page with the layout.
func (a *App) render(c *gin.Context, status int, name, title, nav string, data any) {
	if b, ok := a.draw(c, name, title, nav, data); ok {
		a.writePage(c, status, b)
	}
}

// draw renders a page with the layout into memory, so a template error becomes a clean 500
// page rather than half a page. It answers the request itself when drawing fails.
func (a *App) draw(c *gin.Context, name, title, nav string, data any) ([]byte, bool) {
	t, ok := a.pages[name]
	if !ok {
		a.log.ErrorContext(c.Request.Context(), "unknown template", "name", name)
		c.String(http.StatusInternalServerError, "internal error")
		return nil, false
	}
	p := &page{Title: title, Nav: nav, User: sessionOf(c), Data: data, app: a, c: c, Flash: flashes[c.Query("done")]}
	if p.User != nil {
		p.Maintainer = a.maintainsAny(c.Request.Context(), p.User)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		a.log.ErrorContext(c.Request.Context(), "render page", "template", name, "err", err)
		if name != "error.html" {
			a.fail(c, http.StatusInternalServerError, "This page could not be drawn; the error is in the server log.")
			return nil, false
		}
		c.String(http.StatusInternalServerError, "internal error")
		return nil, false
	}
	return buf.Bytes(), true
}

// writePage sends a drawn page with the headers every page carries.
func (a *App) writePage(c *gin.Context, status int, page []byte) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https://avatars.githubusercontent.com data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self' "+a.cfg.OAuth.WebBase)
	if sessionOf(c) != nil {
		h.Set("Cache-Control", "private, no-store")
	}
	h.Set("Content-Length", strconv.Itoa(len(page))) // one write, no chunked encoding
	c.Status(status)
	c.Writer.Write(page)
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

// fail answers with the error page (or JSON under /api), and stops the handler chain.
func (a *App) fail(c *gin.Context, status int, msg string) {
	c.Abort()
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		c.JSON(status, gin.H{"error": msg})
		return
	}
	a.render(c, status, "error.html", http.StatusText(status), "", errorData{Status: status, Heading: http.StatusText(status), Message: msg})
}

// failErr maps a source error to the right answer: 404 for ErrNotFound, 403 for
// ErrForbidden, a 400 with its text for bad input, otherwise a logged 500 whose details stay
// in the log.
func (a *App) failErr(c *gin.Context, what string, err error) {
	var bad badInput
	var off errUnavailable
	switch {
	case errors.As(err, &off):
		a.unavailable(c, string(off))
	case errors.Is(err, ErrNotFound):
		a.fail(c, http.StatusNotFound, "No such "+what+".")
	case errors.Is(err, ErrForbidden):
		a.fail(c, http.StatusForbidden, "You may not do that.")
	case errors.As(err, &bad):
		a.fail(c, http.StatusBadRequest, bad.Error())
	case errors.Is(err, context.Canceled):
		c.Abort()
	default:
		a.log.ErrorContext(c.Request.Context(), "web: "+what, "path", c.Request.URL.Path, "err", err)
		a.fail(c, http.StatusInternalServerError, "Something went wrong while loading the "+what+"; it is in the server log.")
	}
}

// badInput is an error whose text is safe and useful to show the person who sent the input.
type badInput struct{ msg string }

func (b badInput) Error() string { return b.msg }

// BadInput wraps a message for the person as an error sources may return; the app answers
// 400 with its text.
func BadInput(format string, args ...any) error { return badInput{fmt.Sprintf(format, args...)} }

// unavailable answers when a part of the forge is not running in this server.
func (a *App) unavailable(c *gin.Context, part string) {
	a.fail(c, http.StatusServiceUnavailable, "The "+part+" part of the forge is not running on this server.")
}
