package ci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Job is work for a runner: fetch Repo at HeadSHA (and BaseSHA beside it, in
// $GRADFORGE_BASE_DIR) and run Steps, leaving result files in $GRADFORGE_RESULTS.
type Job struct {
	Key      string // the same Key twice is the same job
	Group    string // cancelled together: "owner/repo#12"
	Labels   []string
	Repo     string
	CloneURL string
	HeadSHA  string
	BaseRef  string
	BaseSHA  string
	Steps    []Step
	Env      map[string]string
	Timeout  time.Duration
	Trusted  bool
	Meta     string // handed back in JobResult: ci's run id
}

// Step is one shell command of a job.
type Step struct{ Name, Run string }

// Dispatcher queues jobs for runners; package runners implements it (wired in
// cmd/gradforge/serve_ci.go).
type Dispatcher interface {
	Enqueue(ctx context.Context, job Job) (id int64, err error)
	// CancelGroup cancels the group's unfinished jobs whose head is not keepSHA.
	CancelGroup(ctx context.Context, group, keepSHA, reason string) (int, error)
	Cancel(ctx context.Context, id int64, reason string) error
}

// JobResult is a finished job as the runners report it.
type JobResult struct {
	JobID      int64
	Meta       string
	Conclusion string // success, failure, timed_out, cancelled or infra_failure
	ExitCode   int
	Message    string
	Files      map[string][]byte
}

// PullRequest is what ci needs to know about a pull request; the bot fills it from the
// webhook, with Trusted from its one trust function (maintainer, collaborator or trusted user).
type PullRequest struct {
	Repo     string // "owner/name"
	Number   int
	Author   string
	HeadSHA  string
	BaseSHA  string
	BaseRef  string
	CloneURL string
	Trusted  bool
}

// Config is the CI policy. The zero value is the default.
type Config struct {
	Budget         int     // lines gate budget (default 9000)
	SpeedThreshold float64 // default 0.05
	SpeedBench     string  // benchmarks the speed gate runs (regexp; default all)
	SpeedPairs     int     // measured pairs per benchmark (default 10)
	GPULabel       string  // runner label for parity and speed (default "cuda"; "-" for none)
	Device         string  // framework device on the runner (default "CUDA"; "" with GPULabel "-")
	// OkToTestEachPush makes an untrusted author's every push wait for a new /ok-to-test;
	// by default (as Prow's ok-to-test label) one approval covers later pushes.
	OkToTestEachPush bool
	DetailsURL       string // the web app's base URL; Details links go to its /runs/ID page
	// Gates are the gates to run (default all three); a forge without GPU runners might run
	// only lines.
	Gates   []string
	Timeout time.Duration // per job (default 30 minutes)
	// Build is the shell command that builds gradforge from the checkout it runs in into
	// "$GRADFORGE_OUT" (default DefaultBuild). Runner fleets that ship a toolchain elsewhere
	// or build with flags set it; the speed gate still needs Go for its benchmarks.
	Build string
}

// DefaultBuild builds gradforge with the runner's Go toolchain.
const DefaultBuild = `go build -o "$GRADFORGE_OUT" ./cmd/gradforge`

func (c Config) budget() int {
	if c.Budget > 0 {
		return c.Budget
	}
	return DefaultBudget
}

func (s *Service) gates() []string {
	if len(s.Config.Gates) == 0 {
		return Gates
	}
	return s.Config.Gates
}

// NeedsOkToTest is the label on pull requests waiting for a maintainer's /ok-to-test.
const NeedsOkToTest = "needs-ok-to-test"

// Errors callers branch on.
var (
	ErrUnknownPull   = errors.New("ci knows no such pull request")
	ErrUnknownRun    = errors.New("ci knows no such check run")
	ErrNeedsOkToTest = errors.New("a maintainer must comment /ok-to-test first")
)

// Service runs CI for pull requests: it creates the check runs, queues the runner jobs and
// turns their results into conclusions, annotations and the line-count comment.
type Service struct {
	DB       *gorm.DB
	Checks   Checks
	Dispatch Dispatcher
	Config   Config
	Log      *slog.Logger
}

type pullRow struct {
	ID          int64 `gorm:"primaryKey"`
	Repo        string
	Number      int
	Author      string
	HeadSHA     string
	BaseSHA     string
	BaseRef     string
	CloneURL    string
	Trusted     bool
	OkToTest    bool
	OkToTestSHA string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (pullRow) TableName() string { return "ci_pulls" }

// Run is one gate run on one commit: a check run and a runner job.
type Run struct {
	ID         int64 `gorm:"primaryKey"`
	Repo       string
	Number     int
	HeadSHA    string
	BaseSHA    string
	Gate       string
	Attempt    int
	CheckRunID int64
	JobID      int64
	Status     string // waiting (for /ok-to-test), queued, in_progress, completed
	Conclusion string
	Title      string
	Result     *string // the gate's JSON result
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName keeps gorm on ci's table.
func (Run) TableName() string { return "ci_runs" }

const waiting = "waiting"

// ErrNoGitHub is returned when the Service has no Checks (the forge runs without a GitHub App).
var ErrNoGitHub = errors.New("ci has no GitHub client: configure the GitHub App")

func (s *Service) checks() Checks {
	if s.Checks == nil {
		return noGitHub{}
	}
	return s.Checks
}

type noGitHub struct{}

func (noGitHub) CreateCheckRun(context.Context, string, CheckRun) (int64, error) {
	return 0, ErrNoGitHub
}
func (noGitHub) UpdateCheckRun(context.Context, string, int64, CheckRun) error { return ErrNoGitHub }
func (noGitHub) Comment(context.Context, string, int, string, string) error    { return ErrNoGitHub }
func (noGitHub) Label(context.Context, string, int, []string, []string) error  { return ErrNoGitHub }

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// OnPullRequest handles a pull request opened, reopened or pushed to (synchronize): it
// records the new head, cancels the previous head's jobs, and either starts the gates or,
// for an untrusted author without /ok-to-test, marks the checks action_required. Delivering
// the same event twice does the work once.
func (s *Service) OnPullRequest(ctx context.Context, pr PullRequest) error {
	if pr.Repo == "" || pr.Number <= 0 || pr.HeadSHA == "" {
		return fmt.Errorf("pull request event: repo, number and head SHA are required (got %q #%d %q)", pr.Repo, pr.Number, pr.HeadSHA)
	}
	db := s.DB.WithContext(ctx)
	var old pullRow
	err := db.Where("repo = ? AND number = ?", pr.Repo, pr.Number).Take(&old).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("load %s#%d: %w", pr.Repo, pr.Number, err)
	}
	row := pullRow{ID: old.ID, Repo: pr.Repo, Number: pr.Number, Author: pr.Author, HeadSHA: pr.HeadSHA, BaseSHA: pr.BaseSHA,
		BaseRef: pr.BaseRef, CloneURL: pr.CloneURL, Trusted: pr.Trusted, OkToTest: old.OkToTest, OkToTestSHA: old.OkToTestSHA, CreatedAt: old.CreatedAt}
	if row.CloneURL == "" {
		row.CloneURL = "https://github.com/" + pr.Repo + ".git"
	}
	if err := db.Save(&row).Error; err != nil {
		return fmt.Errorf("save %s#%d: %w", pr.Repo, pr.Number, err)
	}
	if old.ID != 0 && old.HeadSHA != pr.HeadSHA {
		if err := s.supersede(ctx, row); err != nil {
			return err
		}
	}
	if !s.allowed(row) {
		return s.await(ctx, row)
	}
	return s.start(ctx, row, s.gates(), false)
}

// allowed is the trust rule: trusted authors run at once; others after /ok-to-test, which
// covers later pushes unless Config.OkToTestEachPush.
func (s *Service) allowed(p pullRow) bool {
	if p.Trusted {
		return true
	}
	if s.Config.OkToTestEachPush {
		return p.OkToTest && p.OkToTestSHA == p.HeadSHA
	}
	return p.OkToTest
}

// OkToTest records a maintainer's /ok-to-test (the caller checked who said it) and starts
// the gates on the current head.
func (s *Service) OkToTest(ctx context.Context, repo string, number int) error {
	p, err := s.pull(ctx, repo, number)
	if err != nil {
		return err
	}
	p.OkToTest, p.OkToTestSHA = true, p.HeadSHA
	if err := s.DB.WithContext(ctx).Save(&p).Error; err != nil {
		return fmt.Errorf("ok-to-test %s#%d: %w", repo, number, err)
	}
	if err := s.checks().Label(ctx, repo, number, nil, []string{NeedsOkToTest}); err != nil {
		return fmt.Errorf("ok-to-test %s#%d: %w", repo, number, err)
	}
	// Only the waiting gates start (a retried /ok-to-test finishes what the first began
	// instead of starting everything again).
	return s.start(ctx, p, s.gates(), false)
}

// Retest reruns the gates of the current head that did not succeed (Prow's /retest), or,
// when none failed, every finished one. An untrusted pull request without /ok-to-test gets
// ErrNeedsOkToTest.
func (s *Service) Retest(ctx context.Context, repo string, number int) error {
	p, err := s.pull(ctx, repo, number)
	if err != nil {
		return err
	}
	if !s.allowed(p) {
		return fmt.Errorf("retest %s#%d: %w", repo, number, ErrNeedsOkToTest)
	}
	latest, err := s.latest(ctx, p)
	if err != nil {
		return err
	}
	var failed, done []string
	for _, g := range s.gates() {
		r, ok := latest[g]
		if !ok || (r.Status == Completed && r.Conclusion != Success) || r.Status == waiting {
			failed = append(failed, g)
		}
		if !ok || r.Status == Completed || r.Status == waiting {
			done = append(done, g)
		}
	}
	if len(failed) == 0 {
		failed = done // all passed: rerun them (a suspected flake); running gates keep running
	}
	return s.start(ctx, p, failed, true)
}

// OnCheckRerequested reruns the gate of one check run (GitHub's "Re-run" button).
func (s *Service) OnCheckRerequested(ctx context.Context, repo string, checkRunID int64) error {
	var r Run
	err := s.DB.WithContext(ctx).Where("repo = ? AND check_run_id = ?", repo, checkRunID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("re-run check run %d in %s: %w", checkRunID, repo, ErrUnknownRun)
	} else if err != nil {
		return fmt.Errorf("re-run check run %d: %w", checkRunID, err)
	}
	p, err := s.pull(ctx, repo, r.Number)
	if err != nil {
		return err
	}
	if p.HeadSHA != r.HeadSHA {
		return nil // an old commit: its pull request has moved on
	}
	if !s.allowed(p) {
		return fmt.Errorf("re-run %s#%d: %w", repo, r.Number, ErrNeedsOkToTest)
	}
	return s.start(ctx, p, []string{r.Gate}, true)
}

// OnCheckSuiteRerequested reruns every gate of a commit (GitHub's "Re-run all checks").
func (s *Service) OnCheckSuiteRerequested(ctx context.Context, repo, headSHA string) error {
	var p pullRow
	err := s.DB.WithContext(ctx).Where("repo = ? AND head_sha = ?", repo, headSHA).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil // not a pull request head ci knows: nothing to do
	} else if err != nil {
		return fmt.Errorf("re-run suite %s@%s: %w", repo, short(headSHA), err)
	}
	if !s.allowed(p) {
		return fmt.Errorf("re-run %s#%d: %w", repo, p.Number, ErrNeedsOkToTest)
	}
	return s.start(ctx, p, s.gates(), true)
}

func (s *Service) pull(ctx context.Context, repo string, number int) (pullRow, error) {
	var p pullRow
	err := s.DB.WithContext(ctx).Where("repo = ? AND number = ?", repo, number).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, fmt.Errorf("%s#%d: %w", repo, number, ErrUnknownPull)
	} else if err != nil {
		return p, fmt.Errorf("load %s#%d: %w", repo, number, err)
	}
	return p, nil
}

