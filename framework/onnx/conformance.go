package onnx

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is a conformance case's outcome.
type Status string

// Case outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip" // the case has no test data to run
)

// Result is one case's outcome.
type Result struct {
	Case     string
	Op       string // the operator the case tests (for _expanded cases, the op it expands)
	Status   Status
	Err      error
	Duration time.Duration
}

// SuiteOptions configures RunSuite.
type SuiteOptions struct {
	Device  string    // framework device; "" = default
	Workers int       // parallel cases; 0 = GOMAXPROCS
	Tol     Tolerance // zero value = NodeTolerance
	Filter  func(name string) bool
	// Run, when set, runs each case in place of RunCase (the CLI runs cases in child
	// processes, so that a crash fails its case rather than the whole run).
	Run func(ctx context.Context, c Case) Result
}

// RunSuite runs every case under dir (a folder of test_* cases) and returns the results in
// case order. Cases run in parallel; each one's failure is its own.
func RunSuite(ctx context.Context, dir string, opt SuiteOptions) ([]Result, error) {
	cases, err := ListCases(dir)
	if err != nil {
		return nil, err
	}
	if opt.Filter != nil {
		var keep []Case
		for _, c := range cases {
			if opt.Filter(c.Name) {
				keep = append(keep, c)
			}
		}
		cases = keep
	}
	if opt.Tol == (Tolerance{}) {
		opt.Tol = NodeTolerance
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ops := caseOps(cases)
	run := opt.Run
	if run == nil {
		run = func(ctx context.Context, c Case) Result { return RunCase(ctx, c, opt) }
	}
	results := make([]Result, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				slog.Debug("onnx conformance case", "case", cases[i].Name)
				results[i] = run(ctx, cases[i])
				results[i].Op = ops[cases[i].Name]
			}
		}()
	}
	for i := range cases {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run suite: %w", err)
	}
	return results, nil
}

// RunCase loads one case, runs its model on every test data set and compares outputs.
// A panic inside the framework is caught and reported as the case's failure.
func RunCase(ctx context.Context, c Case, opt SuiteOptions) (res Result) {
	start := time.Now()
	res = Result{Case: c.Name, Status: Fail}
	defer func() {
		if p := recover(); p != nil {
			res.Status, res.Err = Fail, fmt.Errorf("panic: %v", p)
		}
		res.Duration = time.Since(start)
	}()
	if opt.Tol == (Tolerance{}) {
		opt.Tol = NodeTolerance
	}
	m, err := LoadModel(filepath.Join(c.Dir, "model.onnx"))
	if err != nil {
		res.Err = err
		return res
	}
	sets, _ := filepath.Glob(filepath.Join(c.Dir, "test_data_set_*"))
	if len(sets) == 0 {
		res.Status, res.Err = Skip, fmt.Errorf("no test_data_set folders")
		return res
	}
	for set := range sets {
		ins, want, err := c.LoadData(m, set)
		if err != nil {
			res.Err = err
			return res
		}
		got, err := Run(ctx, m, ins, RunOptions{Device: opt.Device})
		if err != nil {
			res.Err = err
			return res
		}
		if len(got) != len(want) {
			res.Err = fmt.Errorf("data set %d: %d outputs, want %d", set, len(got), len(want))
			return res
		}
		for i := range want {
			if err := Compare(got[i], want[i], opt.Tol); err != nil {
				res.Err = fmt.Errorf("data set %d output %d (%s): %w", set, i, m.Graph.Outputs[i].Name, err)
				return res
			}
		}
	}
	res.Status, res.Err = Pass, nil
	return res
}

// caseOps names the operator each case tests: a single-node graph's op, or for an
// _expanded case the op of the case it expands, or else the graph's first node's op.
func caseOps(cases []Case) map[string]string {
	single := map[string]string{}
	first := map[string]string{}
	for _, c := range cases {
		m, err := LoadModel(filepath.Join(c.Dir, "model.onnx"))
		if err != nil || len(m.Graph.Nodes) == 0 {
			continue
		}
		first[c.Name] = m.Graph.Nodes[0].OpType
		if len(m.Graph.Nodes) == 1 {
			single[c.Name] = m.Graph.Nodes[0].OpType
		}
	}
	ops := map[string]string{}
	for _, c := range cases {
		op := single[c.Name]
		if op == "" {
			if i := strings.Index(c.Name, "_expanded"); i > 0 {
				op = single[c.Name[:i]]
			}
		}
		if op == "" {
			op = first[c.Name]
		}
		ops[c.Name] = op
	}
	return ops
}

