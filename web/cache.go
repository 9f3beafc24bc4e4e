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
// one query per distinct page per TTL instead of one per visitor.
type boardCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[BountyFilter]*boardEntry
	pages   map[BountyFilter]drawnPage // the board as anonymous visitors see it
}

// drawnPage is a board page drawn for anonymous visitors, whose header has no one's name,
// so the same bytes serve them all until the page is TTL old.
type drawnPage struct {
	html []byte
	at   time.Time
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

type boardEntry struct {
	ready chan struct{} // closed once the query has finished; the fields below are then set
	at    time.Time
	page  []Bounty
	total int
	repos []string
	err   error
}

// maxBoardEntries bounds the cache: when full it starts again empty, which costs one query
// per page and never grows memory with odd filters.
const maxBoardEntries = 1024

// reposKey is the cache slot of the repository list; no real filter sorts by it.
var reposKey = BountyFilter{Sort: "\x00repos"}

// get returns the cached answer for key, or runs load once for everyone asking at the same
// time. Failed loads are not reused.
func (bc *boardCache) get(key BountyFilter, load func(e *boardEntry)) *boardEntry {
	bc.mu.Lock()
	if bc.entries == nil || len(bc.entries) >= maxBoardEntries {
		bc.entries = map[BountyFilter]*boardEntry{}
	}
	if e := bc.entries[key]; e != nil {
		select {
		case <-e.ready:
			if e.err == nil && time.Since(e.at) < bc.ttl {
				bc.mu.Unlock()
				return e
			}
		default: // someone is loading it: wait for their answer
			bc.mu.Unlock()
			<-e.ready
			return e
		}
	}
	e := &boardEntry{ready: make(chan struct{}), err: errors.New("board query did not finish")}
	bc.entries[key] = e
	bc.mu.Unlock()
	defer func() {
		e.at = time.Now()
		close(e.ready)
	}()
	load(e)
	return e
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
