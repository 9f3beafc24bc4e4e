package runners

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// API is the HTTP side of dispatch that runners talk to, under /api/runner.
type API struct {
	Queue    *Queue
	Registry *Registry
}

// Wire types: the JSON runners and the server exchange.

type registerRequest struct {
	Token string `json:"token"`
	Info
}

type registerResponse struct {
	ID         int64  `json:"id"`
	Credential string `json:"credential"`
}

type nextRequest struct {
	Info
	WaitS float64 `json:"wait_s"`
}

// wireJob is an assignment as sent to a runner.
type wireJob struct {
	ID         int64             `json:"id"`
	Attempt    int               `json:"attempt"`
	Repo       string            `json:"repo"`
	CloneURL   string            `json:"clone_url"`
	HeadSHA    string            `json:"head_sha"`
	BaseRef    string            `json:"base_ref,omitempty"`
	BaseSHA    string            `json:"base_sha,omitempty"`
	Steps      []Step            `json:"steps"`
	Env        map[string]string `json:"env,omitempty"`
	Labels     []string          `json:"labels,omitempty"`
	TimeoutS   int64             `json:"timeout_s"`
	Trusted    bool              `json:"trusted"`
	CloneToken string            `json:"clone_token,omitempty"`
	LeaseS     float64           `json:"lease_s"`
	HeartbeatS float64           `json:"heartbeat_s"`
}

type attemptRequest struct {
	Attempt int `json:"attempt"`
}

type heartbeatResponse struct {
	Cancel     bool      `json:"cancel"`
	Reason     string    `json:"reason,omitempty"`
	LeaseUntil time.Time `json:"lease_until"`
}

type logRequest struct {
	Attempt int    `json:"attempt"`
	Seq     int    `json:"seq"`
	Data    []byte `json:"data"`
}

type logResponse struct {
	Truncated bool `json:"truncated"`
}

type finishRequest struct {
	Attempt    int               `json:"attempt"`
	Conclusion Conclusion        `json:"conclusion"`
	ExitCode   int               `json:"exit_code"`
	Message    string            `json:"message"`
	Files      map[string][]byte `json:"files,omitempty"`
	KilledAt   time.Time         `json:"killed_at,omitzero"`
}

// Routes adds the runner API to r: registration, the long poll for jobs, heartbeats, logs
// and results. Everything but registration needs the runner's credential as a bearer token.
func (a *API) Routes(r gin.IRouter) {
	g := r.Group("/api/runner")
	g.POST("/register", a.register)
	auth := g.Group("", a.authenticate)
	auth.POST("/jobs/next", a.next)
	auth.POST("/jobs/:id/heartbeat", a.heartbeat)
	auth.POST("/jobs/:id/logs", a.logs)
	auth.POST("/jobs/:id/finish", a.finish)
	auth.POST("/jobs/:id/release", a.release)
}

func status(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBadToken):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrLeaseLost):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func (a *API) fail(c *gin.Context, err error) {
	code := status(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		a.Queue.Log.ErrorContext(c.Request.Context(), "runner API", "path", c.Request.URL.Path, "err", err)
		msg = "internal error"
	}
	c.AbortWithStatusJSON(code, gin.H{"error": msg})
}

// bind reads a JSON body of at most limit bytes.
func bind(c *gin.Context, limit int64, v any) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	if err := c.ShouldBindJSON(v); err != nil {
		return fmt.Errorf("%w: read JSON body: %w", ErrBadRequest, err)
	}
	return nil
}

func (a *API) register(c *gin.Context) {
	var req registerRequest
	if err := bind(c, 64<<10, &req); err != nil {
		a.fail(c, err)
		return
	}
	rn, cred, err := a.Registry.Register(c.Request.Context(), req.Token, req.Info)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.Queue.Log.InfoContext(c.Request.Context(), "runner registered", "runner", rn.ID, "name", rn.Name, "labels", rn.Labels)
	c.JSON(http.StatusOK, registerResponse{ID: rn.ID, Credential: cred})
}

func (a *API) authenticate(c *gin.Context) {
	cred, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok {
		a.fail(c, fmt.Errorf("%w: no bearer credential", ErrUnauthorized))
		return
	}
	rn, err := a.Registry.Authenticate(c.Request.Context(), cred)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Set("runner", rn)
}

func runnerOf(c *gin.Context) Runner { return c.MustGet("runner").(Runner) }

