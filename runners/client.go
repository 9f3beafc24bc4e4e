package runners

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client talks to a forge's runner API with one runner's credential.
type Client struct {
	URL        string // the forge's base URL, e.g. https://forge.example.org
	Credential string
	HTTP       *http.Client // default: one with no overall timeout; each call sets its own
}

// APIError is an error answer from the server.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Status, e.Message) }

// Unwrap maps the status back to the sentinel errors, so callers can use errors.Is.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrBadToken
	case http.StatusConflict:
		return ErrLeaseLost
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

func (c *Client) do(ctx context.Context, path string, timeout time.Duration, in, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("request %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Credential != "" {
		req.Header.Set("Authorization", "Bearer "+c.Credential)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read answer to %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, fmt.Errorf("POST %s: %w", path, &APIError{Status: resp.StatusCode, Message: e.Error})
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer to %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// Register trades a one-time registration token for a runner credential.
func Register(ctx context.Context, url, token string, info Info) (id int64, credential string, err error) {
	c := &Client{URL: url}
	var out registerResponse
	if _, err := c.do(ctx, "/api/runner/register", 30*time.Second, registerRequest{Token: token, Info: info}, &out); err != nil {
		return 0, "", fmt.Errorf("register with %s: %w", url, err)
	}
	return out.ID, out.Credential, nil
}

// next long-polls for a job; it returns nil when the server had none within wait.
func (c *Client) next(ctx context.Context, info Info, wait time.Duration) (*wireJob, error) {
	var j wireJob
	code, err := c.do(ctx, "/api/runner/jobs/next", wait+15*time.Second, nextRequest{Info: info, WaitS: wait.Seconds()}, &j)
	if err != nil {
		return nil, err
	}
	if code == http.StatusNoContent {
		return nil, nil
	}
	return &j, nil
}

func (c *Client) heartbeat(ctx context.Context, id int64, attempt int) (heartbeatResponse, error) {
	var out heartbeatResponse
	_, err := c.do(ctx, fmt.Sprintf("/api/runner/jobs/%d/heartbeat", id), 15*time.Second, attemptRequest{Attempt: attempt}, &out)
	return out, err
}

func (c *Client) log(ctx context.Context, id int64, attempt, seq int, data []byte) (bool, error) {
	var out logResponse
	_, err := c.do(ctx, fmt.Sprintf("/api/runner/jobs/%d/logs", id), 30*time.Second, logRequest{Attempt: attempt, Seq: seq, Data: data}, &out)
	return out.Truncated, err
}

func (c *Client) finish(ctx context.Context, id int64, req finishRequest) error {
	_, err := c.do(ctx, fmt.Sprintf("/api/runner/jobs/%d/finish", id), 2*time.Minute, req, nil)
	return err
}

func (c *Client) release(ctx context.Context, id int64, attempt int) error {
	_, err := c.do(ctx, fmt.Sprintf("/api/runner/jobs/%d/release", id), 10*time.Second, attemptRequest{Attempt: attempt}, nil)
	return err
}

// permanent reports errors that retrying the same request cannot fix.
func permanent(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500
}
