package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gradforge/gradforge/runners"
)

// RunnerSource fits the runners package (its registry and job queue) to Runners.
type RunnerSource struct {
	Registry *runners.Registry
	Queue    *runners.Queue
}

// Registered lists the runners, newest last.
func (s RunnerSource) Registered(ctx context.Context) ([]Runner, error) {
	st, err := s.Registry.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Runner, len(st))
	for i, r := range st {
		out[i] = Runner{ID: r.ID, Name: r.Name, Labels: r.Labels, Version: r.Version, GPU: r.GPU, Busy: r.Busy, LastSeen: r.LastSeen, Revoked: r.Revoked}
	}
	return out, nil
}

// Log returns the latest attempt's chunks after a sequence number; the log is done once the
// job has finished.
func (s RunnerSource) Log(ctx context.Context, jobID int64, after int) ([]LogChunk, bool, error) {
	j, err := s.Queue.Get(ctx, jobID)
	if err != nil {
		return nil, false, runnersErr(err)
	}
	chunks, err := s.Queue.Logs(ctx, jobID, 0, after)
	if err != nil {
		return nil, false, runnersErr(err)
	}
	out := make([]LogChunk, len(chunks))
	for i, c := range chunks {
		out[i] = LogChunk{Seq: c.Seq, Text: string(c.Data)}
	}
	return out, j.State == runners.Finished, nil
}

// JobRunner names the runner holding (or that last held) a job. The runners package records
// the runner's id on the job; its name comes from the registry.
func (s RunnerSource) JobRunner(ctx context.Context, jobID int64) (string, error) {
	j, err := s.Queue.Get(ctx, jobID)
	if err != nil || j.Runner == 0 {
		return "", runnersErr(err)
	}
	r, err := s.Registry.Get(ctx, j.Runner)
	if errors.Is(err, runners.ErrRunnerUnknown) {
		return fmt.Sprintf("runner %d", j.Runner), nil
	}
	if err != nil {
		return "", err
	}
	return r.Name, nil
}

// Artifacts lists a finished job's result files, by name.
func (s RunnerSource) Artifacts(ctx context.Context, jobID int64) ([]Artifact, error) {
	r, err := s.Queue.Result(ctx, jobID)
	if err != nil {
		return nil, runnersErr(err)
	}
	out := make([]Artifact, 0, len(r.Files))
	for name, b := range r.Files {
		out = append(out, Artifact{Name: name, Bytes: int64(len(b))})
	}
	slices.SortFunc(out, func(a, b Artifact) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Artifact is one file a finished job left in its results.
func (s RunnerSource) Artifact(ctx context.Context, jobID int64, name string) ([]byte, error) {
	r, err := s.Queue.Result(ctx, jobID)
	if err != nil {
		return nil, runnersErr(err)
	}
	b, ok := r.Files[name]
	if !ok {
		return nil, fmt.Errorf("artifact %q of job %d: %w", name, jobID, ErrNotFound)
	}
	return b, nil
}

// CreateToken makes a one-time runner registration token.
func (s RunnerSource) CreateToken(ctx context.Context, by string, ttl time.Duration) (string, time.Time, error) {
	return s.Registry.CreateToken(ctx, ttl, "created in the web console", by)
}

// Revoke disables a runner's credential.
func (s RunnerSource) Revoke(ctx context.Context, id int64, _ string) error {
	return runnersErr(s.Registry.Revoke(ctx, id))
}

// runnersErr turns the runners package's not-found errors into the web app's.
func runnersErr(err error) error {
	if errors.Is(err, runners.ErrNotFound) || errors.Is(err, runners.ErrRunnerUnknown) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
