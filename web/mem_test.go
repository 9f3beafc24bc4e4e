package web

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// memData stands in for the bounties, ci and runners packages in this package's tests, so
// the web app's own behaviour (filters, auth, CSRF, escaping, rendering) is tested against
// data the test controls; the adapters to the real packages are tested in adapt_*_test.go.
type memData struct {
	mu        sync.Mutex
	bounties  []Bounty
	payouts   []Payout
	proposals []Proposal
	people    []PipelineEntry
	offers    map[string]*Offer
	runs      []Run
	logs      map[int64][]LogChunk
	runners   []Runner
	settings  map[string]RepoSettings
	perms     map[string]string // repo+" "+login → permission
	actions   []string          // what the console did, in order
}

func newMem() *memData {
	return &memData{offers: map[string]*Offer{}, logs: map[int64][]LogChunk{}, settings: map[string]RepoSettings{}, perms: map[string]string{}}
}

func (m *memData) sources() Sources {
	return Sources{Bounties: m, Console: m, CI: m, Runners: m, Settings: m, Permissions: m}
}

func (m *memData) List(_ context.Context, f BountyFilter) ([]Bounty, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Bounty
	words := strings.Fields(strings.ToLower(f.Query))
next:
	for _, b := range m.bounties {
		if f.Repo != "" && b.Repo != f.Repo || f.Status != "" && b.Status != f.Status ||
			f.MinCents > 0 && b.AmountCents < f.MinCents || f.MaxCents > 0 && b.AmountCents > f.MaxCents {
			continue
		}
		if f.Label != "" {
			found := false
			for _, l := range b.Labels {
				found = found || l == f.Label
			}
			if !found {
				continue
			}
		}
		for _, w := range words {
			if !strings.Contains(strings.ToLower(b.Title), w) {
				continue next
			}
		}
		out = append(out, b)
	}
	sort.SliceStable(out, func(i, j int) bool {
		switch f.Sort {
		case "age":
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		case "new":
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].AmountCents > out[j].AmountCents
	})
	total := len(out)
	if f.Offset >= len(out) {
		return nil, total, nil
	}
	out = out[f.Offset:]
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, total, nil
}

func (m *memData) Get(_ context.Context, repo string, issue int) (Bounty, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.bounties {
		if b.Repo == repo && b.Issue == issue {
			return b, nil
		}
	}
	return Bounty{}, ErrNotFound
}

func (m *memData) Leaderboard(context.Context, int) ([]Leader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	by := map[string]*Leader{}
	for _, p := range m.payouts {
		if p.Status == "paid" {
			if by[p.Login] == nil {
				by[p.Login] = &Leader{Login: p.Login}
			}
			by[p.Login].PaidCents += p.AmountCents
			by[p.Login].Bounties++
		}
	}
	var out []Leader
	for _, l := range by {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PaidCents > out[j].PaidCents })
	return out, nil
}

func (m *memData) Contributor(_ context.Context, login string) (Contributor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := Contributor{Login: login, Stage: "contributor"}
	for _, p := range m.people {
		if p.Login == login {
			c.Stage = p.Stage
		}
	}
	for _, p := range m.payouts {
		if p.Login == login && p.Status == "paid" {
			c.Paid = append(c.Paid, p)
			c.PaidCents += p.AmountCents
		}
	}
	for _, p := range m.proposals {
		if p.Login == login {
			c.Proposals = append(c.Proposals, p)
		}
	}
	return c, nil
}

func (m *memData) PaidPerMonth(context.Context, string) ([]MonthTotal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	by := map[time.Time]int64{}
	for _, p := range m.payouts {
		if p.Status == "paid" {
			t := p.CreatedAt.UTC()
			by[time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)] += p.AmountCents
		}
	}
	var out []MonthTotal
	for t, c := range by {
		out = append(out, MonthTotal{t, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Month.Before(out[j].Month) })
	return out, nil
}

func (m *memData) OpenTotal(_ context.Context, repo string) (int64, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c int64
	n := 0
	for _, b := range m.bounties {
		if b.Repo == repo && b.Status == "open" {
			c += b.AmountCents
			n++
		}
	}
	return c, n, nil
}

