package ci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// Head is one pull-request commit with the newest run of each gate, for the web app.
type Head struct {
	ID        int64 // the id of its first run; Service.Head finds it again
	Repo      string
	Number    int
	SHA       string
	CreatedAt time.Time
	Runs      []Run // newest attempt per gate, in Gates order
}

// Heads lists the newest pull-request commits that have runs, newest first.
func (s *Service) Heads(ctx context.Context, repo string, limit int) ([]Head, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	db := s.DB.WithContext(ctx)
	q := db.Model(&Run{}).Select("MIN(id) AS id, repo, number, head_sha").Group("repo, number, head_sha")
	if repo != "" {
		q = q.Where("repo = ?", repo)
	}
	var rows []Run
	if err := q.Order("id DESC").Limit(limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]Head, 0, len(rows))
	for _, r := range rows {
		h, err := s.head(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// Head returns the commit whose first run has this id.
func (s *Service) Head(ctx context.Context, id int64) (Head, error) {
	var r Run
	err := s.DB.WithContext(ctx).Take(&r, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Head{}, fmt.Errorf("run %d: %w", id, ErrUnknownRun)
	} else if err != nil {
		return Head{}, fmt.Errorf("run %d: %w", id, err)
	}
	return s.head(ctx, r)
}

func (s *Service) head(ctx context.Context, first Run) (Head, error) {
	var runs []Run
	if err := s.DB.WithContext(ctx).Where("repo = ? AND number = ? AND head_sha = ?", first.Repo, first.Number, first.HeadSHA).
		Order("attempt").Find(&runs).Error; err != nil {
		return Head{}, fmt.Errorf("runs of %s@%s: %w", first.Repo, short(first.HeadSHA), err)
	}
	h := Head{Repo: first.Repo, Number: first.Number, SHA: first.HeadSHA}
	latest := map[string]Run{}
	for i, r := range runs {
		if i == 0 || r.ID < h.ID {
			h.ID, h.CreatedAt = r.ID, r.CreatedAt
		}
		latest[r.Gate] = r
	}
	for _, g := range Gates {
		if r, ok := latest[g]; ok {
			h.Runs = append(h.Runs, r)
		}
	}
	return h, nil
}

// Table is a gate result as rows, for pages that show it without markdown.
func (r Run) Table() (columns []string, rows [][]string, err error) {
	if r.Result == nil {
		return nil, nil, nil
	}
	data := []byte(*r.Result)
	switch r.Gate {
	case GateLines:
		var rep LinesReport
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, nil, fmt.Errorf("lines result of run %d: %w", r.ID, err)
		}
		for _, f := range rep.Files {
			rows = append(rows, []string{f.Path, strconv.Itoa(f.Base), strconv.Itoa(f.Head), signedOrZero(f.Diff())})
		}
		rows = append(rows, []string{"total", strconv.Itoa(rep.Base), strconv.Itoa(rep.Head), signedOrZero(rep.Head - rep.Base)})
		return []string{"file", "base", "head", "diff"}, rows, nil
	case GateSpeed:
		var rep SpeedReport
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, nil, fmt.Errorf("speed result of run %d: %w", r.ID, err)
		}
		for _, b := range rep.Benchmarks {
			rows = append(rows, []string{b.Name, fmtNs(b.Base), fmtNs(b.Head), fmtRatio(b.Ratio), b.interval(), b.Verdict})
		}
		return []string{"benchmark", "base", "head", "ratio", "interval", "verdict"}, rows, nil
	case GateParity:
		var rep ParityReport
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, nil, fmt.Errorf("parity result of run %d: %w", r.ID, err)
		}
		for _, f := range rep.families() {
			rows = append(rows, []string{f.Family, strconv.Itoa(f.Pass + f.Fail + f.Skip), strconv.Itoa(f.Pass), strconv.Itoa(f.Fail),
				strconv.Itoa(f.Skip), fmt.Sprintf("%.3g", f.WorstFwd), fmt.Sprintf("%.3g", f.WorstBwd)})
		}
		fwd, bwd := rep.worstHeaders()
		return []string{"family", "cases", "pass", "fail", "skip", fwd, bwd}, rows, nil
	}
	return nil, nil, nil
}

// Point is one measurement of the main branch at one commit.
type Point struct {
	SHA   string
	At    time.Time
	Value float64
}

// results returns the stored results of one gate in a repository, oldest first.
func (s *Service) results(ctx context.Context, repo, gate string) ([]Run, error) {
	var runs []Run
	if err := s.DB.WithContext(ctx).Where("repo = ? AND gate = ? AND result IS NOT NULL", repo, gate).Order("created_at, id").
		Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("%s history of %s: %w", gate, repo, err)
	}
	return runs, nil
}

// LineHistory is the core's line count on the main branch over time. Every lines run counts
// its base commit, which is on main, so the pull requests themselves chart main's history;
// each base commit appears once.
func (s *Service) LineHistory(ctx context.Context, repo string) ([]Point, error) {
	runs, err := s.results(ctx, repo, GateLines)
	if err != nil {
		return nil, err
	}
	var out []Point
	seen := map[string]bool{}
	for _, r := range runs {
		var rep LinesReport
		if json.Unmarshal([]byte(*r.Result), &rep) != nil || rep.BaseSHA == "" || seen[rep.BaseSHA] {
			continue
		}
		seen[rep.BaseSHA] = true
		out = append(out, Point{SHA: rep.BaseSHA, At: r.CreatedAt, Value: float64(rep.Base)})
	}
	return out, nil
}

// SpeedHistory is each benchmark's median time (ns/op) on main over time, from the base side
// of every speed run, keyed by benchmark.
func (s *Service) SpeedHistory(ctx context.Context, repo string) (map[string][]Point, error) {
	runs, err := s.results(ctx, repo, GateSpeed)
	if err != nil {
		return nil, err
	}
	out := map[string][]Point{}
	seen := map[string]bool{}
	for _, r := range runs {
		var rep SpeedReport
		if json.Unmarshal([]byte(*r.Result), &rep) != nil || rep.BaseSHA == "" || seen[rep.BaseSHA] {
			continue
		}
		seen[rep.BaseSHA] = true
		for _, b := range rep.Benchmarks {
			if len(b.BaseNs) > 0 {
				out[b.Name] = append(out[b.Name], Point{SHA: rep.BaseSHA, At: r.CreatedAt, Value: b.Base})
			}
		}
	}
	for _, pts := range out {
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].At.Before(pts[j].At) })
	}
	return out, nil
}
