package ci

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/gradforge/gradforge/runners"
	"gorm.io/gorm"
)

// TestRunnerQueueAcknowledgesForeignJobs finishes jobs ci did not queue — one queued by hand with
// no ci run id, one naming a run ci does not have — and checks the queue's delivery of each
// is accepted at once rather than retried with backoff.
func TestRunnerQueueAcknowledgesForeignJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		q := runners.NewQueue(db)
		q.SetResults((&Service{DB: db, Dispatch: RunnerQueue{q}}).Results())
		reg := runners.NewRegistry(db)
		tok, _, err := reg.CreateToken(ctx, time.Minute, "test", "test")
		if err != nil {
			t.Fatal(err)
		}
		rn, _, err := reg.Register(ctx, tok, runners.Info{Name: "r", Labels: []string{"linux"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, meta string }{
			{"queued by hand (runner enqueue)", ""},
			{"names a run ci does not have", "999999"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				j, err := q.Enqueue(ctx, runners.Spec{Repo: "owner/repo", CloneURL: "/nowhere", HeadSHA: strings.Repeat("a", 40), Meta: tc.meta,
					Steps: []runners.Step{{Name: "s", Run: "true"}}, Trusted: true})
				if err != nil {
					t.Fatal(err)
				}
				a, err := q.Next(ctx, rn, time.Second)
				if err != nil || a == nil || a.Job.ID != j.ID {
					t.Fatalf("Next = %+v, %v; want job %d", a, err, j.ID)
				}
				if err := q.Finish(ctx, rn.ID, j.ID, a.Job.Attempt, runners.Report{Conclusion: runners.Success}); err != nil {
					t.Fatal(err)
				}
				got, err := q.Get(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != runners.Finished || got.DeliveredAt.IsZero() {
					t.Errorf("job %d is %s, delivered at %v: want finished and its delivery acknowledged", j.ID, got.State, got.DeliveredAt)
				}
			})
		}
	})
}
