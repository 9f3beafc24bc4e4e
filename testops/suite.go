package testops

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Case is one parity test, declared once: the framework expression, the PyTorch expression
// over x0, x1, …, the inputs and the tolerances.
type Case struct {
	Name    string
	Family  string // op family for the parity gate's summary: "unary", "reduce", "nn", …
	Inputs  []In
	Fw      func(x []*tensor.Tensor) *tensor.Tensor
	Torch   string
	Tol     Tol  // zero fields take the defaults of the output's dtype
	FwdOnly bool // no gradient comparison
}

// In describes one random input.
type In struct {
	Shape  []int
	DType  dtype.DType // zero value means float32 (see in())
	Lo, Hi float64     // value range; zero range means [-2, 2) for floats, [-5, 5) for ints
	NoGrad bool        // a float input that takes no gradient (e.g. a mask or an index)
	set    bool
}

// Tol is allclose's atol and rtol, forward and for gradients.
type Tol struct{ Atol, Rtol, GradAtol, GradRtol float64 }

func defaultTol(d dtype.DType) Tol {
	switch d {
	case dtype.Float16:
		return Tol{1e-2, 1e-2, 5e-2, 5e-2}
	case dtype.BFloat16:
		return Tol{5e-2, 5e-2, 1e-1, 1e-1}
	case dtype.Float32:
		return Tol{1e-5, 1e-4, 1e-4, 1e-3}
	}
	return Tol{} // integers and bools match exactly
}

// Result is one case's outcome, as the JSON report carries it.
type Result struct {
	Name      string  `json:"name"`
	Family    string  `json:"family"`
	Status    string  `json:"status"` // pass, fail or skip
	FwdMaxAbs float64 `json:"fwd_max_abs"`
	FwdMaxRel float64 `json:"fwd_max_rel"`
	BwdMaxAbs float64 `json:"bwd_max_abs"`
	BwdMaxRel float64 `json:"bwd_max_rel"`
	FwdTol    float64 `json:"fwd_tol_used"` // worst element's error over its tolerance (≤ 1 passes)
	BwdTol    float64 `json:"bwd_tol_used"`
	Ms        float64 `json:"ms"`
	Error     string  `json:"error,omitempty"`
}

// Report is the suite's machine-readable result, read by the parity gate.
type Report struct {
	Device string   `json:"device"`
	Seed   uint64   `json:"seed"`
	Torch  string   `json:"torch"`
	Passed int      `json:"passed"`
	Failed int      `json:"failed"`
	Skip   int      `json:"skipped"`
	Cases  []Result `json:"cases"`
}

// Seed is $TESTOPS_SEED, or a fresh one from the clock.
func Seed() uint64 {
	if s := os.Getenv("TESTOPS_SEED"); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return uint64(time.Now().UnixNano())
}

// Select returns the cases whose names match $TESTOPS_FILTER (all when unset).
func Select(cases []Case) ([]Case, error) {
	f := os.Getenv("TESTOPS_FILTER")
	if f == "" {
		return cases, nil
	}
	re, err := regexp.Compile(f)
	if err != nil {
		return nil, fmt.Errorf("TESTOPS_FILTER: %w", err)
	}
	var out []Case
	for _, c := range cases {
		if re.MatchString(c.Name) {
			out = append(out, c)
		}
	}
	return out, nil
}

// caseSeed gives each case its own stream, so a filtered run replays the same values.
func caseSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return seed ^ h.Sum64()
}

