package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/gradforge/gradforge/migrations/dbtest"
)

// fakeOAuth plays GitHub's side of the OAuth web flow: the authorize page (which consents at
// once and redirects back with a code), the token exchange, and GET /user.
type fakeOAuth struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes map[string]string // code → login
	toks  map[string]string // token → login
	login string            // who consents next
	seen  []string
}

func newFakeOAuth(t *testing.T) *fakeOAuth {
	f := &fakeOAuth{codes: map[string]string{}, toks: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "Iv1.client" {
			http.Error(w, "unknown client", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		code := "code-" + f.login
		f.codes[code] = f.login
		f.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.seen = append(f.seen, r.Form.Get("client_id")+" "+r.Form.Get("client_secret")+" "+r.Header.Get("Accept"))
		login, ok := f.codes[r.Form.Get("code")]
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.Form.Get("client_secret") != "s3cret" {
			json.NewEncoder(w).Encode(map[string]string{"error": "bad_verification_code"})
			return
		}
		delete(f.codes, r.Form.Get("code")) // codes are single use
		f.toks["gho_"+login] = login
		json.NewEncoder(w).Encode(map[string]string{"access_token": "gho_" + login, "token_type": "bearer"})
	})
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		login, ok := f.toks[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"login": login, "name": "Name of " + login, "avatar_url": "https://avatars.githubusercontent.com/u/1"})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func TestGitHubSignIn(t *testing.T) {
	gh := newFakeOAuth(t)
	api := githubtest.New(t) // the App's view of repository permissions
	api.SetPermission("gradforge/gradforge", "octomaint", "maintain")
	mem := newMem()
	seed(mem)
	db := dbtest.SQLite(t)
	h := newHarnessWith(t, db, Config{OAuth: OAuth{ClientID: "Iv1.client", ClientSecret: "s3cret", WebBase: gh.srv.URL, APIBase: gh.srv.URL}}, mem)
	perms := &GitHubPermissions{Client: StaticClient(api.Client())}
	h.app.perms = perms
	h.app.cfg.BaseURL = h.srv.URL

	signIn := func(c *client, login, next string) resp {
		t.Helper()
		gh.login = login
		r := c.get("/login/github?next=" + url.QueryEscape(next))
		if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), gh.srv.URL+"/login/oauth/authorize?") {
			t.Fatalf("start: %d to %q", r.status, r.header.Get("Location"))
		}
		// The browser goes to GitHub, which redirects back with a code.
		req, _ := http.NewRequest(http.MethodGet, r.header.Get("Location"), nil)
		r = c.do(req)
		req, _ = http.NewRequest(http.MethodGet, r.header.Get("Location"), nil)
		return c.do(req)
	}

	t.Run("maintainer signs in and lands where they started", func(t *testing.T) {
		c := h.client()
		must(t, c.get("/login"), http.StatusOK, "Sign in with GitHub")
		r := signIn(c, "octomaint", "/console/gradforge/gradforge")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/gradforge/gradforge" {
			t.Fatalf("callback: %d to %q: %s", r.status, r.header.Get("Location"), r.body)
		}
		must(t, c.get("/console/gradforge/gradforge"), http.StatusOK, "Payouts awaiting approval")
		must(t, c.get("/"), http.StatusOK, "@octomaint", `href="/console"`)
		if len(gh.seen) == 0 || gh.seen[0] != "Iv1.client s3cret application/json" {
			t.Fatalf("token exchange sent %q", gh.seen)
		}
	})
	t.Run("a read-only user is a contributor", func(t *testing.T) {
		c := h.client()
		signIn(c, "reader", "/")
		must(t, c.get("/"), http.StatusOK, "@reader")
		must(t, c.get("/console/gradforge/gradforge"), http.StatusForbidden)
	})
	t.Run("next cannot leave the site", func(t *testing.T) {
		c := h.client()
		r := signIn(c, "reader", "//evil.example/")
		if r.header.Get("Location") != "/" {
			t.Fatalf("redirected to %q", r.header.Get("Location"))
		}
	})
	t.Run("a callback with another state is refused", func(t *testing.T) {
		c := h.client()
		c.get("/login/github")
		must(t, c.get("/login/github/callback?code=code-x&state=forged"), http.StatusForbidden)
	})
	t.Run("a callback that did not start in this browser is refused", func(t *testing.T) {
		must(t, h.client().get("/login/github/callback?code=code-x&state=abc"), http.StatusForbidden)
	})
	t.Run("a refused code is a clean error", func(t *testing.T) {
		c := h.client()
		r := c.get("/login/github")
		loc, _ := url.Parse(r.header.Get("Location"))
		must(t, c.get("/login/github/callback?code=wrong&state="+url.QueryEscape(loc.Query().Get("state"))), http.StatusBadGateway, "GitHub did not accept")
	})
	if got := len(api.Calls("GET", "/repos/gradforge/gradforge/collaborators/octomaint/permission")); got != 1 {
		t.Errorf("permission asked %d times for octomaint, want 1 (cached)", got)
	}
}