// latest returns the newest run of each gate on the pull request's head.
func (s *Service) latest(ctx context.Context, p pullRow) (map[string]Run, error) {
	var runs []Run
	if err := s.DB.WithContext(ctx).Where("repo = ? AND number = ? AND head_sha = ?", p.Repo, p.Number, p.HeadSHA).
		Order("attempt").Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("runs of %s#%d: %w", p.Repo, p.Number, err)
	}
	out := map[string]Run{}
	for _, r := range runs {
		out[r.Gate] = r
	}
	return out, nil
}

// await marks the head's checks action_required and labels the pull request, once per head.
func (s *Service) await(ctx context.Context, p pullRow) error {
	if err := s.checks().Label(ctx, p.Repo, p.Number, []string{NeedsOkToTest}, nil); err != nil {
		return fmt.Errorf("label %s#%d: %w", p.Repo, p.Number, err)
	}
	latest, err := s.latest(ctx, p)
	if err != nil {
		return err
	}
	for _, g := range s.gates() {
		if _, ok := latest[g]; ok {
			continue
		}
		r := Run{Repo: p.Repo, Number: p.Number, HeadSHA: p.HeadSHA, BaseSHA: p.BaseSHA, Gate: g, Attempt: 1, Status: waiting,
			Conclusion: ActionRequired, Title: "waiting for /ok-to-test"}
		if err := s.insert(ctx, &r); err != nil || r.CheckRunID != 0 {
			if err != nil {
				return err
			}
			continue
		}
		id, err := s.checks().CreateCheckRun(ctx, p.Repo, CheckRun{Name: g, HeadSHA: p.HeadSHA, ExternalID: strconv.FormatInt(r.ID, 10),
			DetailsURL: s.detailsURL(p, r.ID), Conclusion: ActionRequired, Status: Completed,
			Output: &Output{Title: "Waiting for a maintainer's /ok-to-test", Summary: fmt.Sprintf(
				"@%s is not yet a trusted contributor here, so no code from this pull request runs on the CI runners "+
					"until a maintainer reviews it and comments `/ok-to-test`.", p.Author)}})
		if err != nil {
			return fmt.Errorf("create %s check for %s#%d: %w", g, p.Repo, p.Number, err)
		}
		if err := s.DB.WithContext(ctx).Model(&Run{}).Where("id = ?", r.ID).Update("check_run_id", id).Error; err != nil {
			return fmt.Errorf("save check run %d: %w", id, err)
		}
	}
	return nil
}

