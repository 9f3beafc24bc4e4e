package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gradforge/gradforge/migrations"
	"gorm.io/gorm"
)

// Results receives every finished job's outcome; ci implements it to conclude check runs.
// Delivery is at least once: a call that fails is retried later, and two server replicas may
// race to deliver the same job, so JobFinished must be idempotent by Job.ID.
type Results interface {
	JobFinished(ctx context.Context, job Job, res Result) error
}

// CloneCredentials mints the short-lived credential a runner uses to fetch one job's
// repository (for GitHub, an installation token scoped to the repository). The runner sends
// it as HTTP basic auth for user x-access-token and redacts it from every log line.
type CloneCredentials interface {
	CloneToken(ctx context.Context, job Job) (string, error)
}

// Errors callers branch on.
var (
	ErrNotFound   = errors.New("not found")
	ErrLeaseLost  = errors.New("lease lost: the job is no longer assigned to this runner and attempt")
	ErrBadRequest = errors.New("bad request")
)

// Queue is the job queue in the database: Enqueue and Cancel for ci, claim, heartbeat, logs
// and finish for runners, and a background loop that requeues jobs whose lease lapsed and
// delivers results. Several server replicas may share one database; each runs its own Queue.
type Queue struct {
	db *gorm.DB
	pg bool

	// Lease is how long a runner holds a job without a heartbeat before it goes back to
	// the queue.
	Lease time.Duration
	// HeartbeatEvery is how often runners are told to renew their lease; it is also how quickly
	// a cancel reaches them.
	HeartbeatEvery time.Duration
	// MaxAttempts is the default number of leases a job may have.
	MaxAttempts int
	// Hold is the longest a long poll for a job is held open.
	Hold time.Duration
	// Poll is how often a held long poll looks at the database even when this replica saw
	// no new job (jobs enqueued through other replicas, or requeued leases).
	Poll time.Duration
	// MaxLogBytes bounds the stored log of each attempt; later chunks are dropped and the
	// log ends with a note saying so.
	MaxLogBytes int64
	// Retention is how long the logs and result files of finished jobs are kept (the job
	// rows themselves stay, for history); zero keeps them forever.
	Retention time.Duration
	// Log receives the queue's own messages.
	Log *slog.Logger

	replica string // tells this replica's notifications from others'
	results atomic.Pointer[Results]
	creds   atomic.Pointer[CloneCredentials]

	mu       sync.Mutex
	waiters  []*waiter
	stopping bool
}

// MaxChunkBytes bounds one log chunk.
const MaxChunkBytes = 64 << 10

// NewQueue returns a Queue on a migrated database with production defaults: 2-minute leases,
// 2-second heartbeats, 3 attempts, 30-second long polls, 8 MiB of log per attempt, and logs
// kept for 30 days.
func NewQueue(db *gorm.DB) *Queue {
	return &Queue{
		db: db, pg: migrations.DriverOf(db) == migrations.Postgres,
		Lease: 2 * time.Minute, HeartbeatEvery: 2 * time.Second, MaxAttempts: 3,
		Hold: 30 * time.Second, Poll: time.Second, MaxLogBytes: 8 << 20, Retention: 30 * 24 * time.Hour,
		Log: slog.Default(), replica: newReplicaID(),
	}
}

// SetResults sets where finished jobs are delivered. Jobs that finish before it is set are
// delivered by the background loop once it is.
func (q *Queue) SetResults(r Results) { q.results.Store(&r) }

// SetCloneCredentials sets who mints per-job clone tokens; without one runners fetch
// anonymously.
func (q *Queue) SetCloneCredentials(c CloneCredentials) { q.creds.Store(&c) }

func nowMS() int64 { return time.Now().UnixMilli() }

