package runners

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Spec is what a caller (ci) asks a runner to do: fetch a repository at an exact commit into a
// clean workspace and run some steps there.
type Spec struct {
	// Key deduplicates: enqueueing a Spec whose Key is already in the queue (in any state)
	// returns that job instead of adding another. Retries of the same work need a new Key.
	Key string
	// Group names a set of jobs cancelled together, e.g. "owner/repo#12" for a pull request,
	// so a new push can cancel the previous commit's jobs with CancelGroup.
	Group string
	// Labels must all be among a runner's labels for it to get the job (e.g. "cuda").
	Labels []string
	// Repo is "owner/name", for display and for the clone credential.
	Repo string
	// CloneURL is where the runner fetches from (https://github.com/owner/name.git).
	CloneURL string
	// HeadSHA is the exact commit the steps run on.
	HeadSHA string
	// BaseRef and BaseSHA, when set, are fetched too and checked out beside the head
	// (in $GRADFORGE_BASE_DIR), for gates that compare base and head.
	BaseRef string
	BaseSHA string
	// Steps run in order in the head checkout; the first that fails ends the job.
	Steps []Step
	// Env is added to every step's environment.
	Env map[string]string
	// Timeout bounds the whole job's wall-clock time on the runner (default 30 minutes).
	Timeout time.Duration
	// Trusted says the code comes from someone allowed to run code on runners; untrusted jobs
	// only go to runners whose owner allowed them, and run sandboxed without network.
	Trusted bool
	// MaxAttempts is how many leases the job may have before it concludes as an
	// infrastructure failure (default: the queue's).
	MaxAttempts int
	// Meta is opaque to runners and handed back with the result (e.g. check-run ids).
	Meta string
}

// Step is one shell command of a job, run with sh -c.
type Step struct {
	Name string `json:"name"`
	Run  string `json:"run"`
}

// State is where a job is in its life.
type State string

const (
	Queued   State = "queued"
	Running  State = "running"
	Finished State = "finished"
)

// Conclusion is how a finished job ended.
type Conclusion string

const (
	Success Conclusion = "success"
	Failure Conclusion = "failure"
	// TimedOut: the job ran past its wall-clock timeout and was killed.
	TimedOut Conclusion = "timed_out"
	// Cancelled: someone cancelled the job before it finished.
	Cancelled Conclusion = "cancelled"
	// InfraFailure: the forge could not run the job (its leases kept lapsing, the runner
	// could not fetch the repository, or refused it); the code under test is not to blame.
	InfraFailure Conclusion = "infra_failure"
)

func (c Conclusion) valid() bool {
	switch c {
	case Success, Failure, TimedOut, Cancelled, InfraFailure:
		return true
	}
	return false
}

// Job is a queued, running or finished job as the queue knows it.
type Job struct {
	ID      int64
	Spec    Spec
	State   State
	Attempt int   // leases handed out so far
	Runner  int64 // the runner holding (or that last held) the job; 0 when none
	// CancelRequested is set once someone cancels a running job; the runner learns it from
	// its next heartbeat.
	CancelRequested   bool
	CancelReason      string
	CancelRequestedAt time.Time
	LeaseUntil        time.Time
	Conclusion        Conclusion
	ExitCode          int
	Message           string
	LogBytes          int64
	LogTruncated      bool
	CreatedAt         time.Time
	AssignedAt        time.Time
	FinishedAt        time.Time
	// KilledAt is when the runner signalled the job's processes after a cancel or timeout.
	KilledAt time.Time
	// DeliveredAt is when the finished job was handed to Results; zero until it was
	// accepted (a failed delivery is retried with backoff).
	DeliveredAt time.Time

	deliveryAttempts int // failed deliveries to Results so far
}

// Result is what a finished job produced, handed to Results.JobFinished.
type Result struct {
	Conclusion Conclusion
	ExitCode   int
	Message    string
	// Files are the files the steps left in $GRADFORGE_RESULTS (name → content), such as the
	// testops JSON report or benchmark samples.
	Files map[string][]byte
}

// normLabels trims, lower-cases, sorts and deduplicates labels, and rejects ones that could
// not round-trip through the comma-separated column.
func normLabels(in []string) ([]string, error) {
	var out []string
	for _, l := range in {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" {
			continue
		}
		if strings.ContainsAny(l, ", \t\n") || len(l) > 64 {
			return nil, fmt.Errorf("bad label %q: labels are single words of at most 64 characters", l)
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseLabels splits a comma-separated label list such as "cuda,h200".
func ParseLabels(s string) ([]string, error) { return normLabels(strings.Split(s, ",")) }

func joinLabels(l []string) string { return strings.Join(l, ",") }

func splitLabels(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// validate checks a Spec for Enqueue and fills its defaults.
func (s *Spec) validate(defaultAttempts int) error {
	var errs []error
	if s.CloneURL == "" || strings.HasPrefix(s.CloneURL, "-") || strings.ContainsAny(s.CloneURL, "\n\x00") {
		errs = append(errs, fmt.Errorf("bad clone URL %q", s.CloneURL))
	}
	if !isSHA(s.HeadSHA) {
		errs = append(errs, fmt.Errorf("head SHA %q is not a full hexadecimal commit id", s.HeadSHA))
	}
	if s.BaseSHA != "" && !isSHA(s.BaseSHA) {
		errs = append(errs, fmt.Errorf("base SHA %q is not a full hexadecimal commit id", s.BaseSHA))
	}
	if strings.HasPrefix(s.BaseRef, "-") || strings.ContainsAny(s.BaseRef, " \t\n:") {
		errs = append(errs, fmt.Errorf("bad base ref %q", s.BaseRef))
	}
	if len(s.Steps) == 0 {
		errs = append(errs, errors.New("no steps"))
	}
	for i, st := range s.Steps {
		if strings.TrimSpace(st.Run) == "" {
			errs = append(errs, fmt.Errorf("step %d (%q) has nothing to run", i+1, st.Name))
		}
	}
	if s.Timeout < 0 || 0 < s.Timeout && s.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("timeout %v: want at least a second (or 0 for the default)", s.Timeout))
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Minute
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = defaultAttempts
	}
	labels, err := normLabels(s.Labels)
	if err != nil {
		errs = append(errs, err)
	}
	s.Labels = labels
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("bad environment variable name %q", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid job spec: %w", err)
	}
	return nil
}

func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only plain data is marshalled here
	}
	return string(b)
}
