package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/google/go-github/v62/github"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gradforge/gradforge/bot"
	"github.com/gradforge/gradforge/bot/githubtest"
	"github.com/spf13/pflag"
)

// botFlags configures the GitHub App part of serve.
type botFlags struct {
	secret, secretFile    string
	maxBody               int64
	appID                 int64
	appKey, apiURL, token string
	login                 string
	workers               int
	lease, poll, backoff  time.Duration
	maxAttempts           int
	retention             time.Duration
}

func init() {
	var f botFlags
	registerServePart(servePart{
		name: "bot",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.secret, "webhook-secret", "", "GitHub webhook secrets, comma-separated (several during rotation); required with an App")
			fs.StringVar(&f.secretFile, "webhook-secret-file", defaultSecretFile, "without an App and without --webhook-secret: the local secret, created on first start (replay reads it)")
			fs.Int64Var(&f.maxBody, "webhook-max-body", bot.DefaultMaxBody, "largest webhook body accepted, in bytes")
			fs.Int64Var(&f.appID, "github-app-id", 0, "GitHub App ID; 0 runs the bot without an App (development)")
			fs.StringVar(&f.appKey, "github-app-key", "", "the App's private key: a PEM file path, or the PEM itself")
			fs.StringVar(&f.apiURL, "github-api-url", "", "GitHub REST API root (default https://api.github.com; Enterprise: https://HOST/api/v3)")
			fs.StringVar(&f.token, "github-token", "", "without an App: a token the bot acts with; with neither, API calls go to an in-process fake and are logged")
			fs.StringVar(&f.login, "bot-login", "gradforge[bot]", "the App's bot login, whose comments are never read as commands")
			fs.IntVar(&f.workers, "bot-workers", 16, "concurrent webhook jobs (each mostly waits on GitHub's API)")
			fs.DurationVar(&f.lease, "bot-job-lease", 30*time.Second, "how long a claim on a webhook job holds without renewal (renewed while it runs); a job whose server died is retried after it")
			fs.DurationVar(&f.poll, "bot-poll", time.Second, "how often idle webhook workers look for due jobs")
			fs.DurationVar(&f.backoff, "bot-backoff", 2*time.Second, "first retry delay of a failed webhook job, doubled per attempt")
			fs.IntVar(&f.maxAttempts, "bot-max-attempts", 10, "attempts before a webhook job is marked failed")
			fs.DurationVar(&f.retention, "bot-retention", 30*24*time.Hour, "how long finished webhook jobs and deliveries are kept (negative: forever)")
		},
		start: func(s *Server) error { return startBot(s, f) },
	})
}

const defaultSecretFile = "gradforge.webhook-secret"

func startBot(s *Server, f botFlags) error {
	log := s.Log.With("part", "bot")
	clients, err := botClients(s, f, log)
	if err != nil {
		return err
	}
	secrets, err := webhookSecrets(f, log)
	if err != nil {
		return err
	}
	b := &bot.Bot{DB: s.DB, Clients: clients, Log: log, Login: f.login}
	b.CI = ciForBot(s, b.ClientFor)
	b.Bounties = bountiesForBot(s, b)
	ciService(s).Checks = bot.NewChecks(b) // CI's summary goes in the bot's one comment
	w := &bot.Workers{DB: s.DB, Handler: b.Handle, Log: log, N: f.workers, Lease: f.lease, Poll: f.poll, Backoff: f.backoff, MaxAttempts: f.maxAttempts, Retention: f.retention, Failed: b.Failed}
	in, err := bot.NewIntake(s.Ctx, s.DB, bot.IntakeConfig{Secrets: secrets, MaxBody: f.maxBody, Log: log, Wake: w.Wake})
	if err != nil {
		return err
	}
	in.Routes(s.Router)
	s.Workers.Add(1)
	go func() {
		defer s.Workers.Done()
		w.Run(s.Ctx)
	}()
	return nil
}

// botClients picks how the bot talks to GitHub: as an App, with a token, or (zero config)
// with an in-process fake whose calls are logged, so replayed webhooks can be watched
// without touching GitHub.
func botClients(s *Server, f botFlags, log *slog.Logger) (bot.Clients, error) {
	switch {
	case f.appID > 0:
		key := []byte(f.appKey)
		if !strings.HasPrefix(strings.TrimSpace(f.appKey), "-----BEGIN") {
			if f.appKey == "" {
				return nil, errors.New("--github-app-id needs --github-app-key (a PEM file or the PEM itself)")
			}
			var err error
			if key, err = os.ReadFile(f.appKey); err != nil {
				return nil, fmt.Errorf("read --github-app-key: %w", err)
			}
		}
		if f.secret == "" {
			return nil, bot.ErrNoSecret
		}
		log.Info("GitHub App", "app_id", f.appID, "api", f.apiURL)
		return bot.NewApp(f.appID, key, f.apiURL)
	case f.token != "":
		log.Info("bot without an App: acting with --github-token", "api", f.apiURL)
		return bot.NewStatic(f.apiURL, f.token)
	}
	fake := githubtest.NewServer()
	go func() {
		<-s.Ctx.Done()
		fake.Close()
	}()
	log.Warn("development mode: no GitHub App or token, so the bot's GitHub API calls go to an in-process fake", "fake", fake.URL)
	st, err := bot.NewStatic(fake.URL, "")
	if err != nil {
		return nil, err
	}
	logged := github.NewClient(&http.Client{Transport: loggingTransport{log: log}})
	logged.BaseURL, logged.UploadURL = st.Client.BaseURL, st.Client.UploadURL
	st.Client = logged
	return st, nil
}

// webhookSecrets returns the configured secrets, or in development the local secret file's,
// creating it with a random secret on first start. It never returns an empty secret.
func webhookSecrets(f botFlags, log *slog.Logger) ([]string, error) {
	if f.secret != "" {
		return bot.ParseSecrets(f.secret)
	}
	secret, err := localSecret(f.secretFile, true)
	if err != nil {
		return nil, err
	}
	log.Warn("development mode: webhook secret read from a local file; set --webhook-secret in production", "file", f.secretFile)
	return []string{secret}, nil
}

// localSecret reads the development secret file, creating it when create is set.
func localSecret(path string, create bool) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("webhook secret file %s is empty: %w", path, bot.ErrNoSecret)
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return "", fmt.Errorf("read webhook secret file: %w", err)
	}
	var r [24]byte
	rand.Read(r[:])
	s := hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("create webhook secret file: %w", err)
	}
	return s, nil
}
