package runners

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"gorm.io/gorm"
)

const sha1 = "1111111111111111111111111111111111111111"

func testQueue(t *testing.T, db *gorm.DB) (*Queue, *Registry, *recorder) {
	q := NewQueue(db)
	q.Lease, q.Poll, q.Hold = time.Minute, 50*time.Millisecond, time.Second
	q.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := &recorder{got: map[int64]int{}, ch: make(chan Job, 100)}
	q.SetResults(rec)
	return q, NewRegistry(db), rec
}

func runner(t *testing.T, reg *Registry, name string, untrusted bool, labels ...string) Runner {
	t.Helper()
	ctx := context.Background()
	tok, _, err := reg.CreateToken(ctx, time.Minute, "", "")
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := reg.Register(ctx, tok, Info{Name: name, Labels: labels, AllowUntrusted: untrusted})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func simple(key string, labels ...string) Spec {
	return Spec{Key: key, Labels: labels, CloneURL: "https://example.org/r.git", HeadSHA: sha1, Trusted: true,
		Steps: []Step{{Name: "x", Run: "true"}}}
}

func TestEnqueueRejectsBadSpecs(t *testing.T) {
	q, _, _ := testQueue(t, dbtest.SQLite(t))
	for name, s := range map[string]Spec{
		"no clone URL":       {HeadSHA: sha1, Steps: []Step{{Run: "true"}}},
		"short SHA":          {CloneURL: "u", HeadSHA: "abc123", Steps: []Step{{Run: "true"}}},
		"no steps":           {CloneURL: "u", HeadSHA: sha1},
		"empty step":         {CloneURL: "u", HeadSHA: sha1, Steps: []Step{{Name: "x", Run: "  "}}},
		"label with a comma": {CloneURL: "u", HeadSHA: sha1, Steps: []Step{{Run: "true"}}, Labels: []string{"a,b"}},
		"option as base ref": {CloneURL: "u", HeadSHA: sha1, Steps: []Step{{Run: "true"}}, BaseRef: "--upload-pack=x"},
	} {
		if _, err := q.Enqueue(context.Background(), s); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: Enqueue error = %v, want ErrBadRequest", name, err)
		}
	}
}

// freshDB returns the enclosing subtest's database ("sqlite" or "postgres") with the
// runner tables emptied, so each behaviour starts from an empty queue without paying for a
// new migrated database each time.
type freshDB func(t *testing.T) *gorm.DB

func eachKind(t *testing.T, fn func(t *testing.T, fresh freshDB)) {
	wipe := func(db *gorm.DB) freshDB {
		return func(t *testing.T) *gorm.DB {
			for _, table := range []string{"runner_job_logs", "runner_job_labels", "runner_jobs", "runners", "runner_registration_tokens"} {
				if err := db.Exec("DELETE FROM " + table).Error; err != nil {
					t.Fatal(err)
				}
			}
			return db
		}
	}
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) { fn(t, wipe(db)) })
}

func TestQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachKind(t, func(t *testing.T, fresh freshDB) {
		t.Run("same key enqueues once", func(t *testing.T) {
			q, _, _ := testQueue(t, fresh(t))
			a, err := q.Enqueue(ctx, simple("dup"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := q.Enqueue(ctx, simple("dup"))
			if err != nil || b.ID != a.ID {
				t.Fatalf("second Enqueue = job %d, %v; want job %d again", b.ID, err, a.ID)
			}
		})
		t.Run("jobs go only to runners with all their labels", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			cpu := runner(t, reg, "cpu", false, "linux")
			gpu := runner(t, reg, "gpu", false, "linux", "cuda", "h200")
			j, _ := q.Enqueue(ctx, simple("labels", "cuda", "linux"))
			if a, err := q.claim(ctx, cpu); err != nil || a != nil {
				t.Fatalf("cpu runner claimed %v, %v; want nothing", a, err)
			}
			a, err := q.claim(ctx, gpu)
			if err != nil || a == nil || a.Job.ID != j.ID || a.Job.Attempt != 1 {
				t.Fatalf("gpu runner claim = %+v, %v; want job %d attempt 1", a, err, j.ID)
			}
			if a, _ := q.claim(ctx, gpu); a != nil {
				t.Fatalf("job %d claimed twice", a.Job.ID)
			}
		})
		t.Run("untrusted jobs go only to runners that allow them", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			strict := runner(t, reg, "strict", false)
			open := runner(t, reg, "open", true)
			s := simple("untrusted")
			s.Trusted = false
			j, _ := q.Enqueue(ctx, s)
			if a, _ := q.claim(ctx, strict); a != nil {
				t.Fatalf("strict runner got untrusted job %d", a.Job.ID)
			}
			if a, _ := q.claim(ctx, open); a == nil || a.Job.ID != j.ID {
				t.Fatalf("open runner did not get the untrusted job")
			}
		})
		t.Run("a held poll wakes for a new job", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			q.Poll = time.Hour // only the wake can deliver it in time
			r := runner(t, reg, "waiter", false, "wake")
			got := make(chan *Assignment)
			go func() {
				a, _ := q.Next(ctx, r, time.Minute)
				got <- a
			}()
			time.Sleep(100 * time.Millisecond)
			j, _ := q.Enqueue(ctx, simple("wake", "wake"))
			select {
			case a := <-got:
				if a == nil || a.Job.ID != j.ID {
					t.Fatalf("poll returned %+v, want job %d", a, j.ID)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("held poll not woken by Enqueue")
			}
		})
		t.Run("stop ends held polls at once", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			r := runner(t, reg, "stopped", false)
			got := make(chan error, 1)
			go func() {
				a, err := q.Next(ctx, r, time.Minute)
				if a != nil {
					err = errors.New("got a job")
				}
				got <- err
			}()
			time.Sleep(100 * time.Millisecond)
			q.Stop()
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("held poll still held after Stop")
			}
			if a, err := q.Next(ctx, r, time.Minute); a != nil || err != nil {
				t.Fatalf("Next after Stop = %v, %v", a, err)
			}
		})
		t.Run("a poll with nothing to do returns empty after its hold", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			r := runner(t, reg, "idle", false, "nothing-has-this")
			a, err := q.Next(ctx, r, 100*time.Millisecond)
			if err != nil || a != nil {
				t.Fatalf("Next = %v, %v; want nil, nil", a, err)
			}
		})
		t.Run("heartbeat renews and tells a cancel; stale attempts lose the lease", func(t *testing.T) {
			q, reg, rec := testQueue(t, fresh(t))
			r := runner(t, reg, "hb", false)
			other := runner(t, reg, "other", false)
			j, _ := q.Enqueue(ctx, simple("hb"))
			a, _ := q.claim(ctx, r)
			ans, err := q.Heartbeat(ctx, r.ID, j.ID, a.Job.Attempt)
			if err != nil || ans.Cancel || ans.LeaseUntil.Before(time.Now().Add(30*time.Second)) {
				t.Fatalf("heartbeat = %+v, %v", ans, err)
			}
			if _, err := q.Heartbeat(ctx, other.ID, j.ID, a.Job.Attempt); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("another runner's heartbeat: %v, want ErrLeaseLost", err)
			}
			if _, err := q.Heartbeat(ctx, r.ID, j.ID, a.Job.Attempt+1); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("wrong attempt's heartbeat: %v, want ErrLeaseLost", err)
			}
			if err := q.Cancel(ctx, j.ID, "maintainer"); err != nil {
				t.Fatal(err)
			}
			ans, err = q.Heartbeat(ctx, r.ID, j.ID, a.Job.Attempt)
			if err != nil || !ans.Cancel || ans.Reason != "maintainer" {
				t.Fatalf("heartbeat after cancel = %+v, %v", ans, err)
			}
			if err := q.Finish(ctx, r.ID, j.ID, a.Job.Attempt, Report{Conclusion: Cancelled, ExitCode: -1}); err != nil {
				t.Fatal(err)
			}
			if err := q.Finish(ctx, r.ID, j.ID, a.Job.Attempt, Report{Conclusion: Cancelled, ExitCode: -1}); err != nil {
				t.Fatalf("a retried finish: %v, want no error", err)
			}
			if got := rec.wait(t, j.ID, time.Second); got.Conclusion != Cancelled {
				t.Fatalf("delivered %s", got.Conclusion)
			}
		})
		t.Run("lapsed leases requeue, then conclude as infrastructure failure", func(t *testing.T) {
			q, reg, rec := testQueue(t, fresh(t))
			q.Lease = 10 * time.Millisecond
			r := runner(t, reg, "dies", false)
			s := simple("lapse")
			s.MaxAttempts = 2
			j, _ := q.Enqueue(ctx, s)
			for attempt := 1; attempt <= 2; attempt++ {
				a, _ := q.claim(ctx, r)
				if a == nil || a.Job.Attempt != attempt {
					t.Fatalf("attempt %d: claim = %+v", attempt, a)
				}
				time.Sleep(20 * time.Millisecond)
				if n, err := q.Reap(ctx); err != nil || n != 1 {
					t.Fatalf("Reap = %d, %v; want 1 job moved", n, err)
				}
			}
			got := rec.wait(t, j.ID, time.Second)
			if got.Conclusion != InfraFailure || got.Attempt != 2 || !strings.Contains(got.Message, "lease") {
				t.Fatalf("after 2 lapsed leases: %s attempt %d: %q", got.Conclusion, got.Attempt, got.Message)
			}
			if err := q.Finish(ctx, r.ID, j.ID, 2, Report{Conclusion: Success}); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("late finish from the dead runner: %v, want ErrLeaseLost", err)
			}
		})
		t.Run("a runner that heartbeats but never reports times out on the server", func(t *testing.T) {
			q, reg, rec := testQueue(t, fresh(t))
			r := runner(t, reg, "liar", false)
			s := simple("liar")
			s.Timeout = time.Minute
			j, _ := q.Enqueue(ctx, s)
			before := time.Now()
			a, _ := q.claim(ctx, r)
			var deadline int64
			q.db.Raw(`SELECT deadline_ms FROM runner_jobs WHERE id = ?`, j.ID).Scan(&deadline)
			if want := before.Add(time.Minute + q.Lease).UnixMilli(); deadline < want || deadline > want+5000 {
				t.Fatalf("deadline %d, want assignment + timeout + one lease ≈ %d", deadline, want)
			}
			if _, err := q.Heartbeat(ctx, r.ID, j.ID, a.Job.Attempt); err != nil {
				t.Fatal(err)
			}
			// The runner heartbeats faithfully but never reports; time passes its deadline.
			q.db.Exec(`UPDATE runner_jobs SET deadline_ms = ? WHERE id = ?`, time.Now().Add(-time.Second).UnixMilli(), j.ID)
			if n, err := q.Reap(ctx); err != nil || n != 1 {
				t.Fatalf("Reap = %d, %v; want the overdue job concluded", n, err)
			}
			got := rec.wait(t, j.ID, time.Second)
			if got.Conclusion != TimedOut || got.Attempt != 1 {
				t.Fatalf("overdue job: %s attempt %d: %s", got.Conclusion, got.Attempt, got.Message)
			}
			if _, err := q.Heartbeat(ctx, r.ID, j.ID, a.Job.Attempt); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("heartbeat after the deadline: %v, want ErrLeaseLost so the runner kills it", err)
			}
		})
		t.Run("a runner's infrastructure failure is retried, then concluded", func(t *testing.T) {
			q, reg, rec := testQueue(t, fresh(t))
			r := runner(t, reg, "broken", false)
			s := simple("infra")
			s.MaxAttempts = 2
			j, _ := q.Enqueue(ctx, s)
			for attempt := 1; attempt <= 2; attempt++ {
				a, _ := q.claim(ctx, r)
				if a == nil || a.Job.Attempt != attempt {
					t.Fatalf("attempt %d: claim = %+v", attempt, a)
				}
				if err := q.Finish(ctx, r.ID, j.ID, attempt, Report{Conclusion: InfraFailure, Message: "fetch failed"}); err != nil {
					t.Fatal(err)
				}
			}
			got := rec.wait(t, j.ID, time.Second)
			if got.Conclusion != InfraFailure || got.Attempt != 2 || got.Message != "fetch failed" {
				t.Fatalf("after 2 infrastructure failures: %s attempt %d %q", got.Conclusion, got.Attempt, got.Message)
			}
			if a, _ := q.claim(ctx, r); a != nil {
				t.Fatalf("concluded job claimed again: %+v", a.Job.ID)
			}
		})
		t.Run("a clone token failure counts as an infrastructure failure", func(t *testing.T) {
			q, reg, rec := testQueue(t, fresh(t))
			q.SetCloneCredentials(failingCreds{})
			r := runner(t, reg, "tokenless", false)
			s := simple("tokenless")
			s.MaxAttempts = 2
			j, _ := q.Enqueue(ctx, s)
			for range 2 {
				if a, err := q.claim(ctx, r); a != nil || err != nil {
					t.Fatalf("claim without a clone token = %+v, %v; want nothing handed out", a, err)
				}
			}
			got := rec.wait(t, j.ID, time.Second)
			if got.Conclusion != InfraFailure || got.Attempt != 2 || !strings.Contains(got.Message, "GitHub said no") {
				t.Fatalf("%s attempt %d: %q", got.Conclusion, got.Attempt, got.Message)
			}
		})
		t.Run("cancel group spares the new head and cancels queued jobs at once", func(t *testing.T) {
			q, _, rec := testQueue(t, fresh(t))
			old, keep := simple("old"), simple("new")
			old.Group, keep.Group = "o/r#7", "o/r#7"
			keep.HeadSHA = strings.Repeat("2", 40)
			jo, _ := q.Enqueue(ctx, old)
			jn, _ := q.Enqueue(ctx, keep)
			n, err := q.CancelGroup(ctx, "o/r#7", keep.HeadSHA, "new push")
			if err != nil || n != 1 {
				t.Fatalf("CancelGroup = %d, %v; want 1", n, err)
			}
			if got := rec.wait(t, jo.ID, time.Second); got.Conclusion != Cancelled {
				t.Fatalf("old job %s", got.Conclusion)
			}
			if j, _ := q.Get(ctx, jn.ID); j.State != Queued {
				t.Fatalf("new head's job is %s, want queued", j.State)
			}
			if err := q.Cancel(ctx, 99999, "x"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("cancel unknown job: %v", err)
			}
		})
		t.Run("a refused delivery is retried after a backoff", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			flaky := &flakyResults{}
			q.SetResults(flaky)
			r := runner(t, reg, "flaky", false)
			j, _ := q.Enqueue(ctx, simple("flaky"))
			a, _ := q.claim(ctx, r)
			refused := time.Now()
			if err := q.Finish(ctx, r.ID, j.ID, a.Job.Attempt, Report{Conclusion: Success}); err != nil {
				t.Fatal(err)
			}
			q.deliverAll(ctx)
			if flaky.calls != 1 && time.Since(refused) < 900*time.Millisecond {
				t.Fatalf("%d delivery calls right after a refusal, want 1 (the next waits a second)", flaky.calls)
			}
			time.Sleep(1100 * time.Millisecond)
			q.deliverAll(ctx)
			q.deliverAll(ctx)
			if flaky.calls != 2 || flaky.ok != 1 {
				t.Fatalf("after the backoff: %d calls, %d accepted; want 2 and 1", flaky.calls, flaky.ok)
			}
		})
		t.Run("prune drops old logs and results but keeps the job", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			r := runner(t, reg, "prune", false)
			j, _ := q.Enqueue(ctx, simple("prune"))
			a, _ := q.claim(ctx, r)
			q.AppendLog(ctx, r.ID, j.ID, a.Job.Attempt, 0, []byte("old log\n"))
			q.Finish(ctx, r.ID, j.ID, a.Job.Attempt, Report{Conclusion: Success, Files: map[string][]byte{"r.json": []byte("{}")}})
			if n, err := q.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
				t.Fatalf("Prune of an hour ago = %d, %v; want 0 (the job is newer)", n, err)
			}
			if n, err := q.Prune(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
				t.Fatalf("Prune = %d, %v; want 1", n, err)
			}
			if log := logText(t, q, j.ID, 1); log != "" {
				t.Errorf("log after prune %q", log)
			}
			got, err := q.Get(ctx, j.ID)
			if res, _ := q.Result(ctx, j.ID); err != nil || got.Conclusion != Success || len(res.Files) != 0 {
				t.Errorf("after prune: job %+v, %v, files %v", got.Conclusion, err, res.Files)
			}
		})
		t.Run("log chunks are stored once, in order, and bounded", func(t *testing.T) {
			q, reg, _ := testQueue(t, fresh(t))
			q.MaxLogBytes = 10
			r := runner(t, reg, "logs", false)
			j, _ := q.Enqueue(ctx, simple("logs"))
			a, _ := q.claim(ctx, r)
			for _, c := range []struct {
				seq   int
				data  string
				trunc bool
			}{{0, "abc", false}, {1, "def", false}, {0, "abc", false}, {2, "ghijklmnop", true}, {3, "more", true}} {
				trunc, err := q.AppendLog(ctx, r.ID, j.ID, a.Job.Attempt, c.seq, []byte(c.data))
				if err != nil || trunc != c.trunc {
					t.Fatalf("chunk %d: truncated=%v, %v; want %v", c.seq, trunc, err, c.trunc)
				}
			}
			log := logText(t, q, j.ID, 0)
			if !strings.HasPrefix(log, "abcdef\n[gradforge: log truncated after 6 bytes]") || strings.Contains(log, "more") {
				t.Fatalf("stored log %q", log)
			}
			if tail, _ := q.Logs(ctx, j.ID, 0, 1); len(tail) != 1 || tail[0].Seq != 2 {
				t.Fatalf("Logs after seq 1 = %+v", tail)
			}
			if _, err := q.AppendLog(ctx, r.ID, j.ID, a.Job.Attempt, 9, make([]byte, MaxChunkBytes+1)); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("oversized chunk: %v", err)
			}
		})
	})
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		reg := NewRegistry(db)
		tok, _, err := reg.CreateToken(ctx, time.Hour, "gpu box", "alice")
		if err != nil {
			t.Fatal(err)
		}
		r, cred, err := reg.Register(ctx, tok, Info{Name: "box", Labels: []string{"CUDA", "h200", "cuda"}, GPU: "NVIDIA H200"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(r.Labels, ",") != "cuda,h200" {
			t.Errorf("labels %v, want normalised cuda,h200", r.Labels)
		}
		if _, _, err := reg.Register(ctx, tok, Info{Name: "again"}); !errors.Is(err, ErrBadToken) {
			t.Errorf("second use of a token: %v, want ErrBadToken", err)
		}
		short, _, _ := reg.CreateToken(ctx, time.Millisecond, "", "")
		time.Sleep(5 * time.Millisecond)
		if _, _, err := reg.Register(ctx, short, Info{Name: "late"}); !errors.Is(err, ErrBadToken) {
			t.Errorf("expired token: %v, want ErrBadToken", err)
		}
		var stored int64
		db.Raw(`SELECT count(*) FROM runners WHERE credential_hash = ? OR credential_hash = ?`, cred, tok).Scan(&stored)
		var tokStored int64
		db.Raw(`SELECT count(*) FROM runner_registration_tokens WHERE token_hash = ?`, tok).Scan(&tokStored)
		if stored != 0 || tokStored != 0 {
			t.Error("a secret is stored in clear; only hashes may be")
		}
		got, err := reg.Authenticate(ctx, cred)
		if err != nil || got.ID != r.ID {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		if _, err := reg.Authenticate(ctx, cred+"x"); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("wrong credential: %v", err)
		}
		list, err := reg.List(ctx)
		if err != nil || len(list) != 1 || list[0].GPU != "NVIDIA H200" || list[0].Busy || !list[0].Online(time.Now()) {
			t.Fatalf("List = %+v, %v", list, err)
		}
		db.Exec(`UPDATE runners SET last_seen_at = ? WHERE id = ?`, time.Now().UTC().Add(-time.Hour), r.ID)
		if list, _ := reg.List(ctx); list[0].Online(time.Now()) {
			t.Fatal("a runner last seen an hour ago shows online")
		}
		if err := reg.Touch(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if list, _ := reg.List(ctx); !list[0].Online(time.Now()) {
			t.Fatal("a touched runner (busy with a long job, heartbeating) shows offline")
		}
		if err := reg.Revoke(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Authenticate(ctx, cred); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("revoked credential: %v, want ErrUnauthorized", err)
		}
		if err := reg.Revoke(ctx, 12345); !errors.Is(err, ErrRunnerUnknown) {
			t.Errorf("revoke unknown runner: %v", err)
		}
	})
}

func TestRegistryGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		reg := NewRegistry(db)
		a := runner(t, reg, "alpha", false, "cpu")
		b := runner(t, reg, "beta", true, "cuda", "h200")
		if err := reg.Revoke(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			id   int64
			want Status
		}{
			{"finds the runner by id, not the first", b.ID, Status{ID: b.ID, Name: "beta", Labels: []string{"cuda", "h200"}, AllowUntrusted: true}},
			{"a revoked runner keeps its name", a.ID, Status{ID: a.ID, Name: "alpha", Labels: []string{"cpu"}, Revoked: true}},
		} {
			got, err := reg.Get(ctx, tc.id)
			got.CreatedAt, got.LastSeen = time.Time{}, time.Time{}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: Get = %+v, %v; want %+v", tc.name, got, err, tc.want)
			}
		}
		if _, err := reg.Get(ctx, b.ID+100); !errors.Is(err, ErrRunnerUnknown) {
			t.Errorf("unknown runner: %v, want ErrRunnerUnknown", err)
		}
	})
}

// flakyResults refuses its first delivery.
type flakyResults struct{ calls, ok int }

func (f *flakyResults) JobFinished(context.Context, Job, Result) error {
	f.calls++
	if f.calls == 1 {
		return errors.New("GitHub is down")
	}
	f.ok++
	return nil
}

// TestReplicasWakeEachOther has a runner long-polling one replica while a job is enqueued
// through another sharing the PostgreSQL database; with polling effectively off, only the
// NOTIFY between replicas can deliver it in time.
func TestReplicasWakeEachOther(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	a, reg, _ := testQueue(t, db)
	b, _, _ := testQueue(t, db)
	a.Poll, b.Poll = time.Hour, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx, time.Hour)
	r := runner(t, reg, "remote", false, "linux")
	time.Sleep(300 * time.Millisecond) // b is listening
	got := make(chan *Assignment, 1)
	go func() {
		asg, _ := b.Next(ctx, r, time.Minute)
		got <- asg
	}()
	time.Sleep(100 * time.Millisecond)
	j, err := a.Enqueue(ctx, simple("cross", "linux"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case asg := <-got:
		if asg == nil || asg.Job.ID != j.ID {
			t.Fatalf("replica b's poll returned %+v, want job %d", asg, j.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a job enqueued through replica a never reached a poll held by replica b")
	}
}

type failingCreds struct{}

func (failingCreds) CloneToken(context.Context, Job) (string, error) {
	return "", errors.New("GitHub said no")
}