// ExpectedFailures is the list of cases known to fail, each with its one-line reason.
type ExpectedFailures map[string]string

// ReadExpectedFailures parses a list file: one case per line, "test_name  reason", with
// blank lines and lines starting with # ignored. A case without a reason is an error.
func ReadExpectedFailures(path string) (ExpectedFailures, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("expected failures: %w", err)
	}
	defer f.Close()
	out := ExpectedFailures{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, reason, _ := strings.Cut(s, " ")
		reason = strings.TrimSpace(reason)
		if reason == "" {
			return nil, fmt.Errorf("expected failures %s:%d: case %s has no reason", path, line, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("expected failures %s:%d: case %s listed twice", path, line, name)
		}
		out[name] = reason
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("expected failures %s: %w", path, err)
	}
	return out, nil
}

// Family groups an operator for reporting.
func Family(op string) string {
	for fam, ops := range families {
		for _, o := range strings.Fields(ops) {
			if o == op {
				return fam
			}
		}
	}
	return "other"
}

var families = map[string]string{
	"elementwise math":  "Abs Acos Acosh Add Asin Asinh Atan Atanh Ceil Cos Cosh Div Erf Exp Floor Log Max Mean Min Mod Mul Neg Pow Reciprocal Round Sign Sin Sinh Sqrt Sub Sum Tan Tanh IsInf IsNaN BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Clip",
	"logic":             "And Equal Greater GreaterOrEqual Less LessOrEqual Not Or Xor Where",
	"reduction":         "ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare ArgMax ArgMin CumSum CumProd TopK",
	"shape":             "Reshape Transpose Squeeze Unsqueeze Flatten Shape Size Concat Split Expand Tile Pad Identity Constant ConstantOfShape Range EyeLike Trilu SpaceToDepth DepthToSpace CenterCropPad Col2Im",
	"gather/scatter":    "Gather GatherElements GatherND Scatter ScatterElements ScatterND Slice OneHot NonZero Compress Unique",
	"matmul/conv":       "MatMul MatMulInteger Gemm Conv ConvInteger ConvTranspose Einsum DeformConv",
	"pooling":           "AveragePool MaxPool GlobalAveragePool GlobalMaxPool GlobalLpPool LpPool MaxRoiPool MaxUnpool RoiAlign",
	"normalization":     "BatchNormalization InstanceNormalization LayerNormalization GroupNormalization LpNormalization MeanVarianceNormalization RMSNormalization LRN",
	"activation":        "Celu Elu Gelu HardSigmoid HardSwish LeakyRelu Mish PRelu Relu Selu Shrink Sigmoid Softplus Softsign Swish ThresholdedRelu SwiGLU",
	"softmax":           "Softmax LogSoftmax Hardmax SoftmaxCrossEntropyLoss NegativeLogLikelihoodLoss",
	"cast":              "Cast CastLike BitCast",
	"quantization":      "QuantizeLinear DequantizeLinear DynamicQuantizeLinear QLinearConv QLinearMatMul",
	"attention":         "Attention LinearAttention FlexAttention RotaryEmbedding CausalConvWithState",
	"recurrent":         "RNN GRU LSTM",
	"control flow":      "If Loop Scan",
	"sequence/optional": "SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap SplitToSequence ConcatFromSequence Optional OptionalGetElement OptionalHasElement",
	"image/signal":      "Resize GridSample AffineGrid DFT STFT HannWindow HammingWindow BlackmanWindow MelWeightMatrix ImageDecoder NonMaxSuppression",
	"random":            "Bernoulli RandomNormal RandomNormalLike RandomUniform RandomUniformLike Multinomial Dropout",
	"string/text":       "StringConcat StringNormalizer StringSplit RegexFullMatch TfIdfVectorizer LabelEncoder",
	"training":          "Adagrad Adam Momentum Gradient",
}

// Summary formats pass counts per family, then the last line "passed N/M".
func Summary(results []Result) string {
	type count struct{ pass, total int }
	by := map[string]*count{}
	pass := 0
	for _, r := range results {
		f := Family(r.Op)
		if by[f] == nil {
			by[f] = &count{}
		}
		by[f].total++
		if r.Status == Pass {
			by[f].pass++
			pass++
		}
	}
	var names []string
	for f := range by {
		names = append(names, f)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %9s %7s\n", "family", "passed", "rate")
	for _, f := range names {
		c := by[f]
		fmt.Fprintf(&b, "%-20s %4d/%-4d %6.1f%%\n", f, c.pass, c.total, 100*float64(c.pass)/float64(c.total))
	}
	fmt.Fprintf(&b, "passed %d/%d\n", pass, len(results))
	return b.String()
}
