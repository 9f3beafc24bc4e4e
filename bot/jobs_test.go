package bot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// store puts deliveries straight into the tables through an Intake, without HTTP.
func store(t *testing.T, db *gorm.DB, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := NewIntake(ctx, db, IntakeConfig{Secrets: []string{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := in.Store(ctx, Delivery{ID: id, Event: "issues", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

// runUntil runs workers until cond holds or ten seconds pass.
func runUntil(t *testing.T, w *Workers, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if !cond() {
		t.Fatal("condition not reached within 10s")
	}
}

func states(t *testing.T, db *gorm.DB) map[string]JobState {
	t.Helper()
	list, err := JobStates(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]JobState{}
	for _, s := range list {
		out[s.DeliveryID] = s
	}
	return out
}

func TestRetryWithBackoffThenDone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		store(t, db, "flaky", "broken", "bad")
		var calls sync.Map
		w := &Workers{DB: db, N: 2, Poll: 5 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxAttempts: 3,
			Handler: func(ctx context.Context, d Delivery) error {
				v, _ := calls.LoadOrStore(d.ID, new(atomic.Int32))
				n := v.(*atomic.Int32).Add(1)
				switch {
				case d.ID == "flaky" && n < 3:
					return fmt.Errorf("transient failure %d", n)
				case d.ID == "broken":
					return errors.New("always fails")
				case d.ID == "bad":
					return Permanent(errors.New("cannot parse"))
				}
				return nil
			}}
		runUntil(t, w, func() bool {
			s := states(t, db)
			return s["flaky"].State == "done" && s["broken"].State == "failed" && s["bad"].State == "failed"
		})
		s := states(t, db)
		if s["flaky"].Attempts != 3 || s["broken"].Attempts != 3 || s["bad"].Attempts != 1 {
			t.Fatalf("attempts: flaky %d (want 3), broken %d (want 3, the max), bad %d (want 1, permanent)",
				s["flaky"].Attempts, s["broken"].Attempts, s["bad"].Attempts)
		}
		if s["broken"].LastError != "always fails" {
			t.Fatalf("last error = %q", s["broken"].LastError)
		}
	})
}

func TestPanicIsRetriedNotFatal(t *testing.T) {
	db := dbtest.SQLite(t)
	store(t, db, "p")
	var n atomic.Int32
	w := &Workers{DB: db, N: 1, Poll: 5 * time.Millisecond, Backoff: time.Millisecond,
		Handler: func(context.Context, Delivery) error {
			if n.Add(1) == 1 {
				panic("boom")
			}
			return nil
		}}
	runUntil(t, w, func() bool { return states(t, db)["p"].State == "done" })
}

func TestEachJobRunsOnceAcrossWorkers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		const jobs = 200
		ids := make([]string, jobs)
		for i := range ids {
			ids[i] = fmt.Sprintf("d%03d", i)
		}
		store(t, db, ids...)
		var mu sync.Mutex
		seen := map[string]int{}
		handler := func(_ context.Context, d Delivery) error {
			mu.Lock()
			seen[d.ID]++
			mu.Unlock()
			return nil
		}
		// Two worker pools stand for two server replicas sharing the database.
		a := &Workers{DB: db, N: 4, Poll: 5 * time.Millisecond, Handler: handler}
		b := &Workers{DB: db, N: 4, Poll: 5 * time.Millisecond, Handler: handler}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(ctx) }()
		runUntil(t, a, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) == jobs
		})
		cancel()
		wg.Wait()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("job %s ran %d times", id, n)
			}
		}
	})
}

func TestExpiredLeaseIsReclaimed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		store(t, db, "orphan")
		dead := &Workers{DB: db, Lease: 50 * time.Millisecond}
		job, err := dead.Claim(context.Background())
		if err != nil || job == nil {
			t.Fatalf("claim: %v, %v", job, err)
		}
		// The claimer "dies" here. A second claim before the lease ends finds nothing.
		other := &Workers{DB: db, Poll: 5 * time.Millisecond}
		if j, err := other.Claim(context.Background()); err != nil || j != nil {
			t.Fatalf("claimed a leased job: %v, %v", j, err)
		}
		time.Sleep(80 * time.Millisecond)
		var ran atomic.Bool
		other.Handler = func(context.Context, Delivery) error { ran.Store(true); return nil }
		runUntil(t, other, func() bool { return states(t, db)["orphan"].State == "done" })
		if !ran.Load() || states(t, db)["orphan"].Attempts != 2 {
			t.Fatalf("orphan: ran %v, state %+v", ran.Load(), states(t, db)["orphan"])
		}
	})
}

func TestPurgeKeepsUnfinishedAndRecent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		store(t, db, "old-done", "old-queued", "new-done")
		old := time.Now().UTC().Add(-40 * 24 * time.Hour)
		db.Exec(`UPDATE bot_jobs SET state = 'done', updated_at = ? WHERE delivery_id = 'old-done'`, old)
		db.Exec(`UPDATE bot_jobs SET updated_at = ? WHERE delivery_id = 'old-queued'`, old)
		db.Exec(`UPDATE bot_jobs SET state = 'done' WHERE delivery_id = 'new-done'`)
		db.Exec(`UPDATE bot_deliveries SET received_at = ?`, old)
		w := &Workers{DB: db}
		if err := w.Purge(context.Background(), time.Now().UTC().Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		s := states(t, db)
		if _, ok := s["old-done"]; ok || len(s) != 2 {
			t.Fatalf("jobs after purge = %+v, want old-queued and new-done", s)
		}
		if n := countRows(t, db, "bot_deliveries"); n != 2 {
			t.Fatalf("%d deliveries left, want 2 (those with a job)", n)
		}
	})
}

func TestShutdownReleasesRunningJob(t *testing.T) {
	db := dbtest.SQLite(t)
	store(t, db, "long")
	started := make(chan struct{})
	w := &Workers{DB: db, N: 1, Poll: 5 * time.Millisecond, Handler: func(ctx context.Context, d Delivery) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	<-started
	cancel()
	<-done
	if s := states(t, db)["long"]; s.State != "queued" || s.Attempts != 0 {
		t.Fatalf("after shutdown: %+v, want queued with no attempt counted", s)
	}
	next, err := (&Workers{DB: db}).Claim(context.Background())
	if err != nil || next == nil {
		t.Fatalf("released job not claimable at once: %v, %v", next, err)
	}
}

func TestHeartbeatKeepsLongJobFromOthers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		store(t, db, "slow")
		var runs atomic.Int32
		handler := func(ctx context.Context, d Delivery) error {
			runs.Add(1)
			select {
			case <-time.After(1600 * time.Millisecond): // several leases long
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		a := &Workers{DB: db, N: 1, Lease: 500 * time.Millisecond, Poll: 5 * time.Millisecond, Handler: handler}
		b := &Workers{DB: db, N: 2, Lease: 500 * time.Millisecond, Poll: 5 * time.Millisecond, Handler: handler}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(ctx) }()
		runUntil(t, a, func() bool { return states(t, db)["slow"].State == "done" })
		cancel()
		wg.Wait()
		if n := runs.Load(); n != 1 {
			t.Fatalf("a job longer than its lease ran %d times, want 1 (the heartbeat keeps it)", n)
		}
	})
}