// Run runs one case on device against the oracle.
func Run(o *Oracle, device string, seed uint64, c Case) (r Result) {
	start := time.Now()
	r = Result{Name: c.Name, Family: c.Family, Status: "pass"}
	defer func() { r.Ms = float64(time.Since(start).Microseconds()) / 1000 }()
	fail := func(format string, args ...any) Result {
		r.Status, r.Error = "fail", fmt.Sprintf(format, args...)
		return r
	}
	s := caseSeed(seed, c.Name)
	rng := rand.New(rand.NewPCG(s, s>>1|1))
	blobs := make([]Blob, len(c.Inputs))
	grad := make([]bool, len(c.Inputs))
	for i, in := range c.Inputs {
		blobs[i] = randomBlob(rng, in)
		grad[i] = !c.FwdOnly && !in.NoGrad && in.dtype().IsFloat()
	}
	ans, err := o.Ask(c.Torch, blobs, grad, int64(s>>33))
	if err != nil {
		return fail("oracle: %v", err)
	}
	var xs []*tensor.Tensor
	var out *tensor.Tensor
	ferr := tensor.Try(func() {
		xs = make([]*tensor.Tensor, len(blobs))
		for i, b := range blobs {
			xs[i] = fromBlob(b, device)
			if grad[i] {
				xs[i].RequiresGrad = true
			}
		}
		out = c.Fw(xs)
		out.Realize()
	})
	switch {
	case ans.Err != "" && ferr != nil:
		return r // both refused: parity
	case ans.Err != "":
		return fail("PyTorch raised %q; the framework did not", ans.Err)
	case ferr != nil:
		return fail("framework failed: %v", ferr)
	}
	got, err := toBlob(out)
	if err != nil {
		return fail("realize output: %v", err)
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(ans.Out.Shape) || got.DType != ans.Out.DType {
		return fail("output %v %s, PyTorch %v %s", got.Shape, got.DType, ans.Out.Shape, ans.Out.DType)
	}
	tol := c.Tol.or(defaultTol(out.DType()))
	d := compare(decode(got), decode(ans.Out), tol.Atol, tol.Rtol)
	r.FwdMaxAbs, r.FwdMaxRel, r.FwdTol = finite(d.MaxAbs), finite(d.MaxRel), finite(d.Used)
	if d.Bad > 0 {
		return fail("forward: %d of %d elements differ; %s", d.Bad, len(got.Data)/dtypeSize(got.DType), d.First)
	}
	if ans.Cotangent == nil {
		return r
	}
	hasGrad := false
	berr := tensor.Try(func() {
		g := fromBlob(*ans.Cotangent, device)
		switch l := any(out.Cast(dtype.Float32).Mul(g).Sum()).(type) {
		case backwarder:
			hasGrad = true
			l.Backward()
		case interface{ Backward() error }:
			hasGrad = true
			if err := l.Backward(); err != nil {
				panic(&tensor.Error{Op: "Backward", Msg: err.Error()})
			}
		}
	})
	if berr != nil {
		return fail("backward failed: %v", berr)
	}
	if !hasGrad {
		r.Status, r.Error = "skip", "the framework has no autograd (Backward) yet"
		return r
	}
	for i, want := range ans.Grads {
		if want == nil {
			continue
		}
		gt := xs[i].Grad
		if gt == nil { // no path from the loss: the gradient is zero, as PyTorch reports it
			gt = xs[i].ZerosLike()
		}
		gb, err := toBlob(gt)
		if err != nil {
			return fail("realize gradient of input %d: %v", i, err)
		}
		if fmt.Sprint(gb.Shape) != fmt.Sprint(want.Shape) {
			return fail("input %d gradient shape %v, PyTorch %v", i, gb.Shape, want.Shape)
		}
		d := compare(decode(gb), decode(*want), tol.GradAtol, tol.GradRtol)
		r.BwdMaxAbs, r.BwdMaxRel = math.Max(r.BwdMaxAbs, finite(d.MaxAbs)), math.Max(r.BwdMaxRel, finite(d.MaxRel))
		r.BwdTol = math.Max(r.BwdTol, finite(d.Used))
		if d.Bad > 0 {
			return fail("gradient of input %d: %d elements differ; %s", i, d.Bad, d.First)
		}
	}
	return r
}

// finite keeps the report valid JSON (which has no infinity).
func finite(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return math.MaxFloat64
	}
	return v
}

func (t Tol) or(d Tol) Tol {
	if t.Atol == 0 && t.Rtol == 0 {
		t.Atol, t.Rtol = d.Atol, d.Rtol
	}
	if t.GradAtol == 0 && t.GradRtol == 0 {
		t.GradAtol, t.GradRtol = d.GradAtol, d.GradRtol
	}
	return t
}

func (in In) dtype() dtype.DType {
	if !in.set && in.DType == dtype.Bool {
		return dtype.Float32 // the zero value: callers who want bool use B()
	}
	return in.DType
}

func randomBlob(rng *rand.Rand, in In) Blob {
	d := in.dtype()
	n := 1
	for _, s := range in.Shape {
		n *= s
	}
	lo, hi := in.Lo, in.Hi
	if lo == hi {
		lo, hi = -2, 2
		if !d.IsFloat() {
			lo, hi = -5, 5
		}
		if d == dtype.Uint8 {
			lo, hi = 0, 10
		}
	}
	b := Blob{Shape: append([]int{}, in.Shape...), DType: d.String(), Data: make([]byte, n*d.Size())}
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		v := lo + rng.Float64()*(hi-lo)
		switch d {
		case dtype.Float32:
			le.PutUint32(b.Data[4*i:], math.Float32bits(float32(v)))
		case dtype.Float16:
			le.PutUint16(b.Data[2*i:], dtype.Float32ToHalf(float32(v)))
		case dtype.BFloat16:
			le.PutUint16(b.Data[2*i:], dtype.Float32ToBFloat16(float32(v)))
		case dtype.Int32:
			le.PutUint32(b.Data[4*i:], uint32(int32(math.Floor(v))))
		case dtype.Int64:
			le.PutUint64(b.Data[8*i:], uint64(int64(math.Floor(v))))
		case dtype.Int8:
			b.Data[i] = byte(int8(math.Floor(v)))
		case dtype.Uint8:
			b.Data[i] = byte(math.Floor(v))
		case dtype.Bool:
			b.Data[i] = byte(rng.IntN(2))
		}
	}
	return b
}

// Suite runs cases in order and collects the report.
func Suite(o *Oracle, device string, seed uint64, cases []Case, each func(Result)) Report {
	rep := Report{Device: device, Seed: seed, Torch: o.Version}
	for _, c := range cases {
		r := Run(o, device, seed, c)
		switch r.Status {
		case "pass":
			rep.Passed++
		case "fail":
			rep.Failed++
		default:
			rep.Skip++
		}
		rep.Cases = append(rep.Cases, r)
		if each != nil {
			each(r)
		}
	}
	return rep
}

// WriteJSON writes the report to path.
func (r Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Families counts passes and failures per op family.
func (r Report) Families() map[string][2]int {
	out := map[string][2]int{}
	for _, c := range r.Cases {
		v := out[c.Family]
		if c.Status == "pass" {
			v[0]++
		} else if c.Status == "fail" {
			v[1]++
		}
		out[c.Family] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
