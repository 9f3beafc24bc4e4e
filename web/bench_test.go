package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/migrations"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

// boardBounties is how many bounties the board benchmark serves.
const boardBounties = 10_000

// boardQueries is what people do on the board: the default view, other sorts, a search, a
// deep page and an amount filter.
var boardQueries = []string{"/", "/?sort=new", "/?q=kernel+fuse", "/?page=40", "/?min=500&sort=age", "/?status=any&repo=gradforge/tools"}

var words = []string{"fuse", "kernel", "conv2d", "matmul", "onnx", "resize", "cuda", "opencl", "beam", "search", "int8", "winograd", "layernorm", "softmax", "attention", "cache"}

func benchTitle(i int) string {
	return fmt.Sprintf("%s %s %s #%d", words[i%len(words)], words[(i/7)%len(words)], words[(i/49)%len(words)], i)
}

// benchLabels are bounty i's issue labels: one or two of the title words.
func benchLabels(i int) []string {
	return []string{words[(i/3)%len(words)], words[(i/11)%len(words)]}
}

// seedBounties funds n bounties through the bounties package's own Fund command.
func seedBounties(b *testing.B, db *gorm.DB, n int) *bounties.Service {
	b.Helper()
	svc := bounties.New(db, bounties.Config{})
	start := time.Now()
	for i := range n {
		repo := "gradforge/gradforge"
		if i%5 == 0 {
			repo = "gradforge/tools"
		}
		_, err := svc.Fund(b.Context(), bounties.FundInput{Repo: repo, Issue: i + 1, Title: benchTitle(i), Labels: benchLabels(i), Sponsor: "maint",
			AmountCents: int64(50+(i*7919)%2000) * 100, FromPlatform: true, Maintainer: true, RequestKey: fmt.Sprint("seed-", i)})
		if err != nil {
			b.Fatalf("fund bounty %d: %v", i, err)
		}
	}
	b.Logf("seeded %d bounties in %v", n, time.Since(start).Round(time.Millisecond))
	return svc
}

// serveConcurrently sends b.N board requests from clients goroutines over loopback HTTP and
// reports latency percentiles; every answer must be 200.
func serveConcurrently(b *testing.B, h *harness, clients int) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	for _, q := range boardQueries { // warm up every query shape once, checking it works
		resp, err := hc.Get(h.srv.URL + q)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %v %v", q, err, resp)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				resp, err := hc.Get(h.srv.URL + boardQueries[i%len(boardQueries)])
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("a request failed: %v", err)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// BenchmarkBoard serves the bounty board with 10,000 bounties to 50 concurrent clients:
// over the real bounties package on SQLite and on PostgreSQL, and over an in-memory list
// (what the web layer itself costs: routing, template, HTTP).
//
//	go test -run '^$' -bench 'Board$' -benchtime 2000x ./web
func BenchmarkBoard(b *testing.B) {
	// Databases belong to this parent benchmark, so the rounds of each sub-benchmark (b.N = 1,
	// then the real N) share one seeding.
	parent := b
	type seededDB struct {
		db  *gorm.DB
		src BountySource
	}
	dbs := map[string]*seededDB{}
	seeded := func(b *testing.B, kind string) *seededDB {
		if s := dbs[kind]; s != nil {
			return s
		}
		var db *gorm.DB
		if kind == "postgres" {
			db = dbtest.Postgres(parent)
		} else {
			db = dbtest.SQLite(parent)
		}
		dbs[kind] = &seededDB{db, BountySource{S: seedBounties(b, db, boardBounties)}}
		return dbs[kind]
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run("bounties-"+kind, func(b *testing.B) {
			s := seeded(b, kind)
			serveConcurrently(b, newHarnessSources(b, s.db, Config{}, Sources{Bounties: s.src}), 50)
		})
	}
	b.Run("memory", func(b *testing.B) {
		mem := newMem()
		t0 := time.Now()
		for i := range boardBounties {
			repo := "gradforge/gradforge"
			if i%5 == 0 {
				repo = "gradforge/tools"
			}
			mem.bounties = append(mem.bounties, Bounty{ID: int64(i + 1), Repo: repo, Issue: i + 1, Title: benchTitle(i), AmountCents: int64(50+(i*7919)%2000) * 100, Status: "open", CreatedAt: t0.Add(-time.Duration(i) * time.Minute)})
		}
		serveConcurrently(b, newHarnessWith(b, dbtest.SQLite(b), Config{}, mem), 50)
	})
}

// BenchmarkBoardNoCache is BenchmarkBoard with the board cache off, on SQLite and on
// PostgreSQL: every request runs the bounties package's Board query.
//
//	go test -run '^$' -bench BoardNoCache -benchtime 300x ./web
func BenchmarkBoardNoCache(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		db := openBench(b, kind) // seeded once by the parent; the sub-benchmark's rounds share it
		src := BountySource{S: seedBounties(b, db, boardBounties)}
		b.Run("bounties-"+kind, func(b *testing.B) {
			serveConcurrently(b, newHarnessSources(b, db, Config{BoardCache: -1}, Sources{Bounties: src}), 50)
		})
	}
}

// openBench opens a fresh migrated database of a kind for a benchmark.
func openBench(b *testing.B, kind string) *gorm.DB {
	if kind == "postgres" {
		return dbtest.Postgres(b)
	}
	return dbtest.SQLite(b)
}

// BenchmarkBoardQuery times one call of the bounties package's Board with 10,000 bounties,
// the database work under every board page, on SQLite and PostgreSQL: first right after
// the bulk load ("fresh", no planner statistics), then once they are refreshed
// ("analyzed": migrations.Optimize, what the server runs hourly and on open; on PostgreSQL
// an ANALYZE, what autovacuum runs within a minute or so of such a load).
//
//	go test -run '^$' -bench BoardQuery -benchtime 20x ./web
func BenchmarkBoardQuery(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		db := openBench(b, kind)
		svc := seedBounties(b, db, boardBounties)
		for _, stats := range []string{"fresh", "analyzed"} {
			if stats == "analyzed" {
				err := migrations.Optimize(b.Context(), db)
				if err == nil && kind == "postgres" {
					err = db.Exec("ANALYZE").Error
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			for _, q := range []bounties.BoardQuery{{}, {Sort: "newest"}, {Search: "kernel fuse"}, {MinCents: 500_00, Sort: "oldest"}, {Page: 40}, {Repo: "gradforge/tools", State: "all"}, {Label: "cuda"}} {
				b.Run(fmt.Sprintf("%s/%s/%+v", kind, stats, q), func(b *testing.B) {
					for b.Loop() {
						if _, err := svc.Board(b.Context(), q); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkBoardHandler is the web layer's own cost of one board page (routing, filter
// parsing, the cached list, the template), without the network or any client.
//
//	go test -run '^$' -bench BoardHandler ./web
func BenchmarkBoardHandler(b *testing.B) {
	mem := newMem()
	for i := range boardBounties {
		mem.bounties = append(mem.bounties, Bounty{ID: int64(i + 1), Repo: "gradforge/gradforge", Issue: i + 1, Title: benchTitle(i), AmountCents: int64(50+(i*7919)%2000) * 100, Status: "open", CreatedAt: time.Now()})
	}
	h := newHarnessWith(b, dbtest.SQLite(b), Config{}, mem)
	handler := h.srv.Config.Handler
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	var size int
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size), "page-bytes")
}
