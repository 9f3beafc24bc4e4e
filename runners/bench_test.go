package runners

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// benchDBs are the databases each benchmark runs on.
var benchDBs = []struct {
	name string
	db   func(testing.TB) *gorm.DB
}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}}

// BenchmarkDispatch measures dispatch latency: from the start of Enqueue until a runner
// holding a long poll over HTTP has the job, with 8 runners polling. It reports the p50 and
// p95 in milliseconds; the goal is p50 < 100 ms.
func BenchmarkDispatch(b *testing.B) {
	for _, kind := range benchDBs {
		b.Run(kind.name, func(b *testing.B) {
			f := newForgeTB(b, kind.db(b))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan time.Time, 64)
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			for i := range 8 {
				_, cred := f.registerTB(b, fmt.Sprintf("bench%d", i), "linux")
				c := &Client{URL: f.url, Credential: cred, HTTP: hc}
				go func() {
					for ctx.Err() == nil {
						j, err := c.next(ctx, Info{Name: "bench", Labels: []string{"linux"}}, 5*time.Second)
						if err != nil || j == nil {
							continue
						}
						got <- time.Now()
						c.finish(ctx, j.ID, finishRequest{Attempt: j.Attempt, Conclusion: Success})
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if _, err := f.q.Enqueue(ctx, simple(fmt.Sprintf("bench-%d", i), "linux")); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-got).Sub(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

// BenchmarkEnqueue is the reference for BenchmarkDispatch: the cost of Enqueue alone (one
// insert transaction and a read back), which dispatch latency includes.
func BenchmarkEnqueue(b *testing.B) {
	for _, kind := range benchDBs {
		b.Run(kind.name, func(b *testing.B) {
			f := newForgeTB(b, kind.db(b))
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.q.Enqueue(ctx, simple(fmt.Sprintf("ref-%d", i), "linux")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