func (a *API) next(c *gin.Context) {
	var req nextRequest
	if err := bind(c, 64<<10, &req); err != nil {
		a.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	rn, err := a.Registry.Seen(ctx, runnerOf(c), req.Info)
	if err != nil {
		a.fail(c, err)
		return
	}
	asg, err := a.Queue.Next(ctx, rn, time.Duration(req.WaitS*float64(time.Second)))
	if err != nil {
		a.fail(c, err)
		return
	}
	if asg == nil {
		c.Status(http.StatusNoContent)
		return
	}
	j := asg.Job
	if ctx.Err() != nil {
		// The runner hung up while its job was being claimed: give the job back now rather
		// than after a lease.
		if err := a.Queue.Release(context.WithoutCancel(ctx), rn.ID, j.ID, j.Attempt); err != nil {
			a.Queue.Log.WarnContext(ctx, "release a job nobody received", "job", j.ID, "err", err)
		}
		return
	}
	a.Queue.Log.InfoContext(ctx, "job assigned", "job", j.ID, "attempt", j.Attempt, "runner", rn.ID, "runner_name", rn.Name)
	c.JSON(http.StatusOK, wireJob{
		ID: j.ID, Attempt: j.Attempt, Repo: j.Spec.Repo, CloneURL: j.Spec.CloneURL, HeadSHA: j.Spec.HeadSHA,
		BaseRef: j.Spec.BaseRef, BaseSHA: j.Spec.BaseSHA, Steps: j.Spec.Steps, Env: j.Spec.Env, Labels: j.Spec.Labels,
		TimeoutS: int64(j.Spec.Timeout / time.Second), Trusted: j.Spec.Trusted, CloneToken: asg.CloneToken,
		LeaseS: a.Queue.Lease.Seconds(), HeartbeatS: a.Queue.HeartbeatEvery.Seconds(),
	})
}

// jobRequest reads the job id from the path and the JSON body into v; on bad input it
// answers the request itself and returns false.
func (a *API) jobRequest(c *gin.Context, limit int64, v any) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		a.fail(c, fmt.Errorf("%w: bad job id %q", ErrBadRequest, c.Param("id")))
		return 0, false
	}
	if err := bind(c, limit, v); err != nil {
		a.fail(c, err)
		return 0, false
	}
	return id, true
}

func (a *API) heartbeat(c *gin.Context) {
	var req attemptRequest
	id, ok := a.jobRequest(c, 4<<10, &req)
	if !ok {
		return
	}
	ans, err := a.Queue.Heartbeat(c.Request.Context(), runnerOf(c).ID, id, req.Attempt)
	if err != nil {
		a.fail(c, err)
		return
	}
	if err := a.Registry.Touch(c.Request.Context(), runnerOf(c).ID); err != nil {
		a.Queue.Log.WarnContext(c.Request.Context(), "record runner heartbeat", "err", err)
	}
	c.JSON(http.StatusOK, heartbeatResponse{Cancel: ans.Cancel, Reason: ans.Reason, LeaseUntil: ans.LeaseUntil})
}

func (a *API) logs(c *gin.Context) {
	var req logRequest
	id, ok := a.jobRequest(c, 2*MaxChunkBytes, &req)
	if !ok {
		return
	}
	trunc, err := a.Queue.AppendLog(c.Request.Context(), runnerOf(c).ID, id, req.Attempt, req.Seq, req.Data)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, logResponse{Truncated: trunc})
}

func (a *API) finish(c *gin.Context) {
	var req finishRequest
	id, ok := a.jobRequest(c, 2*MaxResultBytes, &req)
	if !ok {
		return
	}
	// Finishing must not be undone by the runner hanging up right after sending.
	ctx := context.WithoutCancel(c.Request.Context())
	err := a.Queue.Finish(ctx, runnerOf(c).ID, id, req.Attempt, Report{
		Conclusion: req.Conclusion, ExitCode: req.ExitCode, Message: req.Message, Files: req.Files, KilledAt: req.KilledAt,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	a.Queue.Log.InfoContext(ctx, "job finished", "job", id, "attempt", req.Attempt, "conclusion", req.Conclusion)
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

func (a *API) release(c *gin.Context) {
	var req attemptRequest
	id, ok := a.jobRequest(c, 4<<10, &req)
	if !ok {
		return
	}
	if err := a.Queue.Release(context.WithoutCancel(c.Request.Context()), runnerOf(c).ID, id, req.Attempt); err != nil {
		a.fail(c, err)
		return
	}
	a.Queue.Log.InfoContext(c.Request.Context(), "job released by its runner", "job", id, "attempt", req.Attempt)
	c.JSON(http.StatusOK, gin.H{"ok": true})
}