// detailsURL is where a check run's Details link goes: the run's page in the web app (which
// shows every gate of that commit), or the pull request when no web app is configured.
func (s *Service) detailsURL(p pullRow, runID int64) string {
	if s.Config.DetailsURL != "" {
		return fmt.Sprintf("%s/runs/%d", strings.TrimRight(s.Config.DetailsURL, "/"), runID)
	}
	return fmt.Sprintf("https://github.com/%s/pull/%d", p.Repo, p.Number)
}

// insert adds a run, or loads the existing one with the same key (a repeated delivery).
func (s *Service) insert(ctx context.Context, r *Run) error {
	db := s.DB.WithContext(ctx)
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(r)
	if res.Error != nil {
		return fmt.Errorf("record %s run: %w", r.Gate, res.Error)
	}
	if res.RowsAffected == 0 {
		if err := db.Where("repo = ? AND number = ? AND head_sha = ? AND gate = ? AND attempt = ?", r.Repo, r.Number, r.HeadSHA, r.Gate, r.Attempt).
			Take(r).Error; err != nil {
			return fmt.Errorf("load %s run: %w", r.Gate, err)
		}
	}
	return nil
}

// start creates a check run and a runner job for each gate. With again it makes a new attempt
// even when one exists; without, an existing queued or finished attempt is kept (idempotent
// redelivery) unless it was cancelled (a reopened pull request), and a half-made one (crash
// between steps) is completed.
func (s *Service) start(ctx context.Context, p pullRow, gates []string, again bool) error {
	latest, err := s.latest(ctx, p)
	if err != nil {
		return err
	}
	for _, g := range gates {
		attempt := 1
		if prev, ok := latest[g]; ok {
			attempt = prev.Attempt
			if again || prev.Status == waiting || (prev.Status == Completed && prev.Conclusion == Cancelled) {
				attempt++
				if prev.Status == Queued || prev.Status == InProgress {
					if prev.JobID != 0 {
						if err := s.Dispatch.Cancel(ctx, prev.JobID, "rerun requested"); err != nil {
							s.log().Warn("cancel superseded job", "job", prev.JobID, "err", err)
						}
					}
					s.conclude(ctx, prev, Cancelled, "Superseded by a re-run", "A newer run of this gate replaced this one.", nil)
				}
			}
		}
		r := Run{Repo: p.Repo, Number: p.Number, HeadSHA: p.HeadSHA, BaseSHA: p.BaseSHA, Gate: g, Attempt: attempt, Status: Queued}
		if err := s.insert(ctx, &r); err != nil {
			return err
		}
		if r.Status != Queued {
			continue
		}
		if r.CheckRunID == 0 {
			id, err := s.checks().CreateCheckRun(ctx, p.Repo, CheckRun{Name: g, HeadSHA: p.HeadSHA, ExternalID: strconv.FormatInt(r.ID, 10),
				DetailsURL: s.detailsURL(p, r.ID), Status: Queued, Output: &Output{Title: "Queued for a runner", Summary: s.gateBlurb(g)}})
			if err != nil {
				return fmt.Errorf("create %s check for %s#%d: %w", g, p.Repo, p.Number, err)
			}
			r.CheckRunID = id
			if err := s.DB.WithContext(ctx).Model(&Run{}).Where("id = ?", r.ID).Update("check_run_id", id).Error; err != nil {
				return fmt.Errorf("save check run %d: %w", id, err)
			}
		}
		if r.JobID == 0 {
			id, err := s.Dispatch.Enqueue(ctx, s.job(p, r))
			if err != nil {
				return fmt.Errorf("queue %s job for %s#%d: %w", g, p.Repo, p.Number, err)
			}
			if err := s.DB.WithContext(ctx).Model(&Run{}).Where("id = ?", r.ID).Update("job_id", id).Error; err != nil {
				return fmt.Errorf("save job %d: %w", id, err)
			}
		}
	}
	return nil
}

