package bot

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
)

// Clients hands out a GitHub API client acting as one installation of the App.
type Clients interface {
	Installation(ctx context.Context, installationID int64) (*github.Client, error)
}

// App authenticates as a GitHub App: a JWT signed with the App's private key buys
// per-installation tokens, which ghinstallation caches and refreshes before they expire.
// One go-github client per installation is kept for the life of the process.
type App struct {
	id      int64
	apps    *ghinstallation.AppsTransport
	baseURL string

	mu      sync.Mutex
	clients map[int64]*github.Client
}

// NewApp returns an App for appID with its PEM private key. baseURL is the REST API root:
// "" means https://api.github.com; GitHub Enterprise is https://HOST/api/v3.
func NewApp(appID int64, privateKeyPEM []byte, baseURL string) (*App, error) {
	if appID <= 0 {
		return nil, fmt.Errorf("github app id %d: must be positive", appID)
	}
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, appID, privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github app %d private key: %w", appID, err)
	}
	a := &App{id: appID, apps: atr, baseURL: strings.TrimRight(baseURL, "/"), clients: map[int64]*github.Client{}}
	if a.baseURL != "" {
		atr.BaseURL = a.baseURL
	}
	return a, nil
}

// AppClient is a client authenticated as the App itself (JWT), for App-level endpoints.
func (a *App) AppClient() (*github.Client, error) {
	return newClient(&http.Client{Transport: a.apps}, a.baseURL)
}

// Installation returns the client for one installation.
func (a *App) Installation(_ context.Context, installationID int64) (*github.Client, error) {
	if installationID <= 0 {
		return nil, Permanent(fmt.Errorf("delivery names no installation; the App cannot act without one"))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[installationID]; c != nil {
		return c, nil
	}
	tr := ghinstallation.NewFromAppsTransport(a.apps, installationID)
	if a.baseURL != "" {
		tr.BaseURL = a.baseURL
	}
	c, err := newClient(&http.Client{Transport: tr}, a.baseURL)
	if err != nil {
		return nil, err
	}
	a.clients[installationID] = c
	return c, nil
}

// Static is the development mode without an App: every installation gets the same client,
// authenticated with a personal token when one is given.
type Static struct{ Client *github.Client }

// NewStatic returns a Static client for baseURL ("" for api.github.com) and token ("" for
// none).
func NewStatic(baseURL, token string) (*Static, error) {
	c, err := newClient(nil, baseURL)
	if err != nil {
		return nil, err
	}
	if token != "" {
		c = c.WithAuthToken(token)
	}
	return &Static{Client: c}, nil
}

// Installation returns the one client.
func (s *Static) Installation(context.Context, int64) (*github.Client, error) { return s.Client, nil }

func newClient(hc *http.Client, baseURL string) (*github.Client, error) {
	c := github.NewClient(hc)
	if baseURL == "" {
		return c, nil
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/") + "/")
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("github api url %q: want an absolute http(s) URL", baseURL)
	}
	c.BaseURL, c.UploadURL = u, u
	return c, nil
}
