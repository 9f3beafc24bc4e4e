package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

const (
	sessionCookie = "gf_session"
	preCookie     = "gf_pre" // anonymous visitors' CSRF key, set when they meet a form
	oauthCookie   = "gf_oauth"
	csrfField     = "csrf_token"
	csrfHeader    = "X-CSRF-Token"
	ctxSession    = "web.session"
)

// Session is a signed-in person.
type Session struct {
	TokenHash string    `gorm:"column:token_hash;primaryKey"`
	Login     string    `gorm:"column:login"`
	Name      string    `gorm:"column:name"`
	AvatarURL string    `gorm:"column:avatar_url"`
	DevRole   string    `gorm:"column:dev_role"`
	CreatedAt time.Time `gorm:"column:created_at"`
	ExpiresAt time.Time `gorm:"column:expires_at"`

	token string // the cookie value, kept only for the request that holds it
}

// TableName is the session table from migration 00500.
func (Session) TableName() string { return "web_sessions" }

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func sessionOf(c *gin.Context) *Session {
	if s, ok := c.Get(ctxSession); ok {
		return s.(*Session)
	}
	return nil
}

// secure says whether cookies get the Secure flag: whenever people reach the server over https.
func (a *App) secure() bool { return strings.HasPrefix(a.cfg.BaseURL, "https://") }

func (a *App) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: a.secure(), SameSite: http.SameSiteLaxMode,
	})
}

// loadSession finds the signed-in person from the session cookie; an unknown or expired
// cookie is cleared and the request continues anonymously.
func (a *App) loadSession(c *gin.Context) {
	if _, ok := c.Get(ctxSession); ok {
		return
	}
	tok, err := c.Cookie(sessionCookie)
	if err != nil || tok == "" {
		return
	}
	s, err := a.lookupSession(c.Request.Context(), tok)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		a.setCookie(c, sessionCookie, "", -1)
		return
	}
	if err != nil {
		a.log.ErrorContext(c.Request.Context(), "load session", "err", err)
		return
	}
	s.token = tok
	c.Set(ctxSession, &s)
}

func (a *App) lookupSession(ctx context.Context, tok string) (Session, error) {
	var s Session
	err := a.db.WithContext(ctx).Where("token_hash = ? AND expires_at > ?", hashToken(tok), time.Now().UTC()).Take(&s).Error
	return s, err
}

// SignedIn returns the GitHub login signed in on a request, or "" for none, for other parts'
// pages that must know who asks (the bounties part hands a Stripe payout-setup link only to
// the person it is for). Dev-mode sign-ins, where anyone may claim any login, count as none:
// they must never unlock anything that touches money.
func (a *App) SignedIn(r *http.Request) string {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	s, err := a.lookupSession(r.Context(), ck.Value)
	if err != nil || s.DevRole != "" {
		return ""
	}
	return s.Login
}

// startSession signs a person in: a new server-side session and its cookie. Any anonymous
// CSRF key is dropped so tokens from before the sign-in stop working.
func (a *App) startSession(ctx context.Context, c *gin.Context, login, name, avatar, devRole string) error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	s := Session{TokenHash: hashToken(tok), Login: login, Name: name, AvatarURL: avatar, DevRole: devRole, CreatedAt: now, ExpiresAt: now.Add(a.cfg.SessionTTL)}
	if err := a.db.WithContext(ctx).Create(&s).Error; err != nil {
		return fmt.Errorf("create session for %s: %w", login, err)
	}
	// Expired sessions go away as people sign in; no background sweeper needed.
	if err := a.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&Session{}).Error; err != nil {
		a.log.WarnContext(ctx, "sweep expired sessions", "err", err)
	}
	a.setCookie(c, sessionCookie, tok, int(a.cfg.SessionTTL/time.Second))
	a.setCookie(c, preCookie, "", -1)
	s.token = tok
	c.Set(ctxSession, &s)
	return nil
}

