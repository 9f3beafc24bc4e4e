package ci

import (
	"context"
	"math/rand/v2"
	"testing"
)

// BenchmarkLinesGate runs the lines gate on this repository: HEAD against its parent, every
// core file read from git objects and scanned.
func BenchmarkLinesGate(b *testing.B) {
	ctx := context.Background()
	repo := Repo{Dir: ".."}
	head, err := repo.Resolve(ctx, "HEAD")
	if err != nil {
		b.Skipf("not in a git checkout: %v", err)
	}
	base, err := repo.Parent(ctx, head)
	if err != nil {
		b.Fatal(err)
	}
	var files int
	for b.Loop() {
		rep, err := Lines(ctx, repo, Core{}, base, head, DefaultBudget)
		if err != nil {
			b.Fatal(err)
		}
		files = len(rep.Files)
	}
	b.ReportMetric(float64(files), "files")
}

// BenchmarkRatioCI is the speed gate's statistic for one benchmark with 10 pairs.
func BenchmarkRatioCI(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	base, head := pairs(rng, 10, 1.02, 0.03)
	for b.Loop() {
		RatioCI(base, head, 0.95)
	}
}
