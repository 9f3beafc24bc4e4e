package runners

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
)

// TestManyRunners has 100 runners long-polling over HTTP while 1,000 jobs are enqueued
// concurrently on PostgreSQL, through the default connection pool (or a pool of
// GRADFORGE_TEST_POOL_MAX_CONNS): every job must be
// assigned exactly once and finish, and PostgreSQL must never see more connections from the
// forge than the pool's cap.
func TestManyRunners(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100 runners × 1,000 jobs: skipped in -short")
	}
	const runners, jobs = 100, 1000
	dsn := dbtest.PostgresDSN(t)
	poolCap := migrations.DefaultPool.MaxOpen
	if n, err := strconv.Atoi(os.Getenv("GRADFORGE_TEST_POOL_MAX_CONNS")); err == nil { // to compare caps
		poolCap = n
	}
	db, err := migrations.Open(context.Background(), dsn+"&pool_max_conns="+strconv.Itoa(poolCap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { migrations.Close(db) })
	peak := watchConnections(t, dsn)
	f := newForge(t, db)
	f.q.Poll = 2 * time.Second // assignments must come from wakes, not from polling
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * runners}}
	var mu sync.Mutex
	assigned := map[int64][]int64{} // job → runners that got it
	var finished atomic.Int64
	var wg sync.WaitGroup
	for i := range runners {
		_, cred := f.register(t, fmt.Sprintf("r%03d", i), "linux")
		c := &Client{URL: f.url, Credential: cred, HTTP: hc}
		wg.Add(1)
		go func(id int64) {
			defer wg.Done()
			for ctx.Err() == nil {
				j, err := c.next(ctx, Info{Name: fmt.Sprintf("r%03d", id), Labels: []string{"linux"}}, 3*time.Second)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("runner %d poll: %v", id, err)
					}
					return
				}
				if j == nil {
					continue
				}
				mu.Lock()
				assigned[j.ID] = append(assigned[j.ID], id)
				mu.Unlock()
				if err := c.finish(ctx, j.ID, finishRequest{Attempt: j.Attempt, Conclusion: Success}); err != nil {
					t.Errorf("runner %d finish job %d: %v", id, j.ID, err)
					return
				}
				finished.Add(1)
			}
		}(int64(i))
	}
	time.Sleep(300 * time.Millisecond) // let the polls arrive and wait
	start := time.Now()
	var ewg sync.WaitGroup
	for w := range 8 {
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			for k := w; k < jobs; k += 8 {
				if _, err := f.q.Enqueue(ctx, simple(fmt.Sprintf("load-%d", k), "linux")); err != nil {
					t.Errorf("enqueue %d: %v", k, err)
				}
			}
		}()
	}
	ewg.Wait()
	waitFor(t, 60*time.Second, "all jobs to finish", func() bool { return finished.Load() >= jobs })
	took := time.Since(start)
	cancel()
	wg.Wait()

	if n := peak(); n > poolCap || n == 0 {
		t.Errorf("PostgreSQL saw up to %d connections from the forge; the pool caps it at %d", n, poolCap)
	} else {
		t.Logf("at most %d PostgreSQL connections in use (pool cap %d) for %d runners", n, poolCap, runners)
	}
	if len(assigned) != jobs {
		t.Errorf("%d distinct jobs assigned, want %d", len(assigned), jobs)
	}
	for id, rs := range assigned {
		if len(rs) != 1 {
			t.Errorf("job %d assigned %d times (runners %v)", id, len(rs), rs)
		}
	}
	var waits []time.Duration
	all, err := f.q.List(context.Background(), JobFilter{Limit: 2 * jobs})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range all {
		if j.State != Finished || j.Attempt != 1 || j.Conclusion != Success {
			t.Errorf("job %d: %s attempt %d %s", j.ID, j.State, j.Attempt, j.Conclusion)
		}
		waits = append(waits, j.AssignedAt.Sub(j.CreatedAt))
	}
	sort.Slice(waits, func(a, b int) bool { return waits[a] < waits[b] })
	if len(waits) > 0 {
		t.Logf("%d jobs through %d runners in %v; queued→assigned p50 %v p95 %v (under load, from database timestamps)",
			jobs, runners, took.Round(time.Millisecond), waits[len(waits)/2].Round(time.Millisecond), waits[len(waits)*95/100].Round(time.Millisecond))
	}
}

// watchConnections counts, until the test ends, the connections other sessions hold to the
// database dsn names, and returns a function that reports the most seen at once so far.
func watchConnections(t *testing.T, dsn string) (peak func() int) {
	t.Helper()
	watch, _, err := migrations.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	var most atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var n int64
			if err := watch.WithContext(ctx).Raw(`SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n).Error; err == nil && n > most.Load() {
				most.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; migrations.Close(watch) })
	return func() int { return int(most.Load()) }
}
