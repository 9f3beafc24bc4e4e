package runners

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// redactor replaces secrets with *** in log text.
type redactor struct {
	secrets [][]byte
	maxLen  int
}

func newRedactor(secrets ...string) *redactor {
	r := &redactor{}
	for _, s := range secrets {
		if len(s) >= 4 { // shorter "secrets" would mangle ordinary text
			r.secrets = append(r.secrets, []byte(s))
			r.maxLen = max(r.maxLen, len(s))
		}
	}
	return r
}

func (r *redactor) redact(p []byte) []byte {
	for _, s := range r.secrets {
		p = bytes.ReplaceAll(p, s, []byte("***"))
	}
	return p
}

// safeCut returns the longest prefix length of p that can be emitted without splitting a
// secret: no suffix of p[:cut] may be a proper prefix of any secret.
func (r *redactor) safeCut(p []byte) int {
	cut := len(p)
	for _, s := range r.secrets {
		for k := min(len(s)-1, cut); k > 0; k-- {
			if bytes.HasSuffix(p[:cut], s[:k]) {
				cut -= k
				break
			}
		}
	}
	return cut
}

// logStream collects a job's output, redacts secrets and ships it to the server in numbered
// chunks from a single goroutine, so chunks arrive in order; a chunk that fails is resent
// with the same number, which the server stores once.
type logStream struct {
	send  func(ctx context.Context, seq int, data []byte) (truncated bool, err error)
	red   *redactor
	log   *slog.Logger
	every time.Duration
	retry time.Duration // first retry delay, doubled each time

	mu      sync.Mutex
	raw     []byte // not yet redacted: an unfinished line
	ready   []byte // redacted, waiting to be sent
	kick    chan struct{}
	closed  bool
	done    chan struct{}
	seq     int
	dropped bool  // the server truncated the log or the lease is gone
	lost    int64 // bytes discarded because the server could not keep up
}

// partialLineLimit is how long an unfinished line may grow before it is sent anyway.
const partialLineLimit = 4 << 10

// maxPending bounds the output held while the server is unreachable; more is discarded
// (with a note in the log) rather than growing the runner's memory without limit.
const maxPending = 8 << 20

func newLogStream(ctx context.Context, red *redactor, log *slog.Logger, every time.Duration,
	send func(ctx context.Context, seq int, data []byte) (bool, error)) *logStream {
	s := &logStream{send: send, red: red, log: log, every: every, kick: make(chan struct{}, 1), done: make(chan struct{}), retry: 200 * time.Millisecond}
	go s.loop(ctx)
	return s
}

// Write takes output; it never blocks on the network.
func (s *logStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	s.raw = append(s.raw, p...)
	if i := bytes.LastIndexAny(s.raw, "\n\r"); i >= 0 {
		s.ready = append(s.ready, s.red.redact(s.raw[:i+1])...)
		s.raw = append(s.raw[:0], s.raw[i+1:]...)
	}
	if len(s.raw) > partialLineLimit {
		cut := s.red.safeCut(s.raw)
		s.ready = append(s.ready, s.red.redact(s.raw[:cut])...)
		s.raw = append(s.raw[:0], s.raw[cut:]...)
	}
	if len(s.ready) > maxPending {
		s.lost += int64(len(s.ready) - maxPending)
		s.ready = s.ready[:maxPending]
	}
	if len(s.ready) >= 32<<10 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Line writes a line of the runner's own (e.g. step headers).
func (s *logStream) Line(text string) { s.Write([]byte(text + "\n")) }

// Close flushes everything and waits until it is sent, or given up on when the stream's
// context ends (the runner bounds that wait).
func (s *logStream) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.ready = append(s.ready, s.red.redact(s.raw)...)
		s.raw = nil
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	<-s.done
}

func (s *logStream) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.kick:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		data, closed := s.ready, s.closed
		s.ready = nil
		if s.lost > 0 {
			data = fmt.Appendf(data, "\n[gradforge: %d bytes of output dropped while the server was unreachable]\n", s.lost)
			s.lost = 0
		}
		s.mu.Unlock()
		for len(data) > 0 && !s.dropped {
			n := min(len(data), MaxChunkBytes)
			s.ship(ctx, data[:n])
			data = data[n:]
		}
		if closed {
			s.mu.Lock()
			empty := len(s.ready) == 0
			s.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

// ship sends one chunk, retrying with backoff until it is stored or cannot be.
func (s *logStream) ship(ctx context.Context, chunk []byte) {
	backoff := s.retry
	for {
		trunc, err := s.send(ctx, s.seq, chunk)
		if err == nil {
			s.seq++
			s.dropped = trunc
			return
		}
		if permanent(err) || ctx.Err() != nil {
			s.log.Warn("log chunk not stored; dropping the rest of the log", "seq", s.seq, "err", err)
			s.dropped = true
			return
		}
		s.log.Warn("send log chunk; retrying", "seq", s.seq, "err", err)
		select {
		case <-time.After(jitter(backoff)):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