// Enqueue adds a job, or returns the existing one when a job with the same Spec.Key exists.
func (q *Queue) Enqueue(ctx context.Context, spec Spec) (Job, error) {
	if err := spec.validate(q.MaxAttempts); err != nil {
		return Job{}, fmt.Errorf("enqueue: %w: %w", ErrBadRequest, err)
	}
	var key any
	if spec.Key != "" {
		key = spec.Key
	}
	var id int64
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []int64
		err := tx.Raw(`INSERT INTO runner_jobs (dedupe_key, cancel_group, labels, repo, clone_url, head_sha, base_ref,
			base_sha, steps, env, meta, timeout_s, trusted, max_attempts, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
			key, spec.Group, joinLabels(spec.Labels), spec.Repo, spec.CloneURL, spec.HeadSHA, spec.BaseRef, spec.BaseSHA,
			mustJSON(spec.Steps), mustJSON(spec.Env), spec.Meta, int64(spec.Timeout.Round(time.Second)/time.Second),
			b2i(spec.Trusted), spec.MaxAttempts, time.Now().UTC()).Scan(&ids).Error
		if err != nil {
			return err
		}
		if len(ids) == 0 { // the key exists: dedupe
			return tx.Raw(`SELECT id FROM runner_jobs WHERE dedupe_key = ?`, spec.Key).Scan(&id).Error
		}
		id = ids[0]
		for _, l := range spec.Labels {
			if err := tx.Exec(`INSERT INTO runner_job_labels (job_id, label) VALUES (?, ?)`, id, l).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("enqueue job for %s@%s: %w", spec.Repo, spec.HeadSHA, err)
	}
	j, err := q.Get(ctx, id)
	if err == nil && j.State == Queued {
		q.wake(j.Spec.Labels, j.Spec.Trusted)
		q.notify(ctx, j.Spec.Trusted, j.Spec.Labels, false)
	}
	return j, err
}

// Cancel cancels one job: a queued job concludes as cancelled at once; a running job is
// flagged and its runner kills it after its next heartbeat; a finished job is left alone.
func (q *Queue) Cancel(ctx context.Context, id int64, reason string) error {
	n, err := q.cancelWhere(ctx, reason, "id = ?", id)
	if err != nil {
		return fmt.Errorf("cancel job %d: %w", id, err)
	}
	if n == 0 {
		if _, err := q.Get(ctx, id); err != nil {
			return fmt.Errorf("cancel job %d: %w", id, err)
		}
	}
	return nil
}

// CancelGroup cancels every unfinished job of a group whose head is not keepSHA (pass "" to
// cancel them all), e.g. the previous commit's jobs when a pull request gets a new push.
// It returns how many jobs it cancelled or flagged.
func (q *Queue) CancelGroup(ctx context.Context, group, keepSHA, reason string) (int, error) {
	if group == "" {
		return 0, fmt.Errorf("cancel group: %w: empty group", ErrBadRequest)
	}
	n, err := q.cancelWhere(ctx, reason, "cancel_group = ? AND head_sha <> ?", group, keepSHA)
	if err != nil {
		return 0, fmt.Errorf("cancel group %q: %w", group, err)
	}
	return n, nil
}

func (q *Queue) cancelWhere(ctx context.Context, reason, where string, args ...any) (int, error) {
	now := time.Now().UTC()
	db := q.db.WithContext(ctx)
	queued := db.Exec(`UPDATE runner_jobs SET state = 'finished', conclusion = 'cancelled', cancel_requested = 1,
		cancel_reason = ?, cancel_requested_at = ?, finished_at = ?, message = ?
		WHERE state = 'queued' AND `+where, append([]any{reason, now, now, "cancelled before it started: " + reason}, args...)...)
	if queued.Error != nil {
		return 0, queued.Error
	}
	running := db.Exec(`UPDATE runner_jobs SET cancel_requested = 1, cancel_reason = ?, cancel_requested_at = ?
		WHERE state = 'running' AND cancel_requested = 0 AND `+where, append([]any{reason, now}, args...)...)
	if running.Error != nil {
		return 0, running.Error
	}
	if queued.RowsAffected > 0 {
		q.deliverAll(ctx)
	}
	return int(queued.RowsAffected + running.RowsAffected), nil
}

// Assignment is a job handed to a runner for one attempt.
type Assignment struct {
	Job        Job
	CloneToken string
}

// claim atomically assigns the oldest queued job the runner may take: all the job's labels
// among the runner's, and untrusted jobs only to runners that allow them. On PostgreSQL
// concurrent claims skip each other's locked rows; on SQLite the single UPDATE statement is
// the claim and SQLite runs writers one at a time.
func (q *Queue) claim(ctx context.Context, r Runner) (*Assignment, error) {
	labelCond := "NOT EXISTS (SELECT 1 FROM runner_job_labels l WHERE l.job_id = j.id)"
	now := nowMS()
	args := []any{r.ID, now + q.Lease.Milliseconds(), time.Now().UTC(), now + q.Lease.Milliseconds(), b2i(r.AllowUntrusted)}
	if len(r.Labels) > 0 {
		labelCond = "NOT EXISTS (SELECT 1 FROM runner_job_labels l WHERE l.job_id = j.id AND l.label NOT IN ?)"
		args = append(args, r.Labels)
	}
	lock := ""
	if q.pg {
		lock = " FOR UPDATE OF j SKIP LOCKED"
	}
	var ids []int64
	err := q.db.WithContext(ctx).Raw(`UPDATE runner_jobs SET state = 'running', runner_id = ?, attempts = attempts + 1,
		lease_until_ms = ?, assigned_at = ?, log_bytes = 0, log_truncated = 0, deadline_ms = ? + timeout_s * 1000
		WHERE state = 'queued' AND id = (SELECT j.id FROM runner_jobs j
			WHERE j.state = 'queued' AND (j.trusted = 1 OR ? = 1) AND `+labelCond+`
			ORDER BY j.id LIMIT 1`+lock+`)
		RETURNING id`, args...).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("claim a job for runner %d: %w", r.ID, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	j, err := q.Get(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	a := &Assignment{Job: j}
	if c := q.creds.Load(); c != nil && *c != nil {
		tok, err := (*c).CloneToken(ctx, j)
		if err != nil {
			// Without a token the runner cannot fetch the code: count it as an attempt that
			// failed for infrastructure reasons (requeued while attempts remain).
			q.Log.ErrorContext(ctx, "mint clone token", "job", j.ID, "repo", j.Spec.Repo, "err", err)
			if err := q.Finish(ctx, r.ID, j.ID, j.Attempt, Report{Conclusion: InfraFailure,
				Message: fmt.Sprintf("the forge could not mint a token to fetch %s: %v", j.Spec.Repo, err)}); err != nil {
				return nil, fmt.Errorf("give back job %d after a clone token failure: %w", j.ID, err)
			}
			return nil, nil
		}
		a.CloneToken = tok
	}
	return a, nil
}

// waiter is a held long poll waiting for a job its runner can take.
type waiter struct {
	labels    []string
	untrusted bool
	ch        chan struct{}
	woken     bool
}

func (w *waiter) fits(labels []string, trusted bool) bool {
	if !trusted && !w.untrusted {
		return false
	}
	for _, l := range labels {
		found := false
		for _, have := range w.labels {
			found = found || have == l
		}
		if !found {
			return false
		}
	}
	return true
}

// wake wakes the longest-waiting poll that could take a job with these labels, so one new
// job costs one claim query rather than one per waiting runner.
func (q *Queue) wake(labels []string, trusted bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiters {
		if w.fits(labels, trusted) {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			w.woken = true
			close(w.ch)
			return
		}
	}
}

// wakeAll wakes every held poll, after events that may have freed several jobs at once.
func (q *Queue) wakeAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.waiters {
		w.woken = true
		close(w.ch)
	}
	q.waiters = nil
}

// addWaiter registers a held poll; it returns nil when the queue is stopping.
func (q *Queue) addWaiter(r Runner) *waiter {
	w := &waiter{labels: r.Labels, untrusted: r.AllowUntrusted, ch: make(chan struct{})}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopping {
		return nil
	}
	q.waiters = append(q.waiters, w)
	return w
}

// Stop makes held and later long polls return at once with no job, so a server that is
// shutting down is not kept waiting by runners' 30-second polls. Everything else keeps
// working until the server stops.
func (q *Queue) Stop() {
	q.mu.Lock()
	q.stopping = true
	q.mu.Unlock()
	q.wakeAll()
}

// dropWaiter removes w and reports whether it had been woken.
func (q *Queue) dropWaiter(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	return w.woken
}

// Next is the long poll: it returns a job for the runner as soon as one it may take is
// queued, or nil after hold (at most q.Hold) or when ctx ends.
func (q *Queue) Next(ctx context.Context, r Runner, hold time.Duration) (*Assignment, error) {
	if hold <= 0 || hold > q.Hold {
		hold = q.Hold
	}
	deadline := time.NewTimer(hold)
	defer deadline.Stop()
	for {
		// Register before looking, so a job enqueued between the look and the wait still
		// wakes this poll.
		w := q.addWaiter(r)
		if w == nil {
			return nil, nil
		}
		a, err := q.claim(ctx, r)
		if err != nil || a != nil {
			if q.dropWaiter(w) && a != nil {
				// This poll was woken for a job but took another; pass the wake on.
				q.wakeAll()
			}
			return a, err
		}
		poll := time.NewTimer(q.Poll/2 + rand.N(q.Poll))
		select {
		case <-w.ch:
		case <-poll.C:
		case <-deadline.C:
			q.dropWaiter(w)
			poll.Stop()
			return nil, nil
		case <-ctx.Done():
			q.dropWaiter(w)
			poll.Stop()
			return nil, nil
		}
		poll.Stop()
		q.dropWaiter(w)
	}
}

// Release puts a job the runner holds back in the queue at once, without counting the
// attempt and dropping that attempt's log: the runner is stopping (or never received the
// job because its poll hung up), and waiting for the lease to lapse would only delay it.
func (q *Queue) Release(ctx context.Context, runnerID, jobID int64, attempt int) error {
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE runner_jobs SET state = 'queued', attempts = attempts - 1, lease_until_ms = 0
			WHERE id = ? AND runner_id = ? AND attempts = ? AND state = 'running'`, jobID, runnerID, attempt)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrLeaseLost
		}
		// The attempt number is used again by the next runner; its log starts afresh.
		return tx.Exec(`DELETE FROM runner_job_logs WHERE job_id = ? AND attempt = ?`, jobID, attempt).Error
	})
	if err != nil {
		return fmt.Errorf("release job %d attempt %d: %w", jobID, attempt, err)
	}
	j, err := q.Get(ctx, jobID)
	if err == nil {
		q.wake(j.Spec.Labels, j.Spec.Trusted)
		q.notify(ctx, j.Spec.Trusted, j.Spec.Labels, false)
	}
	return nil
}

