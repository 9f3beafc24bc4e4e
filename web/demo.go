package web

import (
	"context"
	"fmt"
	"time"

	"github.com/gradforge/gradforge/bounties"
	"github.com/gradforge/gradforge/runners"
)

// demoBounties are the board `gradforge serve --demo` starts with.
var demoBounties = []struct {
	repo    string
	issue   int
	title   string
	dollars int64
	sponsor string
	labels  []string
}{
	{"gradforge/gradforge", 101, "Fuse elementwise chains into the reduce kernel that consumes them", 500, "maint", []string{"kernels", "good first issue"}},
	{"gradforge/gradforge", 102, "ONNX Resize with every coordinate transformation mode", 300, "maint", []string{"onnx"}},
	{"gradforge/gradforge", 103, "CUDA conv2d within 1.2x of cuDNN on ResNet-50 shapes", 1500, "sponsorco", []string{"cuda", "speed"}},
	{"gradforge/gradforge", 104, "Int8 matmul with float accumulation on CPU", 200, "maint", []string{"int8"}},
	{"gradforge/gradforge", 105, "BEAM search: cache chosen kernel options on disk", 250, "maint", []string{"kernels", "beam"}},
	{"gradforge/gradforge", 106, "LayerNorm backward in one kernel", 400, "sponsorco", []string{"kernels"}},
	{"gradforge/gradforge", 107, "Flash-attention style fused softmax(QKᵀ)V", 2000, "sponsorco", []string{"cuda", "kernels"}},
	{"gradforge/gradforge", 108, "OpenCL backend passes the parity suite on PoCL", 750, "maint", []string{"opencl"}},
	{"gradforge/gradforge", 109, "Safetensors loading without copying (mmap)", 150, "maint", []string{"good first issue"}},
	{"gradforge/tools", 11, "Speed chart: annotate commits that changed a benchmark by 5 %", 100, "maint", []string{"web"}},
	{"gradforge/tools", 12, "Badge colours by amount", 50, "maint", []string{"web", "good first issue"}},
	{"gradforge/tools", 13, "Runner page: show each GPU's memory and utilisation", 120, "maint", []string{"web", "runners"}},
}

// SeedDemo fills an empty forge with demo data through the packages' own commands, so the
// pages have something to show on a laptop: funded bounties, attempts, won claims awaiting
// approval, a hiring candidate with an offer, and a registered runner. Every command carries
// a fixed request key, so seeding twice changes nothing.
func SeedDemo(ctx context.Context, svc *bounties.Service, reg *runners.Registry) error {
	veteran := func(login string) bounties.Contributor {
		return bounties.Contributor{Login: login, CreatedAt: time.Now().AddDate(-4, 0, 0), MergedPRs: 12}
	}
	for _, b := range demoBounties {
		if _, err := svc.Fund(ctx, bounties.FundInput{Repo: b.repo, Issue: b.issue, Title: b.title, Labels: b.labels, Sponsor: b.sponsor, AmountCents: b.dollars * 100,
			FromPlatform: true, Maintainer: true, RequestKey: fmt.Sprintf("demo:fund:%s#%d", b.repo, b.issue)}); err != nil {
			return fmt.Errorf("demo: fund %s#%d: %w", b.repo, b.issue, err)
		}
	}
	// A second sponsor pools on the biggest bounty.
	if _, err := svc.Fund(ctx, bounties.FundInput{Repo: "gradforge/gradforge", Issue: 107, Title: demoBounties[6].title, Sponsor: "maint", AmountCents: 500_00,
		FromPlatform: true, Maintainer: true, RequestKey: "demo:fund:pool"}); err != nil {
		return fmt.Errorf("demo: pool: %w", err)
	}
	for _, a := range []struct {
		issue int
		who   string
	}{{101, "alice"}, {106, "bob"}, {108, "carol"}} {
		if _, err := svc.Attempt(ctx, bounties.AttemptInput{Repo: "gradforge/gradforge", Issue: a.issue, Who: veteran(a.who)}); err != nil {
			return fmt.Errorf("demo: attempt #%d: %w", a.issue, err)
		}
	}
	// Two merged pull requests that claimed bounties: their payouts await a maintainer.
	for _, w := range []struct {
		issue, pr int
		who       string
	}{{104, 201, "bob"}, {109, 202, "dave"}} {
		if _, err := svc.Claim(ctx, bounties.ClaimInput{Repo: "gradforge/gradforge", PR: w.pr, Issue: w.issue, Author: w.who, Actor: w.who}); err != nil {
			return fmt.Errorf("demo: claim #%d: %w", w.issue, err)
		}
		if _, err := svc.OnMerged(ctx, bounties.MergedPR{Repo: "gradforge/gradforge", Number: w.pr, Merged: true, Author: veteran(w.who), Claims: []int{w.issue}}); err != nil {
			return fmt.Errorf("demo: merge #%d: %w", w.pr, err)
		}
	}
	if _, err := svc.MarkCandidate(ctx, bounties.CandidateInput{Login: "dave", Actor: "maint", Maintainer: true}); err != nil {
		return fmt.Errorf("demo: candidate: %w", err)
	}
	offers, err := svc.Offers(ctx, "maint", true, "dave")
	if err != nil {
		return fmt.Errorf("demo: offers: %w", err)
	}
	if len(offers) == 0 {
		if _, err := svc.RecordOffer(ctx, bounties.OfferInput{Login: "dave", Actor: "maint", Maintainer: true, StipendCents: 9000_00, StipendPeriod: "month",
			EquityBps: 50, VestingStart: time.Now().UTC().AddDate(0, 1, 0).Truncate(24 * time.Hour), CliffMonths: 12, VestingMonths: 48}); err != nil {
			return fmt.Errorf("demo: offer: %w", err)
		}
	}
	list, err := reg.List(ctx)
	if err != nil {
		return fmt.Errorf("demo: runners: %w", err)
	}
	if len(list) == 0 {
		tok, _, err := reg.CreateToken(ctx, time.Hour, "demo", "maint")
		if err != nil {
			return fmt.Errorf("demo: runner token: %w", err)
		}
		if _, _, err := reg.Register(ctx, tok, runners.Info{Name: "demo-h200", Labels: []string{"cuda", "h200"}, Version: "demo", GPU: "NVIDIA H200"}); err != nil {
			return fmt.Errorf("demo: register runner: %w", err)
		}
	}
	return nil
}
