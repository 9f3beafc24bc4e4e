package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gradforge/gradforge/bot"
	"github.com/spf13/cobra"
)

// loggingTransport logs each GitHub API call the development-mode bot makes.
type loggingTransport struct{ log *slog.Logger }

func (t loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.log.Info("github api (fake)", "method", r.Method, "path", r.URL.Path, "status", status)
	return resp, err
}

// knownEvents are the X-GitHub-Event names replay infers from a fixture's folder.
var knownEvents = map[string]bool{"check_run": true, "check_suite": true, "installation": true, "installation_repositories": true,
	"issue_comment": true, "issues": true, "ping": true, "pull_request": true, "pull_request_review": true, "push": true}

func init() {
	register(func() *cobra.Command {
		var event, url, secret, secretFile, delivery string
		cmd := &cobra.Command{
			Use:   "replay FILE",
			Short: "Sign a webhook payload with the local secret and post it to a running server",
			Long: `replay posts FILE (a GitHub webhook payload, e.g. from shared/fixtures/github-webhooks)
to a running server's /webhooks/github, signed like GitHub signs it. The event comes from
--event or from FILE's folder name (issue_comment/created.payload.json is issue_comment).
The secret is --webhook-secret or, as in a zero-config serve, the local secret file.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				body, err := os.ReadFile(args[0])
				if err != nil {
					return fmt.Errorf("read payload: %w", err)
				}
				if !json.Valid(body) {
					return fmt.Errorf("%s is not JSON", args[0])
				}
				if event == "" {
					event = filepath.Base(filepath.Dir(args[0]))
					if !knownEvents[event] {
						return fmt.Errorf("cannot tell the event from %s: give --event", args[0])
					}
				}
				if secret == "" {
					if secret, err = localSecret(secretFile, false); err != nil {
						return fmt.Errorf("no --webhook-secret and %w", err)
					}
				} else {
					secrets, err := bot.ParseSecrets(secret)
					if err != nil {
						return err
					}
					secret = secrets[0]
				}
				if delivery == "" {
					var r [16]byte
					rand.Read(r[:])
					delivery = hex.EncodeToString(r[:])
				}
				status, reply, err := postWebhook(cmd.Context(), strings.TrimRight(url, "/")+"/webhooks/github", event, delivery, secret, body)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %d %s\n", event, delivery, status, strings.TrimSpace(reply))
				if status >= 300 {
					return fmt.Errorf("server answered %d", status)
				}
				return nil
			},
		}
		cmd.Flags().StringVar(&event, "event", "", "X-GitHub-Event (default: FILE's folder name)")
		cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080", "the server's base URL")
		cmd.Flags().StringVar(&secret, "webhook-secret", "", "secret to sign with (the first of a comma-separated list)")
		cmd.Flags().StringVar(&secretFile, "webhook-secret-file", defaultSecretFile, "local secret file used when --webhook-secret is empty")
		cmd.Flags().StringVar(&delivery, "delivery", "", "X-GitHub-Delivery (default: random; repeat one to test deduplication)")
		return envHelp(cmd)
	})
}

// postWebhook sends one signed delivery and returns the status and body.
func postWebhook(ctx context.Context, url, event, delivery, secret string, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/gradforge-replay")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", bot.Sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(reply), nil
}
