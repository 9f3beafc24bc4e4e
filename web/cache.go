package web

import (
	"context"
	"errors"
	"sync"
	"time"
)

// boardCache keeps board pages for a few seconds and lets concurrent requests for the same
// page share one query. The board is the same for everyone and is read far more than it
// changes, so a page at most TTL old is what every visitor sees while the database answers
// one query per distinct page per TTL instead of one per visitor. Once a page is older than
// TTL, the next request refreshes it in the background and, until the refresh lands, everyone
// keeps getting the previous answer, so a slow query never holds visitors up after the first
// one: what they see is at most one query time plus TTL old (and never more than maxStale,
// should refreshes keep failing).
type boardCache struct {
	ttl time.Duration

	mu         sync.Mutex
	entries    map[BountyFilter]*boardEntry
	refreshing map[BountyFilter]bool
	pages      map[BountyFilter]drawnPage // the board as anonymous visitors see it
}

// maxStale bounds how old an answer may be served while refreshes run or fail.
const maxStale = 10 * time.Minute

type boardEntry struct {
	ready chan struct{} // closed once the query has finished; the fields below are then set
	at    time.Time
	page  []Bounty
	total int
	repos []string
	err   error
}

// drawnPage is a board page drawn for anonymous visitors, whose header has no one's name,
// so the same bytes serve them all until the page is TTL old.
type drawnPage struct {
	html []byte
	at   time.Time
}

// maxBoardEntries bounds the cache: when full it starts again empty, which costs one query
// per page and never grows memory with odd filters.
const maxBoardEntries = 1024

// reposKey is the cache slot of the repository list; no real filter sorts by it.
var reposKey = BountyFilter{Sort: "\x00repos"}

// get returns the cached answer for key, runs load once for everyone asking at the same time
// when there is none, or starts a background refresh of a stale one. Failed loads are not
// reused.
func (bc *boardCache) get(key BountyFilter, load func(e *boardEntry)) *boardEntry {
	bc.mu.Lock()
	if bc.entries == nil || len(bc.entries) >= maxBoardEntries {
		bc.entries, bc.refreshing = map[BountyFilter]*boardEntry{}, map[BountyFilter]bool{}
	}
	if e := bc.entries[key]; e != nil {
		select {
		case <-e.ready:
			age := time.Since(e.at)
			switch {
			case e.err != nil || age >= max(maxStale, bc.ttl): // unusable: load below
			case age < bc.ttl || bc.refreshing[key]:
				bc.mu.Unlock()
				return e
			default:
				bc.refreshing[key] = true
				bc.mu.Unlock()
				go bc.refresh(key, load)
				return e
			}
		default: // the first load is running: wait for its answer
			bc.mu.Unlock()
			<-e.ready
			return e
		}
	}
	e := &boardEntry{ready: make(chan struct{})}
	bc.entries[key] = e
	bc.mu.Unlock()
	bc.run(e, load)
	return e
}

// run loads one entry and marks it ready, even when load panics.
func (bc *boardCache) run(e *boardEntry, load func(e *boardEntry)) {
	e.err = errors.New("board query did not finish")
	defer func() {
		e.at = time.Now()
		close(e.ready)
	}()
	load(e)
}

// refresh loads a fresh answer for key and swaps it in when it succeeds; readers keep the
// old one meanwhile.
func (bc *boardCache) refresh(key BountyFilter, load func(e *boardEntry)) {
	e := &boardEntry{ready: make(chan struct{})}
	bc.run(e, load)
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if e.err == nil && bc.entries != nil {
		bc.entries[key] = e
	}
	delete(bc.refreshing, key)
}

// page returns the drawn board for a filter while it is fresh.
func (bc *boardCache) page(f BountyFilter) ([]byte, bool) {
	if bc.ttl <= 0 {
		return nil, false
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	p, ok := bc.pages[f]
	return p.html, ok && time.Since(p.at) < bc.ttl
}

// keepPage remembers a drawn board page.
func (bc *boardCache) keepPage(f BountyFilter, html []byte) {
	if bc.ttl <= 0 {
		return
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.pages == nil || len(bc.pages) >= maxBoardEntries {
		bc.pages = map[BountyFilter]drawnPage{}
	}
	bc.pages[f] = drawnPage{html, time.Now()}
}

// listBounties is Bounties.List through the cache (when it is on).
func (a *App) listBounties(ctx context.Context, f BountyFilter) ([]Bounty, int, error) {
	if a.boards.ttl <= 0 {
		return a.bounties.List(ctx, f)
	}
	e := a.boards.get(f, func(e *boardEntry) {
		// The query outlives any one visitor: others may be waiting for it.
		e.page, e.total, e.err = a.bounties.List(context.WithoutCancel(ctx), f)
	})
	return e.page, e.total, e.err
}

// listRepos is Bounties.Repos through the cache (when it is on).
func (a *App) listRepos(ctx context.Context) ([]string, error) {
	if a.boards.ttl <= 0 {
		return a.bounties.Repos(ctx)
	}
	e := a.boards.get(reposKey, func(e *boardEntry) { e.repos, e.err = a.bounties.Repos(context.WithoutCancel(ctx)) })
	return e.repos, e.err
}
