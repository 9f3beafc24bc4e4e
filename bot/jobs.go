package bot

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gradforge/gradforge/migrations"
	"gorm.io/gorm"
)

// Permanent marks an error that retrying cannot fix (a payload that does not parse, an event
// the bot cannot act on); the job fails at once instead of backing off.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Handler processes one delivery. It must be idempotent: a delivery runs again after a
// failure, and after a crash between the work and the record that it was done.
type Handler func(ctx context.Context, d Delivery) error

// Workers runs the jobs of stored deliveries. Any number of processes may run Workers on one
// database: a job is claimed atomically and its claim is a lease, so a job whose process died
// runs again when the lease expires, and a restart resumes every acknowledged delivery.
type Workers struct {
	DB      *gorm.DB
	Handler Handler
	Log     *slog.Logger
	// N is the number of concurrent workers (default 16: a job mostly waits on GitHub's API).
	N int
	// Lease is how long a claim holds without news: the worker renews it every third of it
	// while the handler runs, so a job whose process died is retried within one lease
	// (default 30s).
	Lease time.Duration
	// Timeout bounds one run of the handler (default 10 minutes).
	Timeout time.Duration
	// Poll is how often idle workers look for due jobs when nothing woke them (default 1s).
	Poll time.Duration
	// Backoff is the first retry delay, doubled each attempt up to MaxBackoff (defaults 2s
	// and 10 minutes); MaxAttempts ends retrying (default 10).
	Backoff, MaxBackoff time.Duration
	MaxAttempts         int
	// Failed, when set, is told about a job that failed for good (best effort), so people
	// can hear that their command was not carried out.
	Failed func(ctx context.Context, d Delivery, err error)
	// Retention is how long finished jobs, their deliveries and command records are kept
	// (default 30 days; negative keeps them forever). GitHub redelivers only deliveries of the
	// last three days, so deduplication needs far less.
	Retention time.Duration

	owner string
	wake  chan struct{}
	once  sync.Once
}

// Job is a claimed job.
type Job struct {
	ID       int64
	Attempts int
	Delivery Delivery
}

func (w *Workers) init() {
	w.once.Do(func() {
		if w.N <= 0 {
			w.N = 16
		}
		if w.Lease <= 0 {
			w.Lease = 30 * time.Second
		}
		if w.Timeout <= 0 {
			w.Timeout = 10 * time.Minute
		}
		if w.Poll <= 0 {
			w.Poll = time.Second
		}
		if w.Backoff <= 0 {
			w.Backoff = 2 * time.Second
		}
		if w.MaxBackoff <= 0 {
			w.MaxBackoff = 10 * time.Minute
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = 10
		}
		if w.Retention == 0 {
			w.Retention = 30 * 24 * time.Hour
		}
		if w.Log == nil {
			w.Log = slog.Default()
		}
		var b [6]byte
		crand.Read(b[:])
		w.owner = hex.EncodeToString(b[:])
		w.wake = make(chan struct{}, 1)
	})
}

// Wake tells idle workers that new jobs were stored.
func (w *Workers) Wake() {
	w.init()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx is done and they have finished their current jobs.
func (w *Workers) Run(ctx context.Context) {
	w.init()
	var wg sync.WaitGroup
	if w.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.janitor(ctx)
		}()
	}
	for i := 0; i < w.N; i++ {
		// One worker polls; the others sleep until woken (by the intake, or by a sibling that
		// found work), so idle workers do not each query the database every Poll.
		every := w.Poll
		if i > 0 {
			every = 30 * w.Poll
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, every)
		}()
	}
	wg.Wait()
}

func (w *Workers) loop(ctx context.Context, every time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	for ctx.Err() == nil {
		job, err := w.Claim(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.ErrorContext(ctx, "claim bot job", "err", err)
		}
		if job != nil {
			w.run(ctx, job)
			w.Wake() // there may be more; let a sibling look too
			continue
		}
		t.Reset(every)
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-t.C:
		}
	}
}

// Claim reserves the oldest due job, or returns nil when none is due.
func (w *Workers) Claim(ctx context.Context) (*Job, error) {
	w.init()
	now := time.Now().UTC()
	skip := ""
	if migrations.DriverOf(w.DB) == migrations.Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	// On SQLite the single UPDATE is atomic because writers are serialised; on PostgreSQL the
	// row lock taken by the subquery makes concurrent claimers skip to the next job.
	var rows []struct {
		ID         int64
		DeliveryID string
		Attempts   int
	}
	err := w.DB.WithContext(ctx).Raw(`UPDATE bot_jobs SET state = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?, updated_at = ?
		WHERE id = (SELECT id FROM bot_jobs WHERE (state = 'queued' AND run_after <= ?) OR (state = 'running' AND locked_until < ?)
		ORDER BY run_after, id LIMIT 1`+skip+`)
		RETURNING id, delivery_id, attempts`, w.owner, now.Add(w.Lease), now, now, now).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	j := &Job{ID: rows[0].ID, Attempts: rows[0].Attempts}
	var d struct {
		DeliveryID string
		Event      string
		Payload    []byte
	}
	if err := w.DB.WithContext(ctx).Raw(`SELECT delivery_id, event, payload FROM bot_deliveries WHERE delivery_id = ?`, rows[0].DeliveryID).Scan(&d).Error; err != nil {
		return nil, fmt.Errorf("load delivery %s: %w", rows[0].DeliveryID, err)
	}
	j.Delivery = Delivery{ID: d.DeliveryID, Event: d.Event, Payload: d.Payload}
	j.Delivery.ParseHead() // for the log lines; a bad payload is the handler's to report
	return j, nil
}

