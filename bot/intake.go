package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gradforge/gradforge/migrations"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// DefaultMaxBody is the largest webhook body accepted: GitHub caps payloads at 25 MB.
const DefaultMaxBody = 25 << 20

// ErrNoSecret is returned when the intake is configured without a webhook secret: accepting
// unsigned deliveries would let anyone on the internet drive the bot.
var ErrNoSecret = errors.New("no webhook secret configured: set --webhook-secret (GRADFORGE_WEBHOOK_SECRET); refusing to accept unsigned webhooks")

// Delivery is one webhook delivery as stored. Action, InstallationID and Repo are read from
// the payload when the delivery is loaded for work (see ParseHead).
type Delivery struct {
	ID             string // X-GitHub-Delivery
	Event          string // X-GitHub-Event
	Action         string
	InstallationID int64
	Repo           string // owner/name, "" for events without a repository
	Payload        []byte
}

// ParseHead fills Action, InstallationID and Repo from the payload.
func (d *Delivery) ParseHead() error {
	var head struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(d.Payload, &head); err != nil {
		return fmt.Errorf("delivery %s: payload is not a JSON object: %w", d.ID, err)
	}
	d.Action, d.InstallationID, d.Repo = head.Action, head.Installation.ID, head.Repository.FullName
	return nil
}

// Intake is POST /webhooks/github: it checks each delivery, stores it durably exactly once
// and answers only after the store committed, so an acknowledged delivery is never lost.
// Writes are group-committed: deliveries that arrive together share one transaction, which
// is what lets one SQLite file or one PostgreSQL connection absorb bursts.
type Intake struct {
	sql     *sql.DB
	pg      bool
	secrets [][]byte
	macs    []*sync.Pool // per secret: keyed HMACs to reuse
	maxBody int64
	log     *slog.Logger
	queue   chan ack
	wake    func()
}

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	// Secrets are the webhook secrets; a delivery signed with any of them is accepted, so a
	// secret can be rotated by configuring old and new together. At least one, none empty.
	Secrets []string
	// MaxBody caps a request body in bytes (default DefaultMaxBody).
	MaxBody int64
	Log     *slog.Logger
	// Wake is called after deliveries were stored, to wake idle workers (optional).
	Wake func()
}

type ack struct {
	d    Delivery
	done chan ackResult
}

type ackResult struct {
	duplicate bool
	err       error
}

// ParseSecrets splits a comma-separated secret list, trimming spaces, and refuses an empty
// list or an empty member.
func ParseSecrets(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, ErrNoSecret
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("the webhook secret list has an empty member (check the commas): %w", ErrNoSecret)
		}
		out = append(out, p)
	}
	return out, nil
}

// NewIntake checks the configuration and starts the group-commit writer, which stops when
// ctx is done.
func NewIntake(ctx context.Context, db *gorm.DB, cfg IntakeConfig) (*Intake, error) {
	if len(cfg.Secrets) == 0 {
		return nil, ErrNoSecret
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("intake database: %w", err)
	}
	in := &Intake{sql: sqlDB, pg: migrations.DriverOf(db) == migrations.Postgres, maxBody: cfg.MaxBody, log: cfg.Log, queue: make(chan ack, 1024), wake: cfg.Wake}
	for _, s := range cfg.Secrets {
		if s == "" {
			return nil, ErrNoSecret
		}
		key := []byte(s)
		in.secrets = append(in.secrets, key)
		in.macs = append(in.macs, &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }})
	}
	if in.maxBody <= 0 {
		in.maxBody = DefaultMaxBody
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	if in.wake == nil {
		in.wake = func() {}
	}
	// SQLite takes one writer at a time, so one group-committer is best there; PostgreSQL
	// commits concurrently, so a few overlap their round trips and WAL flushes.
	writers := 1
	if in.pg {
		writers = 3
	}
	for i := 0; i < writers; i++ {
		go in.writer(ctx)
	}
	return in, nil
}

// Routes adds POST /webhooks/github.
func (in *Intake) Routes(r gin.IRouter) { r.POST("/webhooks/github", in.Handle) }

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// verify checks a sha256= signature against every secret in constant time per secret.
func (in *Intake) verify(sig string, body []byte) bool {
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	match := false
	var sum [sha256.Size]byte
	for i := range in.secrets {
		m := in.macs[i].Get().(hash.Hash) // keyed once, Reset per use: hmac.New is 5 allocations
		m.Reset()
		m.Write(body)
		if hmac.Equal(got, m.Sum(sum[:0])) {
			match = true // no early exit: the time taken does not depend on which secret matched
		}
		in.macs[i].Put(m)
	}
	return match
}

