package runners

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink collects shipped chunks, failing the first attempt at each sequence number so every
// chunk is retried once.
type sink struct {
	mu     sync.Mutex
	chunks map[int][]byte
	failed map[int]bool
}

func (s *sink) send(_ context.Context, seq int, data []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed[seq] {
		s.failed[seq] = true
		return false, errors.New("connection reset")
	}
	if _, dup := s.chunks[seq]; dup {
		return false, nil
	}
	s.chunks[seq] = append([]byte(nil), data...)
	return false, nil
}

func (s *sink) text(t *testing.T) string {
	var b bytes.Buffer
	for i := range len(s.chunks) {
		c, ok := s.chunks[i]
		if !ok {
			t.Fatalf("chunk %d missing of %d", i, len(s.chunks))
		}
		b.Write(c)
	}
	return b.String()
}

// stream writes the pieces to a logStream redacting secrets and returns what was shipped.
func stream(t *testing.T, secrets []string, pieces []string) string {
	s := &sink{chunks: map[int][]byte{}, failed: map[int]bool{}}
	ls := newLogStream(context.Background(), newRedactor(secrets...), slog.New(slog.NewTextHandler(io.Discard, nil)),
		time.Millisecond, s.send)
	ls.retry = time.Microsecond
	for _, p := range pieces {
		ls.Write([]byte(p))
	}
	ls.Close()
	return s.text(t)
}

func TestLogStreamRedacts(t *testing.T) {
	const tok = "ghs_0123456789abcdef"
	long := strings.Repeat("x", partialLineLimit-5)
	for _, c := range []struct {
		name   string
		pieces []string
		want   string
	}{
		{"whole line", []string{"token " + tok + " here\n"}, "token *** here\n"},
		{"secret split across writes", []string{"a ghs_0123", "456789abcdef b\n"}, "a *** b\n"},
		{"secret across the partial-line cut", []string{long + "ghs_01234567", "89abcdef tail\n"}, long + "*** tail\n"},
		{"no trailing newline", []string{"end " + tok}, "end ***"},
		{"carriage returns end lines too", []string{"10%\r" + tok + "\r"}, "10%\r***\r"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := stream(t, []string{tok}, c.pieces); got != c.want {
				t.Errorf("shipped %q, want %q", got, c.want)
			}
		})
	}
}

func TestLogStreamOrderAndSize(t *testing.T) {
	var in strings.Builder
	var pieces []string
	for i := range 20000 {
		line := strings.Repeat("abcdefgh", i%17) + "\n"
		in.WriteString(line)
		pieces = append(pieces, line)
	}
	s := &sink{chunks: map[int][]byte{}, failed: map[int]bool{}}
	ls := newLogStream(context.Background(), newRedactor(), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Millisecond, s.send)
	ls.retry = time.Microsecond
	for _, p := range pieces {
		ls.Write([]byte(p))
	}
	ls.Close()
	if got := s.text(t); got != in.String() {
		t.Fatalf("shipped %d bytes differ from the %d written", len(got), in.Len())
	}
	for seq, c := range s.chunks {
		if len(c) > MaxChunkBytes {
			t.Errorf("chunk %d holds %d bytes, over %d", seq, len(c), MaxChunkBytes)
		}
	}
}

// FuzzRedact checks that however output is split into writes, no secret reaches the server.
func FuzzRedact(f *testing.F) {
	f.Add("tok3n-secret", "hello tok3n-secret world\n", uint8(3))
	f.Add("abcd", "abcabcdabcd", uint8(1))
	f.Fuzz(func(t *testing.T, secret, text string, step uint8) {
		if len(secret) < 4 || strings.Contains(secret, "*") || strings.ContainsAny(secret, "\r\n") {
			t.Skip()
		}
		n := int(step%16) + 1
		var pieces []string
		for i := 0; i < len(text); i += n {
			pieces = append(pieces, text[i:min(i+n, len(text))])
		}
		if got := stream(t, []string{secret}, pieces); strings.Contains(got, secret) {
			t.Fatalf("secret %q leaked: %q", secret, got)
		}
	})
}

// A server that cannot keep up costs output, with a note saying how much, not memory.
func TestLogStreamBoundsPendingOutput(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var got bytes.Buffer
	send := func(_ context.Context, _ int, data []byte) (bool, error) {
		<-gate // the server is unreachable until the test opens the gate
		mu.Lock()
		got.Write(data)
		mu.Unlock()
		return false, nil
	}
	ls := newLogStream(context.Background(), newRedactor(), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Millisecond, send)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	written := 0
	for range 2*maxPending/len(line) + 1024 {
		n, _ := ls.Write(line)
		written += n
	}
	close(gate)
	ls.Close()
	mu.Lock()
	defer mu.Unlock()
	// What waits is bounded by maxPending; one batch may be in flight besides.
	if got.Len() >= written || got.Len() > 2*maxPending+1024 {
		t.Errorf("%d of %d written bytes shipped; want at most %d", got.Len(), written, 2*maxPending)
	}
	if !strings.Contains(got.String(), "bytes of output dropped while the server was unreachable") {
		t.Error("no note about the dropped output")
	}
}
