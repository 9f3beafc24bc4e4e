package ci

import (
	"context"
	"errors"
	"strconv"

	"github.com/gradforge/gradforge/runners"
)

// RunnerQueue makes the runners' job queue a Dispatcher, and (through Results) hands finished
// jobs back to the Service. It is the only place ci touches package runners.
type RunnerQueue struct{ Q *runners.Queue }

// Enqueue queues a job; the same Key returns the existing job.
func (r RunnerQueue) Enqueue(ctx context.Context, j Job) (int64, error) {
	steps := make([]runners.Step, len(j.Steps))
	for i, s := range j.Steps {
		steps[i] = runners.Step{Name: s.Name, Run: s.Run}
	}
	job, err := r.Q.Enqueue(ctx, runners.Spec{Key: j.Key, Group: j.Group, Labels: j.Labels, Repo: j.Repo, CloneURL: j.CloneURL,
		HeadSHA: j.HeadSHA, BaseRef: j.BaseRef, BaseSHA: j.BaseSHA, Steps: steps, Env: j.Env, Timeout: j.Timeout,
		Trusted: j.Trusted, Meta: j.Meta})
	return job.ID, err
}

// CancelGroup cancels a pull request's jobs for other commits.
func (r RunnerQueue) CancelGroup(ctx context.Context, group, keepSHA, reason string) (int, error) {
	return r.Q.CancelGroup(ctx, group, keepSHA, reason)
}

// Cancel cancels one job.
func (r RunnerQueue) Cancel(ctx context.Context, id int64, reason string) error {
	return r.Q.Cancel(ctx, id, reason)
}

// JobState is the job's state: queued, running or finished.
func (r RunnerQueue) JobState(ctx context.Context, id int64) (string, error) {
	j, err := r.Q.Get(ctx, id)
	if err != nil {
		return "", err
	}
	return string(j.State), nil
}

// Results adapts the Service to runners.Results: register it with Queue.SetResults.
func (s *Service) Results() runners.Results { return results{s} }

type results struct{ s *Service }

// JobFinished concludes the check run of a job ci queued. A job ci did not queue (one
// queued with `gradforge runner enqueue`, or whose run is gone) is acknowledged: there is no
// check run to conclude, and an error would only make the queue retry it for ever.
func (r results) JobFinished(ctx context.Context, job runners.Job, res runners.Result) error {
	if _, err := strconv.ParseInt(job.Spec.Meta, 10, 64); err != nil {
		r.s.log().InfoContext(ctx, "runner job finished; ci did not queue it, so it concludes no check run",
			"job", job.ID, "conclusion", res.Conclusion)
		return nil
	}
	err := r.s.JobFinished(ctx, JobResult{JobID: job.ID, Meta: job.Spec.Meta, Conclusion: string(res.Conclusion),
		ExitCode: res.ExitCode, Message: res.Message, Files: res.Files})
	if errors.Is(err, ErrUnknownRun) {
		r.s.log().WarnContext(ctx, "runner job finished for a check run ci no longer has; acknowledged", "job", job.ID, "err", err)
		return nil
	}
	return err
}