// HeartbeatAnswer tells a runner whether to keep going.
type HeartbeatAnswer struct {
	Cancel     bool
	Reason     string
	LeaseUntil time.Time
}

// Heartbeat renews the lease of a job the runner holds and says whether it was cancelled.
// It returns ErrLeaseLost when the job is no longer this runner's (the lease lapsed and the
// job moved on), and the runner must stop it.
func (q *Queue) Heartbeat(ctx context.Context, runnerID, jobID int64, attempt int) (HeartbeatAnswer, error) {
	until := nowMS() + q.Lease.Milliseconds()
	res := q.db.WithContext(ctx).Exec(`UPDATE runner_jobs SET lease_until_ms = ?
		WHERE id = ? AND runner_id = ? AND attempts = ? AND state = 'running'`, until, jobID, runnerID, attempt)
	if res.Error != nil {
		return HeartbeatAnswer{}, fmt.Errorf("heartbeat job %d: %w", jobID, res.Error)
	}
	if res.RowsAffected == 0 {
		return HeartbeatAnswer{}, fmt.Errorf("heartbeat job %d attempt %d: %w", jobID, attempt, ErrLeaseLost)
	}
	var row struct {
		CancelRequested int
		CancelReason    string
	}
	if err := q.db.WithContext(ctx).Raw(`SELECT cancel_requested, cancel_reason FROM runner_jobs WHERE id = ?`, jobID).Scan(&row).Error; err != nil {
		return HeartbeatAnswer{}, fmt.Errorf("heartbeat job %d: %w", jobID, err)
	}
	return HeartbeatAnswer{Cancel: row.CancelRequested == 1, Reason: row.CancelReason, LeaseUntil: time.UnixMilli(until)}, nil
}