func refuse(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// Handle is the gin handler for one delivery.
func (in *Intake) Handle(c *gin.Context) {
	r := c.Request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		refuse(c, http.StatusUnsupportedMediaType, "content type must be application/json (set the webhook's content type to JSON in the App settings)")
		return
	}
	event, id := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	if event == "" || id == "" {
		refuse(c, http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	if len(id) > 100 || len(event) > 100 || strings.ContainsFunc(id+event, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		refuse(c, http.StatusBadRequest, "malformed X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	sig := r.Header.Get("X-Hub-Signature-256")
	if sig == "" {
		msg := "missing X-Hub-Signature-256"
		if r.Header.Get("X-Hub-Signature") != "" {
			msg = "only a SHA-1 signature (X-Hub-Signature) was sent; SHA-1 is not accepted, X-Hub-Signature-256 is required"
		}
		refuse(c, http.StatusUnauthorized, msg)
		return
	}
	if r.ContentLength > in.maxBody {
		refuse(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", in.maxBody))
		return
	}
	body, err := readBody(http.MaxBytesReader(c.Writer, r.Body, in.maxBody), r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			refuse(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", in.maxBody))
			return
		}
		refuse(c, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if !in.verify(sig, body) {
		in.log.WarnContext(r.Context(), "webhook signature mismatch", "delivery", id, "event", event, "remote", c.ClientIP())
		refuse(c, http.StatusUnauthorized, "signature does not match")
		return
	}
	// The signature already proved GitHub (or a holder of the secret) sent these bytes, and
	// GitHub sends JSON objects; the ack checks the shape only and the worker, which parses
	// the payload anyway, fails a malformed one for good. A full validation here would be a
	// fifth of the ack's CPU.
	if t := bytes.TrimSpace(body); len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		refuse(c, http.StatusBadRequest, "body is not a JSON object")
		return
	}
	if event == "ping" {
		c.JSON(http.StatusOK, gin.H{"status": "pong", "delivery": id})
		return
	}
	d := Delivery{ID: id, Event: event, Payload: body}
	dup, err := in.Store(r.Context(), d)
	if err != nil {
		in.log.ErrorContext(r.Context(), "store webhook delivery", "delivery", id, "err", err)
		refuse(c, http.StatusServiceUnavailable, "could not store the delivery; redeliver it")
		return
	}
	// The ack is written by hand: gin.H and encoding/json cost a map and reflection per ack
	// for two fields whose shape is fixed (the ID is printable ASCII, checked above).
	c.Data(http.StatusAccepted, "application/json; charset=utf-8", ackBody(id, dup))
}

// readBody reads a request body into one buffer sized from Content-Length when the client
// sent it (GitHub always does), instead of io.ReadAll's doubling from 512 bytes, which for
// a typical 8–30 KB payload costs half a dozen allocations and copies per delivery.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > 1<<20 {
		return io.ReadAll(r) // unknown or large: grow as needed, never trust a huge hint
	}
	buf := make([]byte, 0, length+1) // +1: EOF is seen without growing
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) { // longer than announced: let append grow it
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// ackBody is the 202's JSON: {"delivery":ID,"duplicate":BOOL}.
func ackBody(id string, dup bool) []byte {
	b := make([]byte, 0, len(id)+40)
	b = append(b, `{"delivery":`...)
	b = strconv.AppendQuote(b, id) // printable ASCII only, so Go quoting is valid JSON
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, dup)
	return append(b, '}')
}

// Store durably records a delivery and its job, once per delivery ID; duplicate reports that
// the ID was already stored (and nothing was written).
func (in *Intake) Store(ctx context.Context, d Delivery) (duplicate bool, err error) {
	a := ack{d: d, done: make(chan ackResult, 1)}
	select {
	case in.queue <- a:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case res := <-a.done:
		return res.duplicate, res.err
	case <-ctx.Done():
		// The write may still commit; GitHub's redelivery would then be deduplicated.
		return false, ctx.Err()
	}
}

// writer group-commits queued deliveries until ctx is done.
func (in *Intake) writer(ctx context.Context) {
	const maxBatch = 256
	for {
		var batch []ack
		select {
		case <-ctx.Done():
			return
		case a := <-in.queue:
			batch = append(batch, a)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case a := <-in.queue:
				batch = append(batch, a)
			default:
				break fill
			}
		}
		dups, err := in.write(context.WithoutCancel(ctx), batch)
		for i, a := range batch {
			a.done <- ackResult{duplicate: err == nil && dups[i], err: err}
		}
		if err == nil {
			in.wake()
		}
	}
}

// write stores a batch in one transaction with two statements, whatever its size: the
// deliveries (duplicates skipped by the unique delivery ID, within the batch too) and a job
// for each delivery that was new. It reports which requests were duplicates. It talks to
// database/sql directly: gorm renders every statement with its arguments for its logger,
// which for kilobytes of payload costs more than the insert.
func (in *Intake) write(ctx context.Context, batch []ack) ([]bool, error) {
	dups := make([]bool, len(batch))
	now := time.Now().UTC()
	n := 0
	ph := func() string {
		n++
		if in.pg {
			return "$" + strconv.Itoa(n)
		}
		return "?"
	}
	var sb strings.Builder
	args := make([]any, 0, 4*len(batch))
	sb.WriteString(`INSERT INTO bot_deliveries (delivery_id, event, payload, received_at) VALUES `)
	for i, a := range batch {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "(%s, %s, %s, %s)", ph(), ph(), ph(), ph())
		args = append(args, a.d.ID, a.d.Event, a.d.Payload, now)
	}
	sb.WriteString(` ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id`)
	tx, err := in.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("insert %d deliveries: %w", len(batch), err)
	}
	fresh := make(map[string]bool, len(batch))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("insert %d deliveries: %w", len(batch), err)
		}
		fresh[id] = true
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("insert %d deliveries: %w", len(batch), err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert %d deliveries: %w", len(batch), err)
	}
	n = 0
	var jobs strings.Builder
	jobArgs := make([]any, 0, 3*len(fresh))
	jobs.WriteString(`INSERT INTO bot_jobs (delivery_id, run_after, updated_at) VALUES `)
	for i, a := range batch {
		if !fresh[a.d.ID] {
			dups[i] = true
			continue
		}
		delete(fresh, a.d.ID) // later copies in this batch are duplicates
		if len(jobArgs) > 0 {
			jobs.WriteString(", ")
		}
		fmt.Fprintf(&jobs, "(%s, %s, %s)", ph(), ph(), ph())
		jobArgs = append(jobArgs, a.d.ID, now, now)
	}
	if len(jobArgs) > 0 {
		if _, err := tx.ExecContext(ctx, jobs.String(), jobArgs...); err != nil {
			return nil, fmt.Errorf("insert %d jobs: %w", len(jobArgs)/3, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit %d deliveries: %w", len(batch), err)
	}
	return dups, nil
}