// csrfToken is the token forms must post back. It is an HMAC of the session token (or, for
// anonymous visitors, of a random pre-session cookie), so it needs no storage and a token
// from one browser is worthless in another.
func (a *App) csrfToken(c *gin.Context) string {
	key := ""
	if s := sessionOf(c); s != nil {
		key = "s:" + s.token
	} else {
		pre, err := c.Cookie(preCookie)
		if err != nil || len(pre) < 20 {
			if pre, err = randomToken(); err != nil {
				a.log.ErrorContext(c.Request.Context(), "csrf key", "err", err)
				return ""
			}
			a.setCookie(c, preCookie, pre, 0)
			// Later calls in this request must see the same key.
			c.Request.AddCookie(&http.Cookie{Name: preCookie, Value: pre})
		}
		key = "p:" + pre
	}
	return a.sign("csrf", key)
}

func (a *App) sign(purpose, msg string) string {
	m := hmac.New(sha256.New, a.cfg.Secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF refuses every state-changing request whose token is missing or wrong, with 403.
// The token comes from the form field or, for scripts using the session, a header.
func (a *App) checkCSRF(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return
	}
	got := c.GetHeader(csrfHeader)
	if got == "" {
		got = c.PostForm(csrfField)
	}
	var key string
	if s := sessionOf(c); s != nil {
		key = "s:" + s.token
	} else if pre, err := c.Cookie(preCookie); err == nil && pre != "" {
		key = "p:" + pre
	}
	if got == "" || key == "" || !hmac.Equal([]byte(got), []byte(a.sign("csrf", key))) {
		a.log.WarnContext(c.Request.Context(), "csrf refused", "path", c.Request.URL.Path, "missing", got == "")
		a.fail(c, http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
	}
}

// requireSignIn sends anonymous visitors to the sign-in page and back afterwards.
func (a *App) requireSignIn(c *gin.Context) {
	if sessionOf(c) != nil {
		return
	}
	if c.Request.Method != http.MethodGet {
		a.fail(c, http.StatusUnauthorized, "Sign in first.")
		return
	}
	c.Redirect(http.StatusSeeOther, "/login?next="+urlQueryEscape(c.Request.URL.RequestURI()))
	c.Abort()
}

type permEntry struct {
	perm string
	at   time.Time
}

// permission is a person's permission on a repository, cached for a minute so a page with
// many repositories does not ask GitHub once per row. Dev-mode sign-ins carry their role.
func (a *App) permission(ctx context.Context, s *Session, repo string) string {
	switch s.DevRole {
	case "maintainer":
		return "admin"
	case "contributor":
		return "read"
	}
	if a.perms == nil {
		return "none"
	}
	key := repo + "\x00" + s.Login
	a.permMu.Lock()
	e, ok := a.permCache[key]
	a.permMu.Unlock()
	if ok && time.Since(e.at) < time.Minute {
		return e.perm
	}
	perm, err := a.perms.Permission(ctx, repo, s.Login)
	if err != nil {
		a.log.WarnContext(ctx, "repository permission", "repo", repo, "login", s.Login, "err", err)
		return "none" // fail closed, and do not cache the failure
	}
	a.permMu.Lock()
	a.permCache[key] = permEntry{perm, time.Now()}
	a.permMu.Unlock()
	return perm
}

func (a *App) maintains(ctx context.Context, s *Session, repo string) bool {
	return s != nil && isMaintainer(a.permission(ctx, s, repo))
}

// maintainedRepos lists the repositories the person maintains, of those the forge knows.
func (a *App) maintainedRepos(ctx context.Context, s *Session) []string {
	var out []string
	for _, r := range a.knownRepos(ctx) {
		if a.maintains(ctx, s, r) {
			out = append(out, r)
		}
	}
	return out
}

func (a *App) maintainsAny(ctx context.Context, s *Session) bool {
	if s == nil {
		return false
	}
	if s.DevRole != "" {
		return s.DevRole == "maintainer"
	}
	return len(a.maintainedRepos(ctx, s)) > 0
}

// knownRepos is the configured repositories plus those with bounties, without repeats.
func (a *App) knownRepos(ctx context.Context) []string {
	seen := map[string]bool{}
	var out []string
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, r := range a.cfg.Repos {
		add(r)
	}
	if a.bounties != nil {
		repos, err := a.listRepos(ctx)
		if err != nil {
			a.log.WarnContext(ctx, "list repositories", "err", err)
		}
		for _, r := range repos {
			add(r)
		}
	}
	return out
}

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