// AppendLog stores one numbered log chunk of a running job. A chunk already stored under
// the same sequence number is ignored, so runners may retry freely. Once the attempt's log
// reaches MaxLogBytes it stores a note instead and reports truncated, and the runner stops
// sending.
func (q *Queue) AppendLog(ctx context.Context, runnerID, jobID int64, attempt, seq int, data []byte) (truncated bool, err error) {
	if len(data) > MaxChunkBytes {
		return false, fmt.Errorf("log chunk of %d bytes: %w: chunks hold at most %d", len(data), ErrBadRequest, MaxChunkBytes)
	}
	if seq < 0 {
		return false, fmt.Errorf("log chunk %d: %w: negative sequence number", seq, ErrBadRequest)
	}
	err = q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row struct {
			LogBytes     int64
			LogTruncated int
		}
		res := tx.Raw(`SELECT log_bytes, log_truncated FROM runner_jobs
			WHERE id = ? AND runner_id = ? AND attempts = ? AND state = 'running'`, jobID, runnerID, attempt).Scan(&row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrLeaseLost
		}
		if row.LogTruncated == 1 {
			truncated = true
			return nil
		}
		if row.LogBytes+int64(len(data)) > q.MaxLogBytes {
			truncated = true
			data = fmt.Appendf(nil, "\n[gradforge: log truncated after %d bytes]\n", row.LogBytes)
		}
		ins := tx.Exec(`INSERT INTO runner_job_logs (job_id, attempt, seq, data, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (job_id, attempt, seq) DO NOTHING`, jobID, attempt, seq, data, time.Now().UTC())
		if ins.Error != nil {
			return ins.Error
		}
		if ins.RowsAffected == 0 {
			return nil // a retry of a stored chunk
		}
		return tx.Exec(`UPDATE runner_jobs SET log_bytes = log_bytes + ?, log_truncated = ? WHERE id = ?`,
			len(data), b2i(truncated), jobID).Error
	})
	if err != nil {
		return false, fmt.Errorf("append log chunk %d of job %d: %w", seq, jobID, err)
	}
	return truncated, nil
}

