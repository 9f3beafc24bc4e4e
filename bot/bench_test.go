package bot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// BenchmarkIntake posts signed deliveries (the real issue_comment fixture, about 8 KB) from
// 32 concurrent clients to an intake on a loopback port, with 4 workers draining the jobs as
// in production, and reports durable acknowledgements per second, the 50th and 99th
// percentiles of the time to the 202, and the process's CPU time per acknowledgement.
//
//	go test ./bot -run '^$' -bench Intake -benchtime 5000x
func BenchmarkIntake(b *testing.B) {
	for _, tc := range []struct {
		name string
		db   func(testing.TB) *gorm.DB
	}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}} {
		b.Run(tc.name, func(b *testing.B) { benchIntake(b, tc.db(b), 0) })
		b.Run(tc.name+"+workers", func(b *testing.B) { benchIntake(b, tc.db(b), 4) })
	}
}

// benchIntake measures acks; with workers > 0 a pool with a no-op handler drains the jobs at
// the same time, the worst case for the database (real handlers wait on GitHub's API).
func benchIntake(b *testing.B, db *gorm.DB, workers int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &Workers{DB: db, N: workers, Handler: func(context.Context, Delivery) error { return nil }}
	srv, _ := intakeServer(b, db, IntakeConfig{Wake: w.Wake})
	done := make(chan struct{})
	if workers > 0 {
		go func() { w.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	body := fixture(b, "issue_comment/created.with-installation.payload.json", nil)
	sig := Sign(testSecret, body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	const clients = 32
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var failed atomic.Int64
	var wg sync.WaitGroup
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "issue_comment")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%s-%d", run, i))
				req.Header.Set("X-Hub-Signature-256", sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d deliveries not acknowledged", n, b.N)
	}
	if n := countRows(b, db, "bot_deliveries"); n < int64(b.N) {
		b.Fatalf("%d deliveries stored, want at least %d", n, b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	// CPU time of this process (server and load generator together) per ack: on a shared,
	// busy machine wall-clock rates measure the neighbours, this measures the code.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/ack")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