func (w *Workers) run(ctx context.Context, j *Job) {
	hctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	stop := w.heartbeat(hctx, j, cancel)
	start := time.Now()
	err := w.call(hctx, j)
	stop()
	log := w.Log.With("delivery", j.Delivery.ID, "event", j.Delivery.Event, "action", j.Delivery.Action, "attempt", j.Attempts, "took", time.Since(start))
	// The outcome is recorded even while shutting down, so a finished job is not rerun.
	dbctx := context.WithoutCancel(ctx)
	now := time.Now().UTC()
	var perm *permanentError
	switch {
	case err == nil:
		err = w.finish(dbctx, j, "done", now, "")
		log.DebugContext(ctx, "bot job done")
	case ctx.Err() != nil:
		// Shutting down: hand the job back at once, without counting the attempt.
		log.InfoContext(dbctx, "bot job interrupted by shutdown; released", "err", err)
		err = w.release(dbctx, j)
	case errors.As(err, &perm) || j.Attempts >= w.MaxAttempts:
		log.ErrorContext(ctx, "bot job failed for good", "err", err)
		if w.Failed != nil {
			w.Failed(dbctx, j.Delivery, err)
		}
		err = w.finish(dbctx, j, "failed", now, err.Error())
	default:
		delay := w.backoff(j.Attempts)
		log.WarnContext(ctx, "bot job failed; will retry", "err", err, "in", delay)
		err = w.finish(dbctx, j, "queued", now.Add(delay), err.Error())
	}
	if err != nil {
		log.ErrorContext(ctx, "record bot job outcome", "err", err)
	}
}

// heartbeat renews the job's lease while the handler runs and cancels the handler if the
// lease was lost (another worker took the job after this one stalled). The returned stop
// waits for the renewer to finish.
func (w *Workers) heartbeat(ctx context.Context, j *Job, cancel context.CancelFunc) (stop func()) {
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			res := w.DB.WithContext(ctx).Exec(`UPDATE bot_jobs SET locked_until = ? WHERE id = ? AND locked_by = ? AND attempts = ? AND state = 'running'`,
				time.Now().UTC().Add(w.Lease), j.ID, w.owner, j.Attempts)
			if res.Error == nil && res.RowsAffected == 0 {
				w.Log.WarnContext(ctx, "bot job lease lost; stopping its handler", "job", j.ID)
				cancel()
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// call runs the handler, turning a panic into an error so one bad payload cannot stop a worker.
func (w *Workers) call(ctx context.Context, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return w.Handler(ctx, j.Delivery)
}

func (w *Workers) backoff(attempt int) time.Duration {
	d := w.Backoff
	for i := 1; i < attempt && d < w.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.MaxBackoff)
	return d/2 + rand.N(d/2+1) // jitter, so retries of a burst do not arrive together
}

// finish records a job's outcome, only while this worker still holds it.
func (w *Workers) finish(ctx context.Context, j *Job, state string, runAfter time.Time, errText string) error {
	if len(errText) > 4000 {
		errText = errText[:4000]
	}
	now := time.Now().UTC()
	res := w.DB.WithContext(ctx).Exec(`UPDATE bot_jobs SET state = ?, run_after = ?, last_error = ?, locked_by = '', locked_until = NULL, updated_at = ?
		WHERE id = ? AND locked_by = ? AND attempts = ?`, state, runAfter, errText, now, j.ID, w.owner, j.Attempts)
	if res.Error != nil {
		return fmt.Errorf("record job %d as %s: %w", j.ID, state, res.Error)
	}
	if res.RowsAffected == 0 {
		w.Log.WarnContext(ctx, "bot job lease lost before it finished; another worker owns it now", "job", j.ID)
	}
	return nil
}

// janitor purges old records hourly until ctx is done.
func (w *Workers) janitor(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := w.Purge(ctx, time.Now().UTC().Add(-w.Retention)); err != nil && ctx.Err() == nil {
			w.Log.ErrorContext(ctx, "purge old bot jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Purge deletes finished jobs last updated before cutoff, deliveries received before it that
// have no job left, and command records made before it.
func (w *Workers) Purge(ctx context.Context, cutoff time.Time) error {
	return w.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, q := range []string{
			`DELETE FROM bot_jobs WHERE state IN ('done', 'failed') AND updated_at < ?`,
			`DELETE FROM bot_deliveries WHERE received_at < ? AND delivery_id NOT IN (SELECT delivery_id FROM bot_jobs)`,
			`DELETE FROM bot_commands WHERE created_at < ?`,
		} {
			if err := tx.Exec(q, cutoff).Error; err != nil {
				return fmt.Errorf("purge: %w", err)
			}
		}
		return nil
	})
}

// release returns a claimed job to the queue as if it had not been tried.
func (w *Workers) release(ctx context.Context, j *Job) error {
	err := w.DB.WithContext(ctx).Exec(`UPDATE bot_jobs SET state = 'queued', attempts = attempts - 1, locked_by = '', locked_until = NULL, updated_at = ?
		WHERE id = ? AND locked_by = ? AND attempts = ?`, time.Now().UTC(), j.ID, w.owner, j.Attempts).Error
	if err != nil {
		return fmt.Errorf("release job %d: %w", j.ID, err)
	}
	return nil
}

// JobState is a job's state as stored, for tests and the console.
type JobState struct {
	DeliveryID string
	State      string
	Attempts   int
	LastError  string
}

// JobStates lists jobs, oldest first.
func JobStates(ctx context.Context, db *gorm.DB) ([]JobState, error) {
	var out []JobState
	err := db.WithContext(ctx).Raw(`SELECT delivery_id, state, attempts, last_error FROM bot_jobs ORDER BY id`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list bot jobs: %w", err)
	}
	return out, nil
}