// LogChunk is one stored piece of a job's log.
type LogChunk struct {
	Attempt int
	Seq     int
	Data    []byte
	At      time.Time
}

// Logs returns a job attempt's log chunks with sequence numbers above afterSeq, in order;
// attempt 0 means the latest attempt. The web app polls it with the last Seq it showed to
// follow a running job.
func (q *Queue) Logs(ctx context.Context, jobID int64, attempt, afterSeq int) ([]LogChunk, error) {
	if attempt == 0 {
		j, err := q.Get(ctx, jobID)
		if err != nil {
			return nil, err
		}
		attempt = j.Attempt
	}
	var rows []struct {
		Attempt   int
		Seq       int
		Data      []byte
		CreatedAt time.Time
	}
	err := q.db.WithContext(ctx).Raw(`SELECT attempt, seq, data, created_at FROM runner_job_logs
		WHERE job_id = ? AND attempt = ? AND seq > ? ORDER BY seq`, jobID, attempt, afterSeq).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("logs of job %d: %w", jobID, err)
	}
	out := make([]LogChunk, len(rows))
	for i, r := range rows {
		out[i] = LogChunk{Attempt: r.Attempt, Seq: r.Seq, Data: r.Data, At: r.CreatedAt}
	}
	return out, nil
}

// Report is what a runner says when a job attempt ends.
type Report struct {
	Conclusion Conclusion
	ExitCode   int
	Message    string
	Files      map[string][]byte
	// KilledAt is when the runner signalled the job after a cancel or timeout.
	KilledAt time.Time
}

