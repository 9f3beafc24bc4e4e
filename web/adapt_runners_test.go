package web

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/gradforge/gradforge/runners"
	"gorm.io/gorm"
)

// TestRunnerSource drives the real runners package: a registration token from the console
// side, a runner registering with it, a job that streams log chunks and finishes with an
// artifact, and a revoke, each read back through the adapter the pages use.
func TestRunnerSource(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		reg, q := runners.NewRegistry(db), runners.NewQueue(db)
		q.Hold = 200 * time.Millisecond
		src := RunnerSource{Registry: reg, Queue: q}

		tok, exp, err := src.CreateToken(ctx, "maint", time.Hour)
		if err != nil || tok == "" || time.Until(exp) < 59*time.Minute {
			t.Fatalf("CreateToken = %q, %v, %v", tok, exp, err)
		}
		rn, _, err := reg.Register(ctx, tok, runners.Info{Name: "h200-a", Labels: []string{"cuda"}, Version: "1.2.3", GPU: "NVIDIA H200"})
		if err != nil {
			t.Fatal(err)
		}
		job, err := q.Enqueue(ctx, runners.Spec{Key: "k1", Repo: "o/r", CloneURL: "https://example.invalid/o/r.git", HeadSHA: "0123456789012345678901234567890123456789", Labels: []string{"cuda"}, Steps: []runners.Step{{Name: "t", Run: "true"}}, Trusted: true})
		if err != nil {
			t.Fatal(err)
		}
		as, err := q.Next(ctx, rn, time.Second)
		if err != nil || as == nil {
			t.Fatalf("Next = %v, %v", as, err)
		}
		waiting, err := q.Enqueue(ctx, runners.Spec{Key: "k2", Repo: "o/r", CloneURL: "https://example.invalid/o/r.git", HeadSHA: "0123456789012345678901234567890123456789", Labels: []string{"rocm"}, Steps: []runners.Step{{Name: "t", Run: "true"}}, Trusted: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			job  int64
			want string
		}{{"a running job names its runner", job.ID, "h200-a"}, {"a job no runner has taken names none", waiting.ID, ""}} {
			if got, err := src.JobRunner(ctx, tc.job); err != nil || got != tc.want {
				t.Errorf("%s: JobRunner = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		}
		if _, err := src.JobRunner(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("runner of an unknown job: %v", err)
		}
		list, err := src.Registered(ctx)
		if err != nil || len(list) != 1 || list[0].Name != "h200-a" || list[0].GPU != "NVIDIA H200" || !list[0].Busy {
			t.Fatalf("Registered = %+v, %v", list, err)
		}
		for i, s := range []string{"one\n", "two\n", "three\n"} {
			if _, err := q.AppendLog(ctx, rn.ID, job.ID, 1, i+1, []byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		chunks, done, err := src.Log(ctx, job.ID, 1)
		if err != nil || done || len(chunks) != 2 || chunks[0].Seq != 2 || chunks[1].Text != "three\n" {
			t.Fatalf("Log after 1 = %+v, done %v, %v", chunks, done, err)
		}
		if err := q.Finish(ctx, rn.ID, job.ID, 1, runners.Report{Conclusion: runners.Success, Files: map[string][]byte{"report.json": []byte(`{"ok":true}`)}}); err != nil {
			t.Fatal(err)
		}
		if _, done, _ := src.Log(ctx, job.ID, 3); !done {
			t.Fatal("log of a finished job is not done")
		}
		if b, err := src.Artifact(ctx, job.ID, "report.json"); err != nil || string(b) != `{"ok":true}` {
			t.Fatalf("Artifact = %q, %v", b, err)
		}
		if arts, err := src.Artifacts(ctx, job.ID); err != nil || len(arts) != 1 || arts[0] != (Artifact{Name: "report.json", Bytes: 11}) {
			t.Fatalf("Artifacts = %+v, %v", arts, err)
		}
		if _, err := src.Artifact(ctx, job.ID, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing artifact: %v", err)
		}
		if _, _, err := src.Log(ctx, 9999, 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("log of an unknown job: %v", err)
		}
		if err := src.Revoke(ctx, rn.ID, "maint"); err != nil {
			t.Fatal(err)
		}
		if err := src.Revoke(ctx, 9999, "maint"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke unknown runner: %v", err)
		}
		if list, _ := src.Registered(ctx); !list[0].Revoked {
			t.Fatal("revoked runner not shown as revoked")
		}

		// And through the pages: the runners page and the JSON log lines.
		mem := newMem()
		seed(mem)
		h := newHarnessWith(t, db, Config{}, mem)
		h.app.runners = src
		c := h.client()
		must(t, c.get("/runners"), http.StatusOK, "h200-a", "NVIDIA H200", "revoked")
		must(t, c.get("/api/jobs/"+itoa(job.ID)+"/log?after=2"), http.StatusOK, `"text":"three\n"`, `"done":true`)
		// A CI run whose record does not name its jobs' runners: the pages ask the runners
		// package, which still knows who ran the finished job after its runner was revoked.
		mem.runs = append(mem.runs, Run{ID: 2, Repo: "o/r", PR: 3, SHA: "0123456789012345678901234567890123456789", Title: "o/r#3", Status: "in_progress",
			Jobs: []Job{{ID: job.ID, Name: "parity", Status: "passed"}, {ID: waiting.ID, Name: "speed", Status: "queued"}}})
		must(t, c.get("/runs/2"), http.StatusOK, "<td>parity</td><td><span class=\"status s-passed\">passed</span></td><td>h200-a</td>",
			"<td>speed</td><td><span class=\"status s-queued\">queued</span></td><td>—</td>")
		must(t, c.get("/runs/2/jobs/"+itoa(job.ID)+"/log"), http.StatusOK, "passed</span> on h200-a")
		must(t, c.get("/api/runs/2"), http.StatusOK, `"name":"parity","status":"passed","runner":"h200-a"`)
	})
}