func (s *Service) gateBlurb(g string) string {
	switch g {
	case GateLines:
		return fmt.Sprintf("Counts the framework core's code lines at base and head (budget %d), with the counting code from the base branch.", s.Config.budget())
	case GateParity:
		return "Runs the testops parity suite against PyTorch, forward and backward."
	}
	return "Runs base and head benchmarks interleaved on one runner and judges each ratio with a confidence interval."
}

// supersede cancels the jobs and check runs of a pull request's previous head after a push.
func (s *Service) supersede(ctx context.Context, p pullRow) error {
	return s.cancelRuns(ctx, p, p.HeadSHA, "Superseded by a newer push",
		fmt.Sprintf("The pull request moved to %s; this commit's run was cancelled.", short(p.HeadSHA)))
}

// OnClosed cancels the unfinished gate jobs of a closed pull request and concludes their
// checks as cancelled; a reopen starts them again.
func (s *Service) OnClosed(ctx context.Context, repo string, number int) error {
	p, err := s.pull(ctx, repo, number)
	if errors.Is(err, ErrUnknownPull) {
		return nil
	} else if err != nil {
		return err
	}
	return s.cancelRuns(ctx, p, "", "Pull request closed", "The pull request was closed before this run finished.")
}

// cancelRuns cancels a pull request's unfinished jobs and runs except those on keepSHA
// ("" keeps none).
func (s *Service) cancelRuns(ctx context.Context, p pullRow, keepSHA, title, summary string) error {
	group := fmt.Sprintf("%s#%d", p.Repo, p.Number)
	if _, err := s.Dispatch.CancelGroup(ctx, group, keepSHA, title); err != nil {
		return fmt.Errorf("cancel jobs of %s: %w", group, err)
	}
	var runs []Run
	if err := s.DB.WithContext(ctx).Where("repo = ? AND number = ? AND head_sha <> ? AND status IN ?", p.Repo, p.Number, keepSHA, []string{Queued, InProgress}).
		Find(&runs).Error; err != nil {
		return fmt.Errorf("runs of %s: %w", group, err)
	}
	for _, r := range runs {
		s.conclude(ctx, r, Cancelled, title, summary, nil)
	}
	return nil
}

