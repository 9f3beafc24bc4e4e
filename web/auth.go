package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// loginRe is GitHub's rule for logins: letters, digits and single inner hyphens, 1–39 long.
var loginRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps redirects after sign-in on this site: only a local absolute path passes.
// Browsers drop tabs and newlines from URLs and read backslashes as slashes, so "/\t/evil"
// or "/\\evil" would leave the site; any control character or backslash sends people home.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	return next
}

type loginData struct {
	Next     string
	GitHub   bool
	DevLogin bool
	Error    string
}

func (a *App) loginPage(c *gin.Context) {
	a.render(c, http.StatusOK, "login.html", "Sign in", "login", loginData{
		Next: safeNext(c.Query("next")), GitHub: a.cfg.OAuth.ClientID != "", DevLogin: a.cfg.DevLogin, Error: c.Query("error"),
	})
}

// devLogin signs in as any login with a chosen role, when the server runs in dev mode.
func (a *App) devLogin(c *gin.Context) {
	if !a.cfg.DevLogin {
		a.fail(c, http.StatusNotFound, "Dev-mode sign-in is off on this server.")
		return
	}
	login := strings.TrimPrefix(strings.TrimSpace(c.PostForm("login")), "@")
	role := c.PostForm("role")
	if !loginRe.MatchString(login) {
		a.fail(c, http.StatusBadRequest, "A login is 1 to 39 letters, digits or inner hyphens, like a GitHub login.")
		return
	}
	if role != "maintainer" && role != "contributor" {
		a.fail(c, http.StatusBadRequest, "Choose a role: maintainer or contributor.")
		return
	}
	if err := a.startSession(c.Request.Context(), c, login, login, "", role); err != nil {
		a.failErr(c, "session", err)
		return
	}
	c.Redirect(http.StatusSeeOther, safeNext(c.PostForm("next")))
}

// githubLogin starts the GitHub App's OAuth user flow: a random state, bound to this browser
// by a signed cookie, and a redirect to GitHub's authorize page.
func (a *App) githubLogin(c *gin.Context) {
	if a.cfg.OAuth.ClientID == "" {
		a.fail(c, http.StatusNotFound, "Sign in with GitHub is not configured on this server.")
		return
	}
	state, err := randomToken()
	if err != nil {
		a.failErr(c, "sign-in", err)
		return
	}
	next := safeNext(c.Query("next"))
	val := state + "|" + url.QueryEscape(next)
	a.setCookie(c, oauthCookie, val+"|"+a.sign("oauth", val), 600)
	q := url.Values{"client_id": {a.cfg.OAuth.ClientID}, "redirect_uri": {a.cfg.BaseURL + "/login/github/callback"}, "state": {state}}
	c.Redirect(http.StatusFound, strings.TrimRight(a.cfg.OAuth.WebBase, "/")+"/login/oauth/authorize?"+q.Encode())
}

// githubCallback finishes the flow: check the state, trade the code for a user token, ask
// GitHub who it belongs to, and start a session. The user token is not kept: roles come
// from the App's view of repository permissions.
func (a *App) githubCallback(c *gin.Context) {
	if a.cfg.OAuth.ClientID == "" {
		a.fail(c, http.StatusNotFound, "Sign in with GitHub is not configured on this server.")
		return
	}
	var cookie string // raw: gin's c.Cookie would unescape the escaped next path
	if ck, err := c.Request.Cookie(oauthCookie); err == nil {
		cookie = ck.Value
	}
	a.setCookie(c, oauthCookie, "", -1)
	parts := strings.Split(cookie, "|")
	if len(parts) != 3 || !hmacEqual(parts[2], a.sign("oauth", parts[0]+"|"+parts[1])) || parts[0] != c.Query("state") || c.Query("state") == "" {
		a.fail(c, http.StatusForbidden, "The sign-in did not start in this browser, or took too long. Try again.")
		return
	}
	next, _ := url.QueryUnescape(parts[1])
	if e := c.Query("error"); e != "" {
		c.Redirect(http.StatusSeeOther, "/login?error="+url.QueryEscape("GitHub said: "+e)+"&next="+url.QueryEscape(next))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 20*time.Second)
	defer cancel()
	tok, err := a.exchangeCode(ctx, c.Query("code"))
	if err != nil {
		a.log.WarnContext(ctx, "oauth code exchange", "err", err)
		a.fail(c, http.StatusBadGateway, "GitHub did not accept the sign-in. Try again.")
		return
	}
	u, err := a.githubUser(ctx, tok)
	if err != nil {
		a.log.WarnContext(ctx, "oauth user", "err", err)
		a.fail(c, http.StatusBadGateway, "GitHub did not say who you are. Try again.")
		return
	}
	if err := a.startSession(ctx, c, u.Login, u.Name, u.AvatarURL, ""); err != nil {
		a.failErr(c, "session", err)
		return
	}
	c.Redirect(http.StatusSeeOther, safeNext(next))
}

func (a *App) exchangeCode(ctx context.Context, code string) (string, error) {
	if code == "" {
		return "", fmt.Errorf("no code in the callback")
	}
	form := url.Values{"client_id": {a.cfg.OAuth.ClientID}, "client_secret": {a.cfg.OAuth.ClientSecret}, "code": {code}, "redirect_uri": {a.cfg.BaseURL + "/login/github/callback"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.cfg.OAuth.WebBase, "/")+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := a.doJSON(req, &out); err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	if out.Error != "" || out.AccessToken == "" {
		return "", fmt.Errorf("access token refused: %s %s", out.Error, out.Description)
	}
	return out.AccessToken, nil
}

type githubUser struct {
	Login     string `json:"login"`
	Name      string `json:"name"`
	AvatarURL string `json:"avatar_url"`
}

func (a *App) githubUser(ctx context.Context, token string) (githubUser, error) {
	var u githubUser
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.cfg.OAuth.APIBase, "/")+"/user", nil)
	if err != nil {
		return u, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	if err := a.doJSON(req, &u); err != nil {
		return u, fmt.Errorf("get /user: %w", err)
	}
	if !loginRe.MatchString(u.Login) {
		return u, fmt.Errorf("get /user: implausible login %q", u.Login)
	}
	if !strings.HasPrefix(u.AvatarURL, "https://") {
		u.AvatarURL = ""
	}
	return u, nil
}

func (a *App) doJSON(req *http.Request, out any) error {
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// logout ends the session on the server, not only in the browser.
func (a *App) logout(c *gin.Context) {
	if s := sessionOf(c); s != nil {
		if err := a.db.WithContext(c.Request.Context()).Where("token_hash = ?", s.TokenHash).Delete(&Session{}).Error; err != nil {
			a.failErr(c, "session", err)
			return
		}
	}
	a.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/")
}
