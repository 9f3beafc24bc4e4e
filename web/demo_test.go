package web

import (
	"net/http"
	"testing"

	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/migrations/dbtest"
	"github.com/gradforge/gradforge/runners"
	"gorm.io/gorm"
)

// TestSeedDemo seeds the demo twice through the real packages and looks at it as a newcomer
// would: the board, a bounty, the console with payouts awaiting, the runner list.
func TestSeedDemo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		svc, reg := bounties.New(db, bounties.Config{}), runners.NewRegistry(db)
		for range 2 { // the second run must change nothing
			if err := SeedDemo(t.Context(), svc, reg); err != nil {
				t.Fatal(err)
			}
		}
		src := BountySource{S: svc}
		h := newHarnessSources(t, db, Config{DevLogin: true}, Sources{Bounties: src, Console: src, Settings: src, Runners: RunnerSource{Registry: reg, Queue: runners.NewQueue(db)}})
		c := h.client()
		must(t, c.get("/"), http.StatusOK, "10 bounties match", "$2,500", "Flash-attention")
		must(t, c.get("/bounties/gradforge/gradforge/101"), http.StatusOK, "@alice", "locked until")
		must(t, c.get("/runners"), http.StatusOK, "demo-h200")
		c.signIn("maint", "maintainer")
		must(t, c.get("/console/gradforge/gradforge"), http.StatusOK, "@bob", "$200", "@dave", "$150")
		must(t, c.get("/console/pipeline"), http.StatusOK, "@dave", "Offer (private)")
		must(t, c.get("/people/dave/offer"), http.StatusOK, "$9,000 per month", "0.50 %")
	})
}