// conclude completes a run in the database and on GitHub. Errors are logged: the database
// row is the truth and GitHub is told again on the next event.
func (s *Service) conclude(ctx context.Context, r Run, conclusion, title, summary string, out *Output) {
	if err := s.finish(ctx, r, conclusion, title, summary, out, nil); err != nil {
		s.log().Warn("conclude check run", "repo", r.Repo, "gate", r.Gate, "err", err)
	}
}

// finish sends the check run's output (annotations in batches of MaxAnnotations), then
// stores the run's conclusion and result. GitHub goes first so that a failed call leaves the
// run unfinished and the runners' retried delivery sends it again.
func (s *Service) finish(ctx context.Context, r Run, conclusion, title, summary string, out *Output, result []byte) error {
	if r.CheckRunID != 0 {
		if out == nil {
			out = &Output{}
		}
		out.Title, out.Summary = title, summary
		for i, o := range batches(out) {
			cr := CheckRun{Output: o}
			if i == 0 {
				cr.Status, cr.Conclusion = Completed, conclusion
			}
			if err := s.checks().UpdateCheckRun(ctx, r.Repo, r.CheckRunID, cr); err != nil {
				return fmt.Errorf("update %s check run %d: %w", r.Gate, r.CheckRunID, err)
			}
		}
	}
	upd := map[string]any{"status": Completed, "conclusion": conclusion, "title": title, "updated_at": time.Now().UTC()}
	if result != nil {
		upd["result"] = string(result)
	}
	if err := s.DB.WithContext(ctx).Model(&Run{}).Where("id = ?", r.ID).Updates(upd).Error; err != nil {
		return fmt.Errorf("save %s result: %w", r.Gate, err)
	}
	return nil
}