func (m *memData) Repos(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, b := range m.bounties {
		if !seen[b.Repo] {
			seen[b.Repo] = true
			out = append(out, b.Repo)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memData) AwaitingPayouts(_ context.Context, repo string) ([]Payout, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Payout
	for _, p := range m.payouts {
		if p.Repo == repo && p.Status == "awaiting_approval" {
			out = append(out, p)
		}
	}
	return out, nil
}

func (m *memData) setPayout(repo string, id int64, from, to, by, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.payouts {
		if p.ID == id && p.Repo == repo {
			if p.Status != from {
				return BadInput("payout %d is %s, not %s", id, p.Status, from)
			}
			m.payouts[i].Status, m.payouts[i].Reason = to, reason
			m.actions = append(m.actions, fmt.Sprintf("%s payout %d by %s", to, id, by))
			return nil
		}
	}
	return ErrNotFound
}

func (m *memData) ApprovePayout(_ context.Context, repo string, id int64, by string) error {
	return m.setPayout(repo, id, "awaiting_approval", "approved", by, "")
}

func (m *memData) DeclinePayout(_ context.Context, repo string, id int64, by, reason string) error {
	return m.setPayout(repo, id, "awaiting_approval", "declined", by, reason)
}

func (m *memData) Proposals(_ context.Context, repo string) ([]Proposal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Proposal
	for _, p := range m.proposals {
		if p.Repo == repo {
			out = append(out, p)
		}
	}
	return out, nil
}

func (m *memData) setProposal(repo string, id int64, to, by, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.proposals {
		if p.ID == id && p.Repo == repo && p.Status == "pending" {
			m.proposals[i].Status, m.proposals[i].Reason = to, reason
			m.actions = append(m.actions, fmt.Sprintf("%s proposal %d by %s", to, id, by))
			return nil
		}
	}
	return ErrNotFound
}

func (m *memData) AcceptProposal(_ context.Context, repo string, id int64, by string) error {
	return m.setProposal(repo, id, "accepted", by, "")
}

func (m *memData) DeclineProposal(_ context.Context, repo string, id int64, by, reason string) error {
	return m.setProposal(repo, id, "declined", by, reason)
}

func (m *memData) Pipeline(context.Context) ([]PipelineEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]PipelineEntry(nil), m.people...)
	for i := range out {
		out[i].HasOffer = m.offers[out[i].Login] != nil
	}
	return out, nil
}

func (m *memData) Offer(_ context.Context, login, viewer string, maint bool) (*Offer, error) {
	if viewer != login && !maint {
		return nil, ErrForbidden
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.offers[login], nil
}

func (m *memData) RecordOffer(_ context.Context, o Offer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offers[o.Login] = &o
	m.actions = append(m.actions, "offer for "+o.Login+" by "+o.RecordedBy)
	return nil
}

func (m *memData) MarkCandidate(_ context.Context, login, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.people {
		if p.Login == login {
			m.people[i].Stage = "candidate"
			m.actions = append(m.actions, "candidate "+login+" by "+by)
			return nil
		}
	}
	return ErrNotFound
}

func (m *memData) Runs(context.Context, string, int) ([]Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Run(nil), m.runs...), nil
}

func (m *memData) Run(_ context.Context, id int64) (Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.runs {
		if r.ID == id {
			return r, nil
		}
	}
	return Run{}, ErrNotFound
}

func (m *memData) SpeedHistory(context.Context, string) ([]Series, error) {
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var mm, conv Series
	mm.Name, mm.Unit, conv.Name, conv.Unit = "matmul_512", "ns/op", "conv2d_64", "ns/op"
	for i := range 12 {
		sha := fmt.Sprintf("%07x%033d", (i+1)*0x1f3a5b7, i)
		mm.Points = append(mm.Points, Point{SHA: sha, At: t0.Add(time.Duration(i) * 24 * time.Hour), Value: 1e6 - float64(i)*2e4})
		conv.Points = append(conv.Points, Point{SHA: sha, At: t0.Add(time.Duration(i) * 24 * time.Hour), Value: 3e6 + float64(i%4)*1e5})
	}
	return []Series{mm, conv}, nil
}

func (m *memData) LineHistory(context.Context, string) (Series, error) {
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := Series{Name: "framework core", Unit: "lines"}
	for i := range 12 {
		s.Points = append(s.Points, Point{SHA: fmt.Sprintf("%07x%033d", (i+1)*0x1f3a5b7, i), At: t0.Add(time.Duration(i) * 24 * time.Hour), Value: float64(7000 + i*90)})
	}
	return s, nil
}

func (m *memData) Log(_ context.Context, job int64, after int) ([]LogChunk, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []LogChunk
	for _, ch := range m.logs[job] {
		if ch.Seq > after {
			out = append(out, ch)
		}
	}
	return out, len(m.logs[job]) > 2, nil
}

func (m *memData) Artifact(_ context.Context, job int64, name string) ([]byte, error) {
	return []byte("artifact " + name), nil
}

func (m *memData) CreateToken(_ context.Context, by string, ttl time.Duration) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.actions = append(m.actions, "token by "+by)
	return "gfr_testtoken", time.Now().Add(ttl), nil
}

func (m *memData) Revoke(_ context.Context, id int64, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.runners {
		if m.runners[i].ID == id {
			m.runners[i].Revoked = true
			return nil
		}
	}
	return ErrNotFound
}

func (m *memData) Permission(_ context.Context, repo, login string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.perms[repo+" "+login]; ok {
		return p, nil
	}
	return "read", nil
}

func (m *memData) Save(_ context.Context, s RepoSettings, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settings[s.Repo] = s
	m.actions = append(m.actions, "settings "+s.Repo+" by "+by)
	return nil
}

func (m *memData) Registered(context.Context) ([]Runner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Runner(nil), m.runners...), nil
}

func (m *memData) Load(_ context.Context, repo string) (RepoSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settings[repo], nil
}

func (m *memData) FiltersLabels() bool { return true }

func (m *memData) Artifacts(_ context.Context, job int64) ([]Artifact, error) { return nil, nil }
func (m *memData) JobRunner(context.Context, int64) (string, error)           { return "", nil }
