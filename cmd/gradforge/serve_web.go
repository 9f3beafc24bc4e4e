package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/ci"
	"github.com/gradforge/gradforge/runners"
	"github.com/gradforge/gradforge/web"
	"github.com/spf13/pflag"
)

// The web app's part of serve: pages, console, JSON API and badges over the other parts'
// data. It starts last (file order), so the parts it reads are already wired.
func init() {
	var baseURL, secret, clientID, clientSecret, oauthWeb, oauthAPI, devLogin string
	var repos []string
	var demo bool
	var boardCache time.Duration
	var flags *pflag.FlagSet
	registerServePart(servePart{
		name: "web",
		flags: func(fs *pflag.FlagSet) {
			flags = fs
			fs.StringVar(&baseURL, "web-base-url", "", "URL people reach the server at, for OAuth callbacks and Secure cookies (default: the listen URL)")
			fs.StringVar(&secret, "web-secret", "", "key for CSRF tokens and OAuth state, at least 32 characters (default: random per start, which signs everyone out on restart)")
			fs.StringVar(&clientID, "web-oauth-client-id", "", "the GitHub App's OAuth client ID; turns on Sign in with GitHub")
			fs.StringVar(&clientSecret, "web-oauth-client-secret", "", "the GitHub App's OAuth client secret")
			fs.StringVar(&oauthWeb, "web-oauth-url", "https://github.com", "where GitHub's /login/oauth/ pages are")
			fs.StringVar(&oauthAPI, "web-oauth-api-url", "https://api.github.com", "where GitHub's REST API is, for GET /user after sign-in")
			fs.DurationVar(&boardCache, "web-board-cache", 5*time.Second, "how long a bounty board page is served from memory (negative: off)")
			fs.StringVar(&devLogin, "web-dev-login", "auto", "dev-mode sign-in as anyone: on, off, or auto (on when no OAuth client is set and the server listens on loopback only)")
			fs.StringSliceVar(&repos, "web-repos", nil, "repositories the console offers before they have bounties, owner/name, comma-separated")
			fs.BoolVar(&demo, "demo", false, "seed demo bounties, runs and runners into an empty database so there is something to look at")
		},
		start: func(s *Server) error {
			cfg := web.Config{BaseURL: baseURL, Repos: repos, OAuth: web.OAuth{ClientID: clientID, ClientSecret: clientSecret, WebBase: oauthWeb, APIBase: oauthAPI}}
			if cfg.BaseURL == "" {
				cfg.BaseURL = s.URL
			}
			if secret != "" {
				if len(secret) < 32 {
					return fmt.Errorf("--web-secret must be at least 32 characters")
				}
				cfg.Secret = []byte(secret)
			}
			if clientID != "" && clientSecret == "" {
				return fmt.Errorf("--web-oauth-client-id needs --web-oauth-client-secret")
			}
			switch devLogin {
			case "on":
				cfg.DevLogin = true
			case "off":
			case "auto":
				cfg.DevLogin = clientID == "" && loopbackOnly(s.URL)
			default:
				return fmt.Errorf("--web-dev-login %q: use on, off or auto", devLogin)
			}
			svc, err := bountiesService(s)
			if err != nil {
				return err
			}
			bs := web.BountySource{S: svc}
			reg := runners.NewRegistry(s.DB)
			src := web.Sources{Bounties: bs, Console: bs, Settings: bs, CI: webCIErrors{webCIFor(s)},
				Runners: web.RunnerSource{Registry: reg, Queue: runnerQueue(s)}}
			if src.Permissions, err = webPermissions(flags); err != nil {
				return err
			}
			if demo {
				if err := web.SeedDemo(s.Ctx, svc, reg); err != nil {
					return err
				}
				s.Log.Info("web: demo data seeded; sign in as maint (maintainer) to see the console", "url", cfg.BaseURL+"/login")
			}
			cfg.BoardCache = boardCache
			app, err := web.New(s.DB, s.Log, cfg, src)
			if err != nil {
				return err
			}
			app.Routes(s.Router)
			bountiesSignIn(s, app.SignedIn) // payout setup pages know who is signed in
			if cfg.DevLogin {
				s.Log.Warn("web: dev-mode sign-in is on: anyone who can reach this server can sign in as anyone", "url", cfg.BaseURL+"/login")
			}
			return nil
		},
	})
}

// webPermissions reads roles the way the bot acts on GitHub: as the App (through the
// installation on each repository), or with --github-token. With neither there is no GitHub
// to ask, and only dev-mode sign-ins have roles.
func webPermissions(fs *pflag.FlagSet) (web.Permissions, error) {
	get := func(name string) string {
		if f := fs.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	apiURL := get("github-api-url")
	if id, _ := strconv.ParseInt(get("github-app-id"), 10, 64); id > 0 {
		key := []byte(get("github-app-key"))
		if !strings.HasPrefix(strings.TrimSpace(string(key)), "-----BEGIN") {
			var err error
			if key, err = os.ReadFile(string(key)); err != nil {
				return nil, fmt.Errorf("web: read --github-app-key: %w", err)
			}
		}
		app, err := bot.NewApp(id, key, apiURL)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		return &web.GitHubPermissions{Client: func(ctx context.Context, repo string) (*github.Client, error) {
			ac, err := app.AppClient()
			if err != nil {
				return nil, err
			}
			owner, name, _ := strings.Cut(repo, "/")
			inst, _, err := ac.Apps.FindRepositoryInstallation(ctx, owner, name)
			if err != nil {
				return nil, fmt.Errorf("installation on %s: %w", repo, err)
			}
			return app.Installation(ctx, inst.GetID())
		}}, nil
	}
	if tok := get("github-token"); tok != "" {
		st, err := bot.NewStatic(apiURL, tok)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		return &web.GitHubPermissions{Client: web.StaticClient(st.Client)}, nil
	}
	return nil, nil
}

// webCIErrors makes ci's "no such run" a 404 in the web app.
type webCIErrors struct{ web.CI }

func (w webCIErrors) Run(ctx context.Context, id int64) (web.Run, error) {
	r, err := w.CI.Run(ctx, id)
	if errors.Is(err, ci.ErrUnknownRun) {
		err = fmt.Errorf("%w: %w", web.ErrNotFound, err)
	}
	return r, err
}

// loopbackOnly reports whether the server's URL is on a loopback address, where a dev-mode
// sign-in can only be reached from this machine.
func loopbackOnly(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	ip := net.ParseIP(p.Hostname())
	return p.Hostname() == "localhost" || ip != nil && ip.IsLoopback()
}