// JobFinished turns a runner job's result into the check run's conclusion (runners call it
// at least once per job; later calls for a completed run do nothing).
func (s *Service) JobFinished(ctx context.Context, res JobResult) error {
	id, err := strconv.ParseInt(res.Meta, 10, 64)
	if err != nil {
		return fmt.Errorf("job %d: meta %q is not a ci run id", res.JobID, res.Meta)
	}
	var r Run
	if err := s.DB.WithContext(ctx).Take(&r, id).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("job %d: run %d: %w", res.JobID, id, ErrUnknownRun)
	} else if err != nil {
		return fmt.Errorf("job %d: %w", res.JobID, err)
	}
	if r.Status == Completed {
		return nil
	}
	file := r.Gate + ".json"
	data, ok := res.Files[file]
	if !ok {
		concl, title := Failure, "The job failed before the gate produced a result"
		switch res.Conclusion {
		case "cancelled":
			concl, title = Cancelled, "Cancelled"
		case "timed_out":
			concl, title = TimedOut, "The job ran past its time limit"
		case "infra_failure":
			title = "Infrastructure failure: the forge could not run this job (not this pull request's fault); /retest"
		}
		return s.finish(ctx, r, concl, title, fmt.Sprintf("Runner job %d ended %s (exit %d) without `%s`.\n\n```\n%s\n```\n",
			res.JobID, res.Conclusion, res.ExitCode, file, res.Message), nil, nil)
	}
	o, concl, err := s.outcome(r, data)
	if err != nil {
		return s.finish(ctx, r, Failure, "The gate's result could not be read", err.Error(), nil, nil)
	}
	if r.Gate == GateLines {
		if err := s.checks().Comment(ctx, r.Repo, r.Number, "lines", "### Line count\n\n"+o.Summary); err != nil {
			return fmt.Errorf("post line-count comment on %s#%d: %w", r.Repo, r.Number, err) // retried
		}
	}
	return s.finish(ctx, r, concl, o.Title, o.Summary, o, data)
}

