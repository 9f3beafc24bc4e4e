package web

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
)

// countingBounties counts List calls and can be slowed or made to fail.
type countingBounties struct {
	*memData
	calls atomic.Int64
	delay time.Duration
	fail  atomic.Bool
	gate  atomic.Pointer[chan struct{}] // when set, List waits for it to close
}

func (c *countingBounties) List(ctx context.Context, f BountyFilter) ([]Bounty, int, error) {
	c.calls.Add(1)
	time.Sleep(c.delay)
	if g := c.gate.Load(); g != nil {
		<-*g
	}
	if c.fail.Load() {
		return nil, 0, errors.New("database away")
	}
	return c.memData.List(ctx, f)
}

func TestBoardCache(t *testing.T) {
	mem := newMem()
	seed(mem)
	cb := &countingBounties{memData: mem, delay: 50 * time.Millisecond}
	a := &App{bounties: cb, boards: boardCache{ttl: 200 * time.Millisecond}}
	f := BountyFilter{Status: "open", Sort: "amount", Limit: 50}

	t.Run("concurrent requests share one query", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if page, total, err := a.listBounties(t.Context(), f); err != nil || total != 5 || len(page) != 5 {
					t.Errorf("listBounties = %d, %d, %v", len(page), total, err)
				}
			})
		}
		wg.Wait()
		if n := cb.calls.Load(); n != 1 {
			t.Fatalf("%d queries for 20 concurrent requests, want 1", n)
		}
	})
	t.Run("another filter is another query", func(t *testing.T) {
		g := f
		g.Query = "onnx"
		if _, total, _ := a.listBounties(t.Context(), g); total != 1 || cb.calls.Load() != 2 {
			t.Fatalf("total %d after %d queries", total, cb.calls.Load())
		}
	})
	t.Run("a stale page is served at once while one refresh runs", func(t *testing.T) {
		time.Sleep(250 * time.Millisecond)
		mem.mu.Lock()
		mem.bounties = append(mem.bounties, Bounty{ID: 77, Repo: "o/r", Issue: 77, Title: "new", AmountCents: 1, Status: "open"})
		mem.mu.Unlock()
		gate := make(chan struct{})
		cb.gate.Store(&gate) // the refresh cannot finish until the gate opens
		answered := make(chan int, 5)
		go func() {
			for range 5 {
				_, total, _ := a.listBounties(t.Context(), f)
				answered <- total
			}
		}()
		for range 5 {
			select {
			case total := <-answered:
				if total != 5 {
					t.Fatalf("stale answer has %d bounties, want the old 5", total)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("requests waited for the refresh instead of getting the stale page")
			}
		}
		close(gate)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, total, _ := a.listBounties(t.Context(), f); total == 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the refresh never landed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := cb.calls.Load(); n != 3 {
			t.Fatalf("%d queries, want 3 (one refresh)", n)
		}
	})
	t.Run("errors are not kept", func(t *testing.T) {
		cb.fail.Store(true)
		g := f
		g.Query = "never cached"
		if _, _, err := a.listBounties(t.Context(), g); err == nil {
			t.Fatal("no error from a failing source")
		}
		cb.fail.Store(false)
		if _, total, err := a.listBounties(t.Context(), g); err != nil || total != 0 {
			t.Fatalf("after the failure: %d, %v", total, err)
		}
	})
	t.Run("off when the TTL is negative", func(t *testing.T) {
		off := &App{bounties: cb, boards: boardCache{ttl: -1}}
		before := cb.calls.Load()
		off.listBounties(t.Context(), f)
		off.listBounties(t.Context(), f)
		if n := cb.calls.Load() - before; n != 2 {
			t.Fatalf("%d queries with the cache off, want 2", n)
		}
	})
}

func TestBoardPageCache(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), Config{DevLogin: true, BoardCache: time.Hour})
	anon, user := h.client(), h.client()
	user.signIn("alice", "contributor")
	must(t, anon.get("/"), http.StatusOK, "5 bounties match")
	h.mem.mu.Lock()
	h.mem.bounties = append(h.mem.bounties, Bounty{ID: 99, Repo: "gradforge/tools", Issue: 99, Title: "Fresh bounty", AmountCents: 100, Status: "open"})
	h.mem.mu.Unlock()
	r := anon.get("/")
	must(t, r, http.StatusOK, "5 bounties match")
	mustNot(t, r, "Fresh bounty", "Set-Cookie")
	if r.header.Get("Set-Cookie") != "" {
		t.Fatalf("a cached page sets a cookie: %q", r.header.Get("Set-Cookie"))
	}
	// A signed-in page is drawn for its reader (their name is in it) from the shared list.
	r = user.get("/")
	must(t, r, http.StatusOK, "@alice")
	mustNot(t, r, "Fresh bounty")
	must(t, anon.get("/?q=fresh"), http.StatusOK, "Fresh bounty") // another filter, another query
	// Without the cache every request sees the data as it is.
	off := newHarnessWith(t, dbtest.SQLite(t), Config{BoardCache: -1}, h.mem)
	must(t, off.client().get("/"), http.StatusOK, "6 bounties match", "Fresh bounty")
}
