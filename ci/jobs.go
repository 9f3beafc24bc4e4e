package ci

import (
	"fmt"
	"strconv"
	"time"
)

// job builds the runner job for one gate run. Every gate's judging code is the gradforge
// built from the BASE checkout ($GRADFORGE_BASE_DIR): a pull request cannot change the rule
// that judges it. The lines gate then only reads the head's files from git objects; the
// speed gate builds and runs the head's benchmarks (that is the code under test); the parity
// gate runs the head's own testops suite, and the base binary reads its report and replays
// the failing cases in the base's own suite with the same seed.
func (s *Service) job(p pullRow, r Run) Job {
	base := `"$GRADFORGE_WORKSPACE/gradforge-base"`
	build := s.Config.Build
	if build == "" {
		build = DefaultBuild
	}
	buildBase := Step{Name: "build gradforge from the base branch",
		Run: `export GRADFORGE_OUT="$GRADFORGE_WORKSPACE/gradforge-base" && cd "$GRADFORGE_BASE_DIR" && ` + build}
	// The head checkout must hold the base commit's objects for a base-to-head comparison.
	fetchBase := Step{Name: "make the base commit reachable from the head checkout",
		Run: `git cat-file -e "$GRADFORGE_BASE_SHA^{commit}" 2>/dev/null || git fetch -q "$GRADFORGE_BASE_DIR" "$GRADFORGE_BASE_SHA"`}
	j := Job{
		Key:      fmt.Sprintf("ci/%s#%d/%s/%s/%d", p.Repo, p.Number, p.HeadSHA, r.Gate, r.Attempt),
		Group:    fmt.Sprintf("%s#%d", p.Repo, p.Number),
		Repo:     p.Repo,
		CloneURL: p.CloneURL,
		HeadSHA:  p.HeadSHA,
		BaseRef:  p.BaseRef,
		BaseSHA:  p.BaseSHA,
		Trusted:  p.Trusted,
		Timeout:  s.Config.Timeout,
		Meta:     strconv.FormatInt(r.ID, 10),
		Env:      map[string]string{},
	}
	if j.Timeout == 0 {
		j.Timeout = 30 * time.Minute
	}
	gpu, device := s.Config.GPULabel, s.Config.Device
	if gpu == "" {
		gpu, device = "cuda", "CUDA"
	}
	if gpu == "-" {
		gpu = ""
	}
	result := `"$GRADFORGE_RESULTS/` + r.Gate + `.json"`
	switch r.Gate {
	case GateLines:
		j.Steps = []Step{buildBase, fetchBase, {Name: "lines gate",
			Run: fmt.Sprintf(`%s gate lines --repo . --base "$GRADFORGE_BASE_SHA" --head "$GRADFORGE_HEAD_SHA" --budget %d --json %s || test -s %s`,
				base, s.Config.budget(), result, result)}}
	case GateParity:
		if gpu != "" {
			j.Labels = []string{gpu}
		}
		dev := ""
		if device != "" {
			dev = " --device " + device
		}
		j.Steps = []Step{buildBase,
			{Name: "build gradforge at head", Run: `export GRADFORGE_OUT="$GRADFORGE_WORKSPACE/gradforge-head" && ` + build},
			{Name: "testops suite", Run: fmt.Sprintf(`"$GRADFORGE_WORKSPACE/gradforge-head" testops%s --json "$GRADFORGE_WORKSPACE/testops.json" || test -s "$GRADFORGE_WORKSPACE/testops.json"`, dev)},
			{Name: "parity gate (replays failures at base)", Run: fmt.Sprintf(`%s gate parity --repo . --head "$GRADFORGE_HEAD_SHA" --report "$GRADFORGE_WORKSPACE/testops.json" --compare-base%s --json %s || test -s %s`, base, dev, result, result)}}
	case GateSpeed:
		if gpu != "" {
			j.Labels = []string{gpu}
		}
		if device != "" {
			j.Env["DEVICE"] = device
		}
		thr := s.Config.SpeedThreshold
		if thr == 0 {
			thr = 0.05
		}
		// Free-form settings travel as the flags' environment variables, never through the
		// shell line.
		if s.Config.SpeedBench != "" {
			j.Env["GRADFORGE_BENCH"] = s.Config.SpeedBench
		}
		if s.Config.SpeedPairs > 0 {
			j.Env["GRADFORGE_PAIRS"] = strconv.Itoa(s.Config.SpeedPairs)
		}
		j.Steps = []Step{buildBase, fetchBase, {Name: "speed gate",
			Run: fmt.Sprintf(`%s gate speed --repo . --base "$GRADFORGE_BASE_SHA" --head "$GRADFORGE_HEAD_SHA" --threshold %g --json %s || test -s %s`,
				base, thr, result, result)}}
	}
	return j
}