// outcome reads a gate's result file into the check run's output and conclusion.
func (s *Service) outcome(r Run, data []byte) (*Output, string, error) {
	switch r.Gate {
	case GateLines:
		var rep LinesReport
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, "", fmt.Errorf("lines result: %w", err)
		}
		return &Output{Title: rep.Title(), Summary: rep.Markdown(false), Text: "#### Every core file\n\n" + rep.Markdown(true)}, rep.Conclusion(), nil
	case GateParity:
		rep, err := ReadParity(strings.NewReader(string(data)))
		if err != nil {
			return nil, "", err
		}
		return &Output{Title: rep.Title(), Summary: rep.Markdown(), Annotations: rep.Annotations()}, rep.Conclusion(), nil
	case GateSpeed:
		var rep SpeedReport
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, "", fmt.Errorf("speed result: %w", err)
		}
		return &Output{Title: rep.Title(), Summary: rep.Markdown()}, rep.Conclusion(), nil
	}
	return nil, "", fmt.Errorf("unknown gate %q", r.Gate)
}

// Runs lists a pull request's gate runs, newest first, for the web app.
func (s *Service) Runs(ctx context.Context, repo string, number int) ([]Run, error) {
	var runs []Run
	if err := s.DB.WithContext(ctx).Where("repo = ? AND number = ?", repo, number).Order("id DESC").Find(&runs).Error; err != nil {
		return nil, fmt.Errorf("runs of %s#%d: %w", repo, number, err)
	}
	return runs, nil
}

// JobStater is a Dispatcher that can tell a job's state ("queued", "running" or "finished");
// with it, Progress can show which gates a runner has started.
type JobStater interface {
	JobState(ctx context.Context, id int64) (string, error)
}

// Progress marks the check runs of jobs that a runner has started as in_progress, and returns
// how many it marked. The serve part calls it every few seconds. A result that lands while
// it works wins: the completed state is sent again after the in_progress one.
func (s *Service) Progress(ctx context.Context) (int, error) {
	js, ok := s.Dispatch.(JobStater)
	if !ok {
		return 0, nil
	}
	db := s.DB.WithContext(ctx)
	var runs []Run
	if err := db.Where("status = ? AND job_id <> 0", Queued).Order("id").Limit(500).Find(&runs).Error; err != nil {
		return 0, fmt.Errorf("queued runs: %w", err)
	}
	n := 0
	for _, r := range runs {
		st, err := js.JobState(ctx, r.JobID)
		if err != nil {
			s.log().Warn("job state", "job", r.JobID, "err", err)
			continue
		}
		if st != "running" {
			continue
		}
		res := db.Model(&Run{}).Where("id = ? AND status = ?", r.ID, Queued).Updates(map[string]any{"status": InProgress, "updated_at": time.Now().UTC()})
		if res.Error != nil {
			return n, fmt.Errorf("mark run %d in progress: %w", r.ID, res.Error)
		}
		if res.RowsAffected == 0 || r.CheckRunID == 0 {
			continue // finished meanwhile
		}
		n++
		if err := s.checks().UpdateCheckRun(ctx, r.Repo, r.CheckRunID, CheckRun{Status: InProgress,
			Output: &Output{Title: "Running on a runner", Summary: s.gateBlurb(r.Gate)}}); err != nil {
			s.log().Warn("check run in progress", "repo", r.Repo, "gate", r.Gate, "err", err)
			continue
		}
		var now Run
		if err := db.Take(&now, r.ID).Error; err == nil && now.Status == Completed {
			if err := s.checks().UpdateCheckRun(ctx, r.Repo, r.CheckRunID, CheckRun{Status: Completed, Conclusion: now.Conclusion}); err != nil {
				s.log().Warn("check run re-complete", "repo", r.Repo, "gate", r.Gate, "err", err)
			}
		}
	}
	return n, nil
}
