package testops

import (
	"bufio"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

//go:embed oracle.py
var oracleSource []byte

// ErrNoTorch means no Python interpreter here can import torch.
var ErrNoTorch = errors.New("no python3 with torch found")

// Blob is a tensor as the oracle protocol carries it: shape, dtype name and raw little-endian
// bytes.
type Blob struct {
	Shape []int
	DType string
	Data  []byte
}

type blobMeta struct {
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
	Grad  bool   `json:"grad,omitempty"`
}

// Answer is what PyTorch computed for one case.
type Answer struct {
	Err       string  // PyTorch raised this (empty when it did not)
	Out       Blob    // the output
	Cotangent *Blob   // float32 g of the output's shape, when a gradient was asked for
	Grads     []*Blob // d sum(out*g) / d input, nil for inputs without a gradient
}

// Oracle is one long-lived PyTorch process. It is safe for use by one goroutine at a time;
// Ask serialises callers.
type Oracle struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	Python  string // the interpreter it runs
	Version string // torch.__version__
	Device  string // the torch device it computes on: "cpu" or "cuda"
}

// pythons lists the interpreters to try, in order: $TESTOPS_PYTHON, python3 on PATH, and the
// system's /usr/bin/python3 (where Debian's python3-torch lives even when PATH has another).
func pythons() []string {
	var out []string
	if p := os.Getenv("TESTOPS_PYTHON"); p != "" {
		out = append(out, p)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		out = append(out, p)
	}
	return append(out, "/usr/bin/python3")
}

// StartOracle starts the PyTorch oracle on the given torch device ("cpu" or "cuda"). It
// returns an error wrapping ErrNoTorch, naming every interpreter tried, when none has torch.
func StartOracle(device string) (*Oracle, error) {
	dir, err := os.MkdirTemp("", "testops-oracle")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "oracle.py")
	if err := os.WriteFile(script, oracleSource, 0o644); err != nil {
		return nil, err
	}
	var tried []string
	for _, py := range pythons() {
		if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
			tried = append(tried, py)
			continue
		}
		o := &Oracle{Python: py}
		o.cmd = exec.Command(py, "-u", script)
		o.cmd.Stderr = os.Stderr
		if o.in, err = o.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stdout, err := o.cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		o.out = bufio.NewReaderSize(stdout, 1<<20)
		if err := o.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start oracle %s: %w", py, err)
		}
		var hello struct {
			Torch  string `json:"torch"`
			Device string `json:"device"`
		}
		if err := o.send(map[string]any{"hello": true, "device": device}, nil); err != nil {
			return nil, err
		}
		if err := o.recv(&hello); err != nil {
			o.Close()
			return nil, fmt.Errorf("oracle handshake: %w", err)
		}
		o.Version, o.Device = hello.Torch, hello.Device
		return o, nil
	}
	return nil, fmt.Errorf("%w (tried %s; install Debian's python3-torch or set TESTOPS_PYTHON)", ErrNoTorch, strings.Join(tried, ", "))
}

// Close stops the oracle process.
func (o *Oracle) Close() error {
	o.in.Close()
	return o.cmd.Wait()
}

func (o *Oracle) send(header any, blobs []Blob) error {
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(o.in)
	binary.Write(w, binary.LittleEndian, uint32(len(h)))
	w.Write(h)
	for _, b := range blobs {
		w.Write(b.Data)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write to oracle: %w", err)
	}
	return nil
}

func (o *Oracle) recv(header any) error {
	var n uint32
	if err := binary.Read(o.out, binary.LittleEndian, &n); err != nil {
		return fmt.Errorf("read from oracle: %w", err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(o.out, buf); err != nil {
		return fmt.Errorf("read from oracle: %w", err)
	}
	return json.Unmarshal(buf, header)
}

func (o *Oracle) readBlob(m blobMeta) (*Blob, error) {
	n := dtypeSize(m.DType)
	for _, s := range m.Shape {
		n *= s
	}
	b := &Blob{Shape: m.Shape, DType: m.DType, Data: make([]byte, n)}
	if _, err := io.ReadFull(o.out, b.Data); err != nil {
		return nil, fmt.Errorf("read tensor from oracle: %w", err)
	}
	return b, nil
}

// Ask runs the PyTorch expression expr over inputs x0, x1, … and returns its output, and the
// gradients of sum(out*g) for the inputs whose grad flag is set.
func (o *Oracle) Ask(expr string, inputs []Blob, grad []bool, seed int64) (*Answer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	metas := make([]blobMeta, len(inputs))
	for i, b := range inputs {
		metas[i] = blobMeta{Shape: b.Shape, DType: b.DType, Grad: i < len(grad) && grad[i]}
	}
	if err := o.send(map[string]any{"expr": expr, "inputs": metas, "seed": seed}, inputs); err != nil {
		return nil, err
	}
	var resp struct {
		OK        bool        `json:"ok"`
		Error     string      `json:"error"`
		Outputs   []blobMeta  `json:"outputs"`
		Cotangent *blobMeta   `json:"cotangent"`
		Grads     []*blobMeta `json:"grads"`
	}
	if err := o.recv(&resp); err != nil {
		return nil, err
	}
	if !resp.OK {
		return &Answer{Err: resp.Error}, nil
	}
	a := &Answer{}
	out, err := o.readBlob(resp.Outputs[0])
	if err != nil {
		return nil, err
	}
	a.Out = *out
	if resp.Cotangent != nil {
		if a.Cotangent, err = o.readBlob(*resp.Cotangent); err != nil {
			return nil, err
		}
	}
	a.Grads = make([]*Blob, len(resp.Grads))
	for i, m := range resp.Grads {
		if m != nil {
			if a.Grads[i], err = o.readBlob(*m); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

func dtypeSize(name string) int {
	switch name {
	case "bool", "uint8", "int8":
		return 1
	case "float16", "bfloat16":
		return 2
	case "float32", "int32":
		return 4
	}
	return 8
}