// MaxResultBytes bounds the result files of one job.
const MaxResultBytes = 16 << 20

// Finish records the end of a job attempt and hands the result to ci. An infrastructure
// failure goes back to the queue instead while attempts remain. Finishing the same attempt
// twice is a no-op.
func (q *Queue) Finish(ctx context.Context, runnerID, jobID int64, attempt int, rep Report) error {
	if !rep.Conclusion.valid() {
		return fmt.Errorf("finish job %d: %w: unknown conclusion %q", jobID, ErrBadRequest, rep.Conclusion)
	}
	size := 0
	for _, b := range rep.Files {
		size += len(b)
	}
	if size > MaxResultBytes {
		return fmt.Errorf("finish job %d: %w: %d bytes of results, at most %d", jobID, ErrBadRequest, size, MaxResultBytes)
	}
	var killed any
	if !rep.KilledAt.IsZero() {
		killed = rep.KilledAt.UTC()
	}
	if rep.Conclusion == InfraFailure {
		// The runner could not run the job (fetch failed, disk full…): another runner, or
		// this one later, may well succeed, so it goes back to the queue while attempts remain.
		retry := q.db.WithContext(ctx).Exec(`UPDATE runner_jobs SET state = 'queued', lease_until_ms = 0, message = ?
			WHERE id = ? AND runner_id = ? AND attempts = ? AND state = 'running' AND attempts < max_attempts
			AND cancel_requested = 0`, "attempt "+strconv.Itoa(attempt)+": "+rep.Message, jobID, runnerID, attempt)
		if retry.Error != nil {
			return fmt.Errorf("requeue job %d after an infrastructure failure: %w", jobID, retry.Error)
		}
		if retry.RowsAffected == 1 {
			q.Log.WarnContext(ctx, "runner could not run the job; requeued", "job", jobID, "attempt", attempt, "reason", rep.Message)
			if j, err := q.Get(ctx, jobID); err == nil {
				q.wake(j.Spec.Labels, j.Spec.Trusted)
				q.notify(ctx, j.Spec.Trusted, j.Spec.Labels, false)
			}
			return nil
		}
	}
	res := q.db.WithContext(ctx).Exec(`UPDATE runner_jobs SET state = 'finished', conclusion = ?, exit_code = ?, message = ?,
		results = ?, killed_at = ?, finished_at = ?
		WHERE id = ? AND runner_id = ? AND attempts = ? AND state = 'running'`,
		rep.Conclusion, rep.ExitCode, rep.Message, []byte(mustJSON(rep.Files)), killed, time.Now().UTC(), jobID, runnerID, attempt)
	if res.Error != nil {
		return fmt.Errorf("finish job %d: %w", jobID, res.Error)
	}
	if res.RowsAffected == 0 {
		j, err := q.Get(ctx, jobID)
		if err != nil {
			return fmt.Errorf("finish job %d: %w", jobID, err)
		}
		if j.State == Finished && j.Runner == runnerID && j.Attempt == attempt &&
			j.Conclusion == rep.Conclusion && j.ExitCode == rep.ExitCode && j.Message == rep.Message {
			return nil // a retried finish
		}
		return fmt.Errorf("finish job %d attempt %d: %w", jobID, attempt, ErrLeaseLost)
	}
	q.deliver(ctx, jobID)
	return nil
}

