package runners

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// jobRow is a runner_jobs row as read back.
type jobRow struct {
	ID                int64
	DedupeKey         *string
	CancelGroup       string
	Labels            string
	Repo              string
	CloneURL          string
	HeadSHA           string `gorm:"column:head_sha"`
	BaseRef           string
	BaseSHA           string `gorm:"column:base_sha"`
	Steps             string
	Env               string
	Meta              string
	TimeoutS          int64
	Trusted           int
	MaxAttempts       int
	State             string
	Attempts          int
	RunnerID          *int64
	LeaseUntilMs      int64
	CancelRequested   int
	CancelReason      string
	CancelRequestedAt *time.Time
	Conclusion        string
	ExitCode          int
	Message           string
	KilledAt          *time.Time
	LogBytes          int64
	LogTruncated      int
	CreatedAt         time.Time
	AssignedAt        *time.Time
	FinishedAt        *time.Time
	DeliveredAt       *time.Time
	DeliveryAttempts  int
}

const jobColumns = `id, dedupe_key, cancel_group, labels, repo, clone_url, head_sha, base_ref, base_sha, steps, env, meta,
	timeout_s, trusted, max_attempts, state, attempts, runner_id, lease_until_ms, cancel_requested, cancel_reason,
	cancel_requested_at, conclusion, exit_code, message, killed_at, log_bytes, log_truncated, created_at, assigned_at, finished_at, delivered_at, delivery_attempts`

func (r jobRow) job() (Job, error) {
	j := Job{
		ID: r.ID, State: State(r.State), Attempt: r.Attempts, CancelRequested: r.CancelRequested == 1,
		CancelReason: r.CancelReason, Conclusion: Conclusion(r.Conclusion), ExitCode: r.ExitCode, Message: r.Message,
		LogBytes: r.LogBytes, LogTruncated: r.LogTruncated == 1, CreatedAt: r.CreatedAt,
		Spec: Spec{
			Group: r.CancelGroup, Labels: splitLabels(r.Labels), Repo: r.Repo, CloneURL: r.CloneURL, HeadSHA: r.HeadSHA,
			BaseRef: r.BaseRef, BaseSHA: r.BaseSHA, Meta: r.Meta, Timeout: time.Duration(r.TimeoutS) * time.Second,
			Trusted: r.Trusted == 1, MaxAttempts: r.MaxAttempts,
		},
	}
	j.deliveryAttempts = r.DeliveryAttempts
	if r.DedupeKey != nil {
		j.Spec.Key = *r.DedupeKey
	}
	if r.RunnerID != nil {
		j.Runner = *r.RunnerID
	}
	if r.LeaseUntilMs > 0 {
		j.LeaseUntil = time.UnixMilli(r.LeaseUntilMs)
	}
	for _, t := range []struct {
		dst *time.Time
		src *time.Time
	}{{&j.CancelRequestedAt, r.CancelRequestedAt}, {&j.KilledAt, r.KilledAt}, {&j.AssignedAt, r.AssignedAt}, {&j.FinishedAt, r.FinishedAt},
		{&j.DeliveredAt, r.DeliveredAt}} {
		if t.src != nil {
			*t.dst = *t.src
		}
	}
	if err := json.Unmarshal([]byte(r.Steps), &j.Spec.Steps); err != nil {
		return Job{}, fmt.Errorf("job %d steps: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Env), &j.Spec.Env); err != nil {
		return Job{}, fmt.Errorf("job %d env: %w", r.ID, err)
	}
	return j, nil
}

// Get returns one job.
func (q *Queue) Get(ctx context.Context, id int64) (Job, error) {
	var rows []jobRow
	if err := q.db.WithContext(ctx).Raw(`SELECT `+jobColumns+` FROM runner_jobs WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return Job{}, fmt.Errorf("get job %d: %w", id, err)
	}
	if len(rows) == 0 {
		return Job{}, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	return rows[0].job()
}

// JobFilter selects jobs for List; zero fields match everything.
type JobFilter struct {
	Repo   string
	Group  string
	SHA    string
	State  State
	Runner int64
	Limit  int // default 100
}

// List returns jobs, newest first, for the web app.
func (q *Queue) List(ctx context.Context, f JobFilter) ([]Job, error) {
	db := q.db.WithContext(ctx).Table("runner_jobs").Select(jobColumns).Order("id DESC")
	if f.Repo != "" {
		db = db.Where("repo = ?", f.Repo)
	}
	if f.Group != "" {
		db = db.Where("cancel_group = ?", f.Group)
	}
	if f.SHA != "" {
		db = db.Where("head_sha = ?", f.SHA)
	}
	if f.State != "" {
		db = db.Where("state = ?", string(f.State))
	}
	if f.Runner != 0 {
		db = db.Where("runner_id = ?", f.Runner)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var rows []jobRow
	if err := db.Limit(f.Limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]Job, 0, len(rows))
	for _, r := range rows {
		j, err := r.job()
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
