package ci

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Check-run statuses and conclusions, spelled as GitHub's Checks API spells them.
const (
	Queued     = "queued"
	InProgress = "in_progress"
	Completed  = "completed"

	Success        = "success"
	Failure        = "failure"
	Neutral        = "neutral"
	Cancelled      = "cancelled"
	TimedOut       = "timed_out"
	ActionRequired = "action_required"
	Skipped        = "skipped"
)

// GitHub's limits on a check run's output.
const (
	MaxAnnotations = 50    // per create or update request; more go in follow-up updates
	MaxText        = 65535 // characters of summary and of text
)

// maxAnnotationText keeps an annotation's message and raw details under GitHub's 64 KB even
// when every character takes four bytes.
const maxAnnotationText = 16 << 10

// The gates, which are also the check runs' names.
const (
	GateParity = "parity"
	GateLines  = "lines"
	GateSpeed  = "speed"
)

// Gates lists every gate in the order the checks appear.
var Gates = []string{GateParity, GateLines, GateSpeed}

// Annotation levels.
const (
	LevelNotice  = "notice"
	LevelWarning = "warning"
	LevelFailure = "failure"
)

// Annotation marks one finding, tied to a file and line of the repository.
type Annotation struct {
	Path       string `json:"path"`
	StartLine  int    `json:"start_line"`
	EndLine    int    `json:"end_line"`
	Level      string `json:"annotation_level"`
	Title      string `json:"title,omitempty"`
	Message    string `json:"message"`
	RawDetails string `json:"raw_details,omitempty"`
}

// Output is what a check run shows: a title, a markdown summary, more markdown text, and
// annotations.
type Output struct {
	Title       string       `json:"title"`
	Summary     string       `json:"summary"`
	Text        string       `json:"text,omitempty"`
	Annotations []Annotation `json:"annotations,omitempty"`
}

// CheckRun is one check run to create or update. Empty fields are left unchanged on update.
type CheckRun struct {
	Name       string
	HeadSHA    string
	ExternalID string // ci's own run id, so a re-run request finds its run
	DetailsURL string
	Status     string  // Queued, InProgress or Completed
	Conclusion string  // set with Completed
	Output     *Output // at most MaxAnnotations annotations; texts within MaxText
}

// Checks is what ci needs from GitHub: check runs on a commit and the bot's comment on a pull
// request. The bot's installation client implements it (GitHub below, over go-github); ci
// never calls it with more than MaxAnnotations annotations or texts over MaxText.
type Checks interface {
	// CreateCheckRun creates a check run on run.HeadSHA in repo ("owner/name") and returns its id.
	CreateCheckRun(ctx context.Context, repo string, run CheckRun) (int64, error)
	// UpdateCheckRun changes a check run; annotations given are added to those it has.
	UpdateCheckRun(ctx context.Context, repo string, id int64, run CheckRun) error
	// Comment sets the section key of the bot's one comment on pull request number to body,
	// creating the comment or editing it in place.
	Comment(ctx context.Context, repo string, number int, key, body string) error
	// Label adds and removes labels on a pull request.
	Label(ctx context.Context, repo string, number int, add, remove []string) error
}

// truncate cuts s to at most n characters (runes, as GitHub counts), on a line boundary
// when one is near, and ends it with a note saying how much was cut.
func truncate(s string, n int) string {
	total := utf8.RuneCountInString(s)
	if total <= n {
		return s
	}
	const room = 100 // for the note
	cut := string([]rune(s)[:max(0, n-room)])
	if i := strings.LastIndexByte(cut, '\n'); i > len(cut)*3/4 {
		cut = cut[:i]
	}
	return cut + fmt.Sprintf("\n\n… truncated: %d of %d characters shown.\n", utf8.RuneCountInString(cut), total)
}

// batches splits an output into the first request's output and follow-up outputs, each with
// at most MaxAnnotations annotations, and cuts texts to GitHub's limits.
func batches(o *Output) []*Output {
	if o == nil {
		return []*Output{nil}
	}
	first := *o
	first.Summary = truncate(o.Summary, MaxText)
	first.Text = truncate(o.Text, MaxText)
	first.Title = truncate(o.Title, 255)
	anns := append([]Annotation(nil), o.Annotations...)
	for i := range anns {
		anns[i].Message = truncate(anns[i].Message, maxAnnotationText)
		anns[i].RawDetails = truncate(anns[i].RawDetails, maxAnnotationText)
	}
	first.Annotations = anns[:min(len(anns), MaxAnnotations)]
	out := []*Output{&first}
	for i := MaxAnnotations; i < len(anns); i += MaxAnnotations {
		next := Output{Title: first.Title, Summary: first.Summary, Annotations: anns[i:min(len(anns), i+MaxAnnotations)]}
		out = append(out, &next)
	}
	return out
}