// Reap concludes or requeues running jobs whose lease lapsed: back to the queue while
// attempts remain, otherwise finished as an infrastructure failure (or as cancelled when a
// cancel was pending). Jobs still running a lease past their timeout conclude as timed out,
// whatever their runner says. It returns how many jobs it moved.
func (q *Queue) Reap(ctx context.Context) (int, error) {
	now, ms := time.Now().UTC(), nowMS()
	db := q.db.WithContext(ctx)
	overdue := db.Exec(`UPDATE runner_jobs SET state = 'finished', conclusion = 'timed_out', finished_at = ?, exit_code = -1,
		message = 'the runner did not report the job within its timeout'
		WHERE state = 'running' AND deadline_ms > 0 AND deadline_ms < ?`, now, ms)
	if overdue.Error != nil {
		return 0, fmt.Errorf("conclude overdue jobs: %w", overdue.Error)
	}
	requeued := db.Exec(`UPDATE runner_jobs SET state = 'queued', lease_until_ms = 0
		WHERE state = 'running' AND lease_until_ms < ? AND cancel_requested = 0 AND attempts < max_attempts`, ms)
	if requeued.Error != nil {
		return 0, fmt.Errorf("requeue lapsed leases: %w", requeued.Error)
	}
	failed := db.Exec(`UPDATE runner_jobs SET state = 'finished', conclusion = 'infra_failure', finished_at = ?,
		message = 'the runner stopped renewing its lease on every attempt (runner died or lost the network)'
		WHERE state = 'running' AND lease_until_ms < ? AND cancel_requested = 0 AND attempts >= max_attempts`, now, ms)
	if failed.Error != nil {
		return 0, fmt.Errorf("conclude lapsed leases: %w", failed.Error)
	}
	cancelled := db.Exec(`UPDATE runner_jobs SET state = 'finished', conclusion = 'cancelled', finished_at = ?,
		message = 'cancelled; the runner stopped renewing its lease'
		WHERE state = 'running' AND lease_until_ms < ? AND cancel_requested = 1`, now, ms)
	if cancelled.Error != nil {
		return 0, fmt.Errorf("conclude cancelled lapsed leases: %w", cancelled.Error)
	}
	if requeued.RowsAffected > 0 {
		q.Log.InfoContext(ctx, "requeued jobs whose lease lapsed", "jobs", requeued.RowsAffected)
		q.wakeAll()
		q.notify(ctx, false, nil, true)
	}
	if overdue.RowsAffected+failed.RowsAffected+cancelled.RowsAffected > 0 {
		q.deliverAll(ctx)
	}
	return int(overdue.RowsAffected + requeued.RowsAffected + failed.RowsAffected + cancelled.RowsAffected), nil
}

// deliverAll hands every finished, undelivered job to Results (see deliver).
func (q *Queue) deliverAll(ctx context.Context) {
	if r := q.results.Load(); r == nil || *r == nil {
		return
	}
	var ids []int64
	if err := q.db.WithContext(ctx).Raw(`SELECT id FROM runner_jobs WHERE state = 'finished' AND delivered_at IS NULL
		AND delivery_claim_ms < ? ORDER BY id LIMIT 100`, nowMS()).Scan(&ids).Error; err != nil {
		q.Log.ErrorContext(ctx, "list undelivered jobs", "err", err)
		return
	}
	q.deliver(ctx, ids...)
}

