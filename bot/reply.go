package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
)

// Marker starts the bot's one comment on each issue and pull request, so the bot finds its
// comment again even if the stored comment ID was lost.
const Marker = "<!-- gradforge:bot -->"

// sectionOrder is where known sections appear in the comment; others follow by name.
var sectionOrder = map[string]int{"bounty": 0, "ci": 1, "lines": 2, "log": 9}

// maxLog is how many command replies the comment keeps.
const maxLog = 10

// SetSection replaces one section of the bot's comment on repo#number (an empty body removes
// it) and brings the comment up to date: created on first use, edited in place after.
func (b *Bot) SetSection(ctx context.Context, gh *github.Client, repo string, number int, section, body string) error {
	mu := b.thread(repo, number)
	mu.Lock()
	defer mu.Unlock()
	if err := b.putSection(ctx, repo, number, section, body); err != nil {
		return err
	}
	return b.render(ctx, gh, repo, number)
}

func (b *Bot) thread(repo string, number int) *sync.Mutex {
	m, _ := b.threads.LoadOrStore(fmt.Sprintf("%s#%d", repo, number), &sync.Mutex{})
	return m.(*sync.Mutex)
}

func (b *Bot) putSection(ctx context.Context, repo string, number int, section, body string) error {
	db := b.DB.WithContext(ctx)
	var err error
	if strings.TrimSpace(body) == "" {
		err = db.Exec(`DELETE FROM bot_sections WHERE repo = ? AND number = ? AND section = ?`, repo, number, section).Error
	} else {
		err = db.Exec(`INSERT INTO bot_sections (repo, number, section, body, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (repo, number, section) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
			repo, number, section, body, time.Now().UTC()).Error
	}
	if err != nil {
		return fmt.Errorf("store section %s of %s#%d: %w", section, repo, number, err)
	}
	return nil
}

type logEntry struct{ key, text string }

var logKeyRE = regexp.MustCompile(`<!-- k:([^ ]+) -->`)

// appendLog adds command replies to the thread's log section, skipping ones already there
// (a retried delivery) and keeping the newest maxLog.
func (b *Bot) appendLog(ctx context.Context, gh *github.Client, repo string, number int, entries []logEntry) error {
	if len(entries) == 0 {
		return nil
	}
	mu := b.thread(repo, number)
	mu.Lock()
	defer mu.Unlock()
	var bodies []string
	if err := b.DB.WithContext(ctx).Raw(`SELECT body FROM bot_sections WHERE repo = ? AND number = ? AND section = 'log'`, repo, number).Scan(&bodies).Error; err != nil {
		return fmt.Errorf("load log of %s#%d: %w", repo, number, err)
	}
	var lines []string
	have := map[string]bool{}
	if len(bodies) > 0 {
		for _, l := range strings.Split(bodies[0], "\n") {
			if m := logKeyRE.FindStringSubmatch(l); m != nil {
				have[m[1]] = true
				lines = append(lines, l)
			}
		}
	}
	for _, e := range entries {
		if !have[e.key] {
			text := strings.ReplaceAll(e.text, "\n", " ")
			lines = append(lines, fmt.Sprintf("- %s <!-- k:%s -->", text, e.key))
		}
	}
	if len(lines) > maxLog {
		lines = lines[len(lines)-maxLog:]
	}
	if err := b.putSection(ctx, repo, number, "log", strings.Join(lines, "\n")); err != nil {
		return err
	}
	return b.render(ctx, gh, repo, number)
}

// Render composes the comment body from its sections.
func Render(sections map[string]string) string {
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, ok := sectionOrder[names[i]]
		if !ok {
			oi = 5
		}
		oj, ok := sectionOrder[names[j]]
		if !ok {
			oj = 5
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	var sb strings.Builder
	sb.WriteString(Marker + "\n")
	for _, n := range names {
		if n == "log" {
			sb.WriteString("\n<details><summary>Recent commands</summary>\n\n" + sections[n] + "\n\n</details>\n")
			continue
		}
		sb.WriteString("\n" + strings.TrimSpace(sections[n]) + "\n")
	}
	return sb.String()
}

// render writes the thread's comment. Callers hold the thread's mutex.
func (b *Bot) render(ctx context.Context, gh *github.Client, repo string, number int) error {
	var rows []struct{ Section, Body string }
	if err := b.DB.WithContext(ctx).Raw(`SELECT section, body FROM bot_sections WHERE repo = ? AND number = ?`, repo, number).Scan(&rows).Error; err != nil {
		return fmt.Errorf("load sections of %s#%d: %w", repo, number, err)
	}
	sections := map[string]string{}
	for _, r := range rows {
		sections[r.Section] = r.Body
	}
	body := Render(sections)
	owner, name, _ := strings.Cut(repo, "/")
	var ids []int64
	if err := b.DB.WithContext(ctx).Raw(`SELECT comment_id FROM bot_threads WHERE repo = ? AND number = ?`, repo, number).Scan(&ids).Error; err != nil {
		return fmt.Errorf("load comment id of %s#%d: %w", repo, number, err)
	}
	id := int64(0)
	if len(ids) > 0 {
		id = ids[0]
	}
	if id == 0 {
		found, err := b.findComment(ctx, gh, owner, name, number)
		if err != nil {
			return err
		}
		id = found
	}
	if id != 0 {
		_, resp, err := gh.Issues.EditComment(ctx, owner, name, id, &github.IssueComment{Body: &body})
		if err == nil {
			return b.saveThread(ctx, repo, number, id)
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("edit comment %d on %s#%d: %w", id, repo, number, err)
		}
		// someone deleted the comment: write a new one
	}
	c, _, err := gh.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: &body})
	if err != nil {
		return fmt.Errorf("create comment on %s#%d: %w", repo, number, err)
	}
	return b.saveThread(ctx, repo, number, c.GetID())
}

// findComment looks for an earlier comment of the bot (by its marker), so a crash between
// creating the comment and storing its ID does not make a second one.
func (b *Bot) findComment(ctx context.Context, gh *github.Client, owner, name string, number int) (int64, error) {
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := gh.Issues.ListComments(ctx, owner, name, number, opt)
		if err != nil {
			return 0, fmt.Errorf("list comments of %s/%s#%d: %w", owner, name, number, err)
		}
		for _, c := range cs {
			if strings.HasPrefix(c.GetBody(), Marker) && (b.Login == "" || strings.EqualFold(c.GetUser().GetLogin(), b.Login) || c.GetUser().GetType() == "Bot") {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

func (b *Bot) saveThread(ctx context.Context, repo string, number int, id int64) error {
	err := b.DB.WithContext(ctx).Exec(`INSERT INTO bot_threads (repo, number, comment_id) VALUES (?, ?, ?)
		ON CONFLICT (repo, number) DO UPDATE SET comment_id = excluded.comment_id`, repo, number, id).Error
	if err != nil {
		return fmt.Errorf("store comment id of %s#%d: %w", repo, number, err)
	}
	return nil
}

// Label adds and removes labels on an issue or pull request; removing a label it does not
// have is not an error.
func Label(ctx context.Context, gh *github.Client, repo string, number int, add, remove []string) error {
	owner, name, _ := strings.Cut(repo, "/")
	if len(add) > 0 {
		if _, _, err := gh.Issues.AddLabelsToIssue(ctx, owner, name, number, add); err != nil {
			return fmt.Errorf("add labels %v to %s#%d: %w", add, repo, number, err)
		}
	}
	for _, l := range remove {
		resp, err := gh.Issues.RemoveLabelForIssue(ctx, owner, name, number, l)
		var ge *github.ErrorResponse
		if err != nil && !(resp != nil && resp.StatusCode == http.StatusNotFound) && !(errors.As(err, &ge) && ge.Response.StatusCode == http.StatusNotFound) {
			return fmt.Errorf("remove label %q from %s#%d: %w", l, repo, number, err)
		}
	}
	return nil
}

// Post sets a section of the bot's comment on repo#number and changes labels, finding the
// installation from the repository; it is what the bounties and ci notifiers call.
func (b *Bot) Post(ctx context.Context, repo string, number int, section, markdown string, add, remove []string) error {
	gh, err := b.ClientFor(ctx, repo)
	if err != nil {
		return err
	}
	if err := Label(ctx, gh, repo, number, add, remove); err != nil {
		return err
	}
	return b.SetSection(ctx, gh, repo, number, section, markdown)
}

// Failed tells the people on an issue or pull request that the commands of a delivery were
// not carried out, after the job failed for good. It is best effort: failures are logged.
func (b *Bot) Failed(ctx context.Context, d Delivery, cause error) {
	var p struct {
		Number int `json:"number"`
		Issue  struct {
			Number int `json:"number"`
		} `json:"issue"`
		PullRequest struct {
			Number int `json:"number"`
		} `json:"pull_request"`
	}
	if d.ParseHead() != nil || json.Unmarshal(d.Payload, &p) != nil || d.Repo == "" {
		return
	}
	number := max(p.Issue.Number, p.PullRequest.Number, p.Number)
	if number == 0 || (d.Event != "issue_comment" && d.Event != "issues" && d.Event != "pull_request" && d.Event != "pull_request_review") {
		return
	}
	gh, err := b.Clients.Installation(ctx, d.InstallationID)
	if err == nil {
		text := fmt.Sprintf("I could not act on delivery `%s` (%s) after several tries: %s. A maintainer can redeliver it from the App's advanced settings once the cause is fixed.",
			d.ID, d.Event, clip(strings.ReplaceAll(cause.Error(), "\n", " "), 200))
		err = b.appendLog(ctx, gh, d.Repo, number, []logEntry{{key: d.ID + ":failed", text: text}})
	}
	if err != nil {
		b.log().ErrorContext(ctx, "tell people a delivery failed", "delivery", d.ID, "err", err)
	}
}
