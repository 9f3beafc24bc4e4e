package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gradforge/gradforge/framework/onnx"
)

// resultPrefix marks a worker's result lines on its stdout; other lines (a kernel's DEBUG
// output, say) pass through to the parent's stderr.
const resultPrefix = "gradforge-case-result\t"

// wireResult is one case's outcome as a worker reports it.
type wireResult struct {
	Status onnx.Status `json:"status"`
	Err    string      `json:"err,omitempty"`
	Nanos  int64       `json:"ns"`
}

// caseWorker runs the case folders named one per line on in, writing one result line per
// case to out. It is the child side of isolated.
func caseWorker(ctx context.Context, in io.Reader, out io.Writer, opt onnx.SuiteOptions) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		dir := sc.Text()
		r := onnx.RunCase(ctx, onnx.Case{Name: filepath.Base(dir), Dir: dir}, opt)
		w := wireResult{Status: r.Status, Nanos: r.Duration.Nanoseconds()}
		if r.Err != nil {
			w.Err = r.Err.Error()
		}
		b, _ := json.Marshal(w)
		if _, err := fmt.Fprintf(out, "%s%s\n", resultPrefix, b); err != nil {
			return fmt.Errorf("case worker: %w", err)
		}
	}
	return sc.Err()
}

// isolated runs conformance cases in child processes (argv, which speaks caseWorker's
// protocol), one per suite worker and reused from case to case. A case that kills its
// process (a fault in generated code takes a Go process down) fails alone, with the
// child's exit status and first words on stderr; the next case gets a fresh child.
type isolated struct {
	argv []string
	mu   sync.Mutex
	idle []*child
}

type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	mu     sync.Mutex
	stderr []byte // what the child wrote to stderr during its current case (bounded)
}

func (c *child) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 4096 - len(c.stderr); room > 0 {
		c.stderr = append(c.stderr, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (p *isolated) start() (*child, error) {
	c := &child{cmd: exec.Command(p.argv[0], p.argv[1:]...)}
	c.cmd.Stderr = c
	in, err := c.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start case worker: %w", err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start case worker: %w", err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start case worker: %w", err)
	}
	c.in, c.out = in, bufio.NewScanner(out)
	c.out.Buffer(nil, 1<<20)
	return c, nil
}

// Run runs one case in an idle child (or a new one).
func (p *isolated) Run(ctx context.Context, cs onnx.Case) onnx.Result {
	start := time.Now()
	fail := func(err error) onnx.Result {
		return onnx.Result{Case: cs.Name, Status: onnx.Fail, Err: err, Duration: time.Since(start)}
	}
	p.mu.Lock()
	var c *child
	if n := len(p.idle); n > 0 {
		c, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	p.mu.Unlock()
	if c == nil {
		var err error
		if c, err = p.start(); err != nil {
			return fail(err)
		}
	}
	c.mu.Lock()
	c.stderr = c.stderr[:0]
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.cmd.Process.Kill() })
	defer stop()
	if _, err := fmt.Fprintln(c.in, cs.Dir); err == nil {
		for c.out.Scan() {
			line, ok := strings.CutPrefix(c.out.Text(), resultPrefix)
			if !ok {
				fmt.Fprintln(os.Stderr, c.out.Text())
				continue
			}
			var w wireResult
			if err := json.Unmarshal([]byte(line), &w); err != nil {
				break
			}
			p.mu.Lock()
			p.idle = append(p.idle, c)
			p.mu.Unlock()
			r := onnx.Result{Case: cs.Name, Status: w.Status, Duration: time.Duration(w.Nanos)}
			if w.Err != "" {
				r.Err = errors.New(w.Err)
			}
			return r
		}
	}
	// The child died in this case (or stopped speaking the protocol): report how, drop it.
	c.in.Close()
	c.cmd.Process.Kill()
	werr := c.cmd.Wait()
	c.mu.Lock()
	said := strings.Join(strings.Fields(string(c.stderr)), " ")
	c.mu.Unlock()
	if len(said) > 300 {
		said = strings.ToValidUTF8(said[:300], "") + "…"
	}
	return fail(fmt.Errorf("case process crashed (%v): %s", werr, said))
}

// Close ends the idle children.
func (p *isolated) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.in.Close()
		c.cmd.Wait()
	}
	p.idle = nil
}