// deliver hands finished jobs to Results. Each delivery is claimed first (for a minute), so
// concurrent rounds in this or another replica don't deliver a job twice; a failed delivery
// is retried after a delay that doubles with each failure (1 s up to 10 min), and a replica
// that dies mid-delivery leaves a claim that expires.
func (q *Queue) deliver(ctx context.Context, ids ...int64) {
	r := q.results.Load()
	if r == nil || *r == nil {
		return
	}
	for _, id := range ids {
		ms := nowMS()
		claim := q.db.WithContext(ctx).Exec(`UPDATE runner_jobs SET delivery_claim_ms = ?
			WHERE id = ? AND delivered_at IS NULL AND delivery_claim_ms < ?`, ms+time.Minute.Milliseconds(), id, ms)
		if claim.Error != nil {
			q.Log.ErrorContext(ctx, "claim job delivery", "job", id, "err", claim.Error)
			continue
		}
		if claim.RowsAffected == 0 {
			continue // another round has it
		}
		j, err := q.Get(ctx, id)
		var res Result
		if err == nil {
			res, err = q.result(ctx, id)
		}
		if err == nil {
			err = (*r).JobFinished(ctx, j, res)
		}
		mark := `UPDATE runner_jobs SET delivered_at = ? WHERE id = ?`
		args := []any{time.Now().UTC(), id}
		if err != nil {
			wait := min(time.Second<<min(j.deliveryAttempts, 10), 10*time.Minute)
			q.Log.WarnContext(ctx, "deliver job result; will retry", "job", id, "in", wait, "err", err)
			mark = `UPDATE runner_jobs SET delivery_claim_ms = ?, delivery_attempts = delivery_attempts + 1 WHERE id = ?`
			args = []any{nowMS() + wait.Milliseconds(), id}
		}
		if err := q.db.WithContext(context.WithoutCancel(ctx)).Exec(mark, args...).Error; err != nil {
			q.Log.ErrorContext(ctx, "record job delivery", "job", id, "err", err)
		}
	}
}

func (q *Queue) result(ctx context.Context, id int64) (Result, error) {
	var row struct {
		Conclusion string
		ExitCode   int
		Message    string
		Results    []byte
	}
	if err := q.db.WithContext(ctx).Raw(`SELECT conclusion, exit_code, message, results FROM runner_jobs WHERE id = ?`, id).Scan(&row).Error; err != nil {
		return Result{}, fmt.Errorf("result of job %d: %w", id, err)
	}
	res := Result{Conclusion: Conclusion(row.Conclusion), ExitCode: row.ExitCode, Message: row.Message}
	if len(row.Results) > 0 {
		if err := json.Unmarshal(row.Results, &res.Files); err != nil {
			return Result{}, fmt.Errorf("result files of job %d: %w", id, err)
		}
	}
	return res, nil
}

// Result returns a finished job's result.
func (q *Queue) Result(ctx context.Context, id int64) (Result, error) { return q.result(ctx, id) }

// Run reaps lapsed leases and retries deliveries every interval until ctx ends. On
// PostgreSQL it also listens for jobs enqueued through other replicas.
func (q *Queue) Run(ctx context.Context, interval time.Duration) {
	if q.pg {
		done := make(chan struct{})
		go func() { defer close(done); q.listen(ctx) }()
		defer func() { <-done }()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var pruned time.Time
	for {
		if _, err := q.Reap(ctx); err != nil && ctx.Err() == nil {
			q.Log.ErrorContext(ctx, "reap leases", "err", err)
		}
		q.deliverAll(ctx) // retries deliveries that failed earlier
		if q.Retention > 0 && time.Since(pruned) > time.Hour {
			pruned = time.Now()
			if n, err := q.Prune(ctx, pruned.Add(-q.Retention)); err != nil && ctx.Err() == nil {
				q.Log.ErrorContext(ctx, "prune old job logs", "err", err)
			} else if n > 0 {
				q.Log.InfoContext(ctx, "pruned logs and results of old jobs", "jobs", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune drops the logs and result files of jobs that finished and were delivered before
// the given time, and returns how many jobs it pruned.
func (q *Queue) Prune(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		old := `SELECT id FROM runner_jobs WHERE state = 'finished' AND delivered_at IS NOT NULL AND finished_at < ?`
		if err := tx.Exec(`DELETE FROM runner_job_logs WHERE job_id IN (`+old+`)`, before.UTC()).Error; err != nil {
			return err
		}
		res := tx.Exec(`UPDATE runner_jobs SET results = NULL, log_bytes = 0 WHERE id IN (`+old+`) AND results IS NOT NULL`, before.UTC())
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("prune jobs finished before %s: %w", before.Format(time.RFC3339), err)
	}
	return int(n), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
