package testops

import (
	"fmt"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

type T = tensor.Tensor

// F is a float32 input of the given shape.
func F(shape ...int) In { return In{Shape: shape, DType: dtype.Float32, set: true} }

// D is an input of dtype d.
func D(d dtype.DType, shape ...int) In { return In{Shape: shape, DType: d, set: true} }

// R sets the value range.
func (in In) R(lo, hi float64) In { in.Lo, in.Hi = lo, hi; return in }

// NG marks an input that takes no gradient.
func (in In) NG() In { in.NoGrad = true; return in }

func shapeName(s []int) string {
	if len(s) == 0 {
		return "scalar"
	}
	return strings.Trim(strings.ReplaceAll(fmt.Sprint(s), " ", "x"), "[]")
}

// Cases is the whole parity suite.
func Cases() []Case {
	var cs []Case
	for _, add := range []func() []Case{unaryCases, binaryCases, reduceCases, movementCases, matmulCases, miscCases, errorCases} {
		cs = append(cs, add()...)
	}
	return append(cs, extraCases...)
}

// extraCases are added by files for optional parts (nn layers and others) from init.
var extraCases []Case

// view is a way of handing an op a (3,4) input that is not a plain contiguous buffer.
type view struct {
	name  string
	base  []int
	fw    func(*T) *T
	torch string // %s is the input
}

var views = []view{
	{"contig", []int{3, 4}, func(x *T) *T { return x }, "%s"},
	{"permuted", []int{4, 3}, func(x *T) *T { return x.Permute(1, 0) }, "%s.permute(1,0)"},
	{"sliced", []int{3, 7}, func(x *T) *T { return x.Slice(1, 2, 6) }, "%s[:,2:6]"},
	{"flipped", []int{3, 4}, func(x *T) *T { return x.Flip(0, 1) }, "%s.flip(0,1)"},
	{"padded", []int{3, 2}, func(x *T) *T { return x.Pad([][2]int{{0, 0}, {1, 1}}) }, "F.pad(%s,(1,1))"},
	{"expanded", []int{1, 4}, func(x *T) *T { return x.Expand(3, 4) }, "%s.expand(3,4)"},
	{"reshaped", []int{2, 6}, func(x *T) *T { return x.Reshape(3, 4) }, "%s.reshape(3,4)"},
}

type unaryOp struct {
	name   string
	fw     func(*T) *T
	torch  string // %s is the input
	lo, hi float64
	half   bool // also run in float16 and bfloat16
	tol    Tol
}

var unaryOps = []unaryOp{
	{"neg", (*T).Neg, "%s.neg()", 0, 0, true, Tol{}},
	{"exp", (*T).Exp, "%s.exp()", -4, 4, true, Tol{}},
	{"exp2", (*T).Exp2, "torch.exp2(%s)", -4, 4, true, Tol{}},
	{"log", (*T).Log, "%s.log()", 0.05, 5, true, Tol{}},
	{"log2", (*T).Log2, "%s.log2()", 0.05, 5, true, Tol{}},
	{"sqrt", (*T).Sqrt, "%s.sqrt()", 0.05, 5, true, Tol{}},
	{"rsqrt", (*T).Rsqrt, "%s.rsqrt()", 0.1, 5, false, Tol{}},
	{"reciprocal", (*T).Reciprocal, "%s.reciprocal()", 0.2, 5, false, Tol{}},
	{"sin", (*T).Sin, "%s.sin()", -6, 6, true, Tol{}},
	{"cos", (*T).Cos, "%s.cos()", -6, 6, true, Tol{}},
	{"abs", (*T).Abs, "%s.abs()", 0, 0, true, Tol{}},
	{"sign", (*T).Sign, "%s.sign()", 0, 0, false, Tol{}},
	{"relu", (*T).Relu, "%s.relu()", 0, 0, true, Tol{}},
	{"sigmoid", (*T).Sigmoid, "%s.sigmoid()", -6, 6, true, Tol{}},
	{"tanh", (*T).Tanh, "%s.tanh()", -4, 4, true, Tol{Atol: 1e-5, Rtol: 1e-4, GradAtol: 1e-4, GradRtol: 1e-3}},
	{"gelu", (*T).Gelu, "F.gelu(%s, approximate='tanh')", -4, 4, true, Tol{}},
	{"silu", (*T).Silu, "F.silu(%s)", -5, 5, true, Tol{}},
	{"square", (*T).Square, "%s.square()", 0, 0, false, Tol{}},
	{"clip", func(x *T) *T { return x.Clip(-0.5, 0.7) }, "%s.clip(-0.5,0.7)", 0, 0, false, Tol{}},
}

func unaryCases() []Case {
	var cs []Case
	for _, op := range unaryOps {
		in := func(shape ...int) In { return F(shape...).R(op.lo, op.hi) }
		for _, v := range views {
			v := v
			cs = append(cs, Case{Name: "unary/" + op.name + "/" + v.name, Family: "unary", Inputs: []In{in(v.base...)},
				Fw: func(x []*T) *T { return op.fw(v.fw(x[0])) }, Torch: fmt.Sprintf(op.torch, fmt.Sprintf(v.torch, "x0")), Tol: op.tol})
		}
		for _, s := range [][]int{{}, {7}, {2, 3, 4}, {0, 3}} {
			cs = append(cs, Case{Name: "unary/" + op.name + "/" + shapeName(s), Family: "unary", Inputs: []In{in(s...)},
				Fw: func(x []*T) *T { return op.fw(x[0]) }, Torch: fmt.Sprintf(op.torch, "x0"), Tol: op.tol})
		}
		if op.half {
			for _, d := range []dtype.DType{dtype.Float16, dtype.BFloat16} {
				cs = append(cs, Case{Name: "unary/" + op.name + "/" + d.String(), Family: "unary", Inputs: []In{D(d, 4, 5).R(op.lo, op.hi)},
					Fw: func(x []*T) *T { return op.fw(x[0]) }, Torch: fmt.Sprintf(op.torch, "x0")})
			}
		}
	}
	// Large magnitudes where a naive formula overflows.
	for _, c := range []struct {
		name  string
		fw    func(*T) *T
		torch string
	}{
		{"sigmoid", (*T).Sigmoid, "x0.sigmoid()"}, {"tanh", (*T).Tanh, "x0.tanh()"}, {"exp", (*T).Exp, "x0.exp()"},
		{"silu", (*T).Silu, "F.silu(x0)"}, {"softmax", func(x *T) *T { return x.Softmax(-1) }, "x0.softmax(-1)"},
		{"log_softmax", func(x *T) *T { return x.LogSoftmax(-1) }, "x0.log_softmax(-1)"},
	} {
		cs = append(cs, Case{Name: "unary/" + c.name + "/large", Family: "unary", Inputs: []In{F(4, 6).R(-90, 90)},
			Fw: func(x []*T) *T { return c.fw(x[0]) }, Torch: c.torch, Tol: Tol{Atol: 1e-5, Rtol: 1e-4, GradAtol: 1e-4, GradRtol: 1e-3}})
	}
	return cs
}

type binaryOp struct {
	name   string
	fw     func(*T, any) *T
	torch  string // %s %s are the operands
	lo, hi float64
	cmp    bool // a comparison: forward only
}

var binaryOps = []binaryOp{
	{"add", (*T).Add, "%s + %s", 0, 0, false},
	{"sub", (*T).Sub, "%s - %s", 0, 0, false},
	{"mul", (*T).Mul, "%s * %s", 0, 0, false},
	{"div", (*T).Div, "%s / %s", 0.5, 3, false},
	{"maximum", (*T).Maximum, "torch.maximum(%s, %s)", 0, 0, false},
	{"minimum", (*T).Minimum, "torch.minimum(%s, %s)", 0, 0, false},
	{"pow", (*T).Pow, "torch.pow(%s, %s)", 0.3, 2, false},
	{"lt", (*T).Lt, "%s < %s", 0, 0, true},
	{"gt", (*T).Gt, "%s > %s", 0, 0, true},
	{"le", (*T).Le, "%s <= %s", 0, 0, true},
	{"ge", (*T).Ge, "%s >= %s", 0, 0, true},
	{"eq", (*T).Eq, "%s == %s", 0, 0, true},
	{"ne", (*T).Ne, "%s != %s", 0, 0, true},
}

var broadcastPairs = [][2][]int{
	{{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{}, {2, 3}}, {{2, 1, 4}, {3, 1}}, {{4}, {2, 3, 4}}, {{0, 4}, {4}}, {{5}, {}},
}

func binaryCases() []Case {
	var cs []Case
	for _, op := range binaryOps {
		in := func(s []int) In { return F(s...).R(op.lo, op.hi) }
		if op.cmp {
			in = func(s []int) In { return D(dtype.Float32, s...).R(-2, 2) }
		}
		for _, p := range broadcastPairs {
			name := "binary/" + op.name + "/" + shapeName(p[0]) + "_" + shapeName(p[1])
			c := Case{Name: name, Family: "binary", Inputs: []In{in(p[0]), in(p[1])}, FwdOnly: op.cmp,
				Fw: func(x []*T) *T { return op.fw(x[0], x[1]) }, Torch: fmt.Sprintf(op.torch, "x0", "x1")}
			if op.cmp { // equal elements make Eq/Le meaningful: compare with a rounded copy
				c.Fw = func(x []*T) *T {
					return op.fw(x[0].Mul(2).Cast(dtype.Int32).Cast(dtype.Float32), x[1].Mul(2).Cast(dtype.Int32).Cast(dtype.Float32))
				}
				c.Torch = fmt.Sprintf(op.torch, "(x0*2).int().float()", "(x1*2).int().float()")
			}
			cs = append(cs, c)
		}
		// A Go number on the right, and a non-contiguous left operand.
		cs = append(cs, Case{Name: "binary/" + op.name + "/number", Family: "binary", Inputs: []In{in([]int{3, 4})}, FwdOnly: op.cmp,
			Fw: func(x []*T) *T { return op.fw(x[0], 1.5) }, Torch: fmt.Sprintf(op.torch, "x0", "torch.tensor(1.5)")})
		cs = append(cs, Case{Name: "binary/" + op.name + "/permuted", Family: "binary", Inputs: []In{in([]int{4, 3}), in([]int{3, 4})}, FwdOnly: op.cmp,
			Fw: func(x []*T) *T { return op.fw(x[0].Permute(1, 0), x[1].Flip(1)) }, Torch: fmt.Sprintf(op.torch, "x0.permute(1,0)", "x1.flip(1)")})
		if !op.cmp {
			cs = append(cs, Case{Name: "binary/" + op.name + "/float16", Family: "binary", Inputs: []In{D(dtype.Float16, 3, 4).R(op.lo, op.hi), D(dtype.Float16, 4).R(op.lo, op.hi)},
				Fw: func(x []*T) *T { return op.fw(x[0], x[1]) }, Torch: fmt.Sprintf(op.torch, "x0", "x1")})
		}
	}
	// Integer and bool arithmetic, which PyTorch defines exactly.
	ints := []struct {
		name  string
		fw    func(*T, any) *T
		torch string
		lo    float64
	}{
		{"add", (*T).Add, "x0 + x1", -50}, {"sub", (*T).Sub, "x0 - x1", -50}, {"mul", (*T).Mul, "x0 * x1", -50},
		{"intdiv", (*T).IntDiv, "torch.div(x0, x1, rounding_mode='trunc')", 1}, {"mod", (*T).Mod, "torch.fmod(x0, x1)", 1},
		{"maximum", (*T).Maximum, "torch.maximum(x0, x1)", -50}, {"minimum", (*T).Minimum, "torch.minimum(x0, x1)", -50},
		{"lt", (*T).Lt, "x0 < x1", -50}, {"eq", (*T).Eq, "x0 == x1", -3}, {"div", (*T).Div, "x0 / x1", 1},
	}
	for _, op := range ints {
		for _, d := range []dtype.DType{dtype.Int32, dtype.Int64} {
			cs = append(cs, Case{Name: "binary/" + op.name + "/" + d.String(), Family: "integer", FwdOnly: true,
				Inputs: []In{D(d, 3, 4).R(-50, 50), D(d, 4).R(op.lo, 9)},
				Fw:     func(x []*T) *T { return op.fw(x[0], x[1]) }, Torch: op.torch})
		}
	}
	for _, op := range []struct {
		name  string
		fw    func(*T, any) *T
		torch string
	}{{"and", (*T).And, "x0 & x1"}, {"or", (*T).Or, "x0 | x1"}, {"xor", (*T).Xor, "x0 ^ x1"}} {
		cs = append(cs, Case{Name: "binary/" + op.name + "/bool", Family: "integer", FwdOnly: true, Inputs: []In{D(dtype.Bool, 3, 4), D(dtype.Bool, 3, 4)},
			Fw: func(x []*T) *T { return op.fw(x[0], x[1]) }, Torch: op.torch})
		cs = append(cs, Case{Name: "binary/" + op.name + "/int32", Family: "integer", FwdOnly: true, Inputs: []In{D(dtype.Int32, 3, 4).R(0, 100), D(dtype.Int32, 4).R(0, 100)},
			Fw: func(x []*T) *T { return op.fw(x[0], x[1]) }, Torch: op.torch})
	}
	cs = append(cs, Case{Name: "binary/add/uint8_int8", Family: "integer", FwdOnly: true, Inputs: []In{D(dtype.Uint8, 5), D(dtype.Int8, 5)},
		Fw: func(x []*T) *T { return x[0].Add(x[1]) }, Torch: "x0.int() + x1.int()"})
	cs = append(cs, Case{Name: "binary/add/int32_float32", Family: "binary", Inputs: []In{D(dtype.Int32, 3, 4), F(4)},
		Fw: func(x []*T) *T { return x[0].Add(x[1]) }, Torch: "x0 + x1"})
	return cs
}

func reduceCases() []Case {
	var cs []Case
	type red struct {
		name  string
		fw    func(*T, ...int) *T
		torch func(args string, keep bool) string // args: "" or "dim=…"
		fwd   bool
	}
	kd := func(keep bool) string {
		if keep {
			return ", keepdim=True"
		}
		return ""
	}
	reds := []red{
		{"sum", (*T).Sum, func(a string, k bool) string { return "x0.sum(" + a + kd(k) + ")" }, false},
		{"mean", (*T).Mean, func(a string, k bool) string { return "x0.mean(" + a + kd(k) + ")" }, false},
		{"max", (*T).Max, func(a string, k bool) string { return "x0.amax(" + a + kd(k) + ")" }, false},
		{"min", (*T).Min, func(a string, k bool) string { return "x0.amin(" + a + kd(k) + ")" }, false},
		{"var", (*T).Var, func(a string, k bool) string { return "x0.var(" + a + kd(k) + ")" }, false},
		{"std", (*T).Std, func(a string, k bool) string { return "x0.std(" + a + kd(k) + ")" }, false},
	}
	axesSets := []struct {
		name  string
		axes  []int
		torch string
	}{
		{"all", nil, ""}, {"axis0", []int{0}, "dim=0"}, {"axis1", []int{1}, "dim=1"}, {"axis2", []int{2}, "dim=2"},
		{"axis-1", []int{-1}, "dim=-1"}, {"axes0_2", []int{0, 2}, "dim=(0,2)"}, {"axes-1_-2", []int{-1, -2}, "dim=(-1,-2)"},
	}
	for _, r := range reds {
		for _, a := range axesSets {
			for _, keep := range []bool{false, true} {
				if keep && a.axes == nil {
					continue
				}
				args := a.axes
				name := "reduce/" + r.name + "/" + a.name
				if keep {
					args = append(append([]int{}, a.axes...), tensor.KeepDim)
					name += "/keepdim"
				}
				torchArgs := a.torch
				if a.axes == nil && (r.name == "max" || r.name == "min") {
					torchArgs = "dim=(0,1,2)"
				}
				cs = append(cs, Case{Name: name, Family: "reduce", Inputs: []In{F(3, 4, 5)},
					Fw: func(x []*T) *T { return r.fw(x[0], args...) }, Torch: r.torch(torchArgs, keep)})
			}
		}
		cs = append(cs, Case{Name: "reduce/" + r.name + "/permuted", Family: "reduce", Inputs: []In{F(5, 3)},
			Fw: func(x []*T) *T { return r.fw(x[0].Permute(1, 0), 1) }, Torch: strings.Replace(r.torch("dim=1", false), "x0", "x0.permute(1,0)", 1)})
		cs = append(cs, Case{Name: "reduce/" + r.name + "/float16", Family: "reduce", Inputs: []In{D(dtype.Float16, 4, 6)},
			Fw: func(x []*T) *T { return r.fw(x[0], 1) }, Torch: r.torch("dim=1", false)})
	}
	// Ties make max's gradient split; PyTorch's amax shares it evenly.
	cs = append(cs, Case{Name: "reduce/max/ties", Family: "reduce", Inputs: []In{F(3, 8)},
		Fw: func(x []*T) *T { return x[0].Mul(2).Cast(dtype.Int32).Cast(dtype.Float32).Max(1) }, Torch: "(x0*2).int().float().amax(1)"})
	for _, d := range []dtype.DType{dtype.Int32, dtype.Int64, dtype.Uint8, dtype.Bool} {
		cs = append(cs, Case{Name: "reduce/max/" + d.String(), Family: "reduce", FwdOnly: true, Inputs: []In{D(d, 3, 5)},
			Fw: func(x []*T) *T { return x[0].Max(1) }, Torch: "x0.amax(1)"})
	}
	cs = append(cs, Case{Name: "reduce/sum/zero-size", Family: "reduce", Inputs: []In{F(0, 4)},
		Fw: func(x []*T) *T { return x[0].Sum(0) }, Torch: "x0.sum(0)"})
	for _, ax := range []int{0, 1, -1} {
		for _, keep := range []bool{false, true} {
			args, name, kw := []int{ax}, fmt.Sprintf("axis%d", ax), ""
			if keep {
				args, name, kw = []int{ax, tensor.KeepDim}, name+"/keepdim", ", keepdim=True"
			}
			cs = append(cs, Case{Name: "reduce/argmax/" + name, Family: "reduce", FwdOnly: true, Inputs: []In{F(4, 6)},
				Fw: func(x []*T) *T { return x[0].Argmax(args...) }, Torch: fmt.Sprintf("x0.argmax(%d%s)", ax, kw)})
			cs = append(cs, Case{Name: "reduce/argmin/" + name, Family: "reduce", FwdOnly: true, Inputs: []In{F(4, 6)},
				Fw: func(x []*T) *T { return x[0].Argmin(args...) }, Torch: fmt.Sprintf("x0.argmin(%d%s)", ax, kw)})
		}
		cs = append(cs, Case{Name: fmt.Sprintf("reduce/softmax/axis%d", ax), Family: "softmax", Inputs: []In{F(3, 4, 5)},
			Fw: func(x []*T) *T { return x[0].Softmax(ax) }, Torch: fmt.Sprintf("x0.softmax(%d)", ax)})
		cs = append(cs, Case{Name: fmt.Sprintf("reduce/log_softmax/axis%d", ax), Family: "softmax", Inputs: []In{F(3, 4, 5)},
			Fw: func(x []*T) *T { return x[0].LogSoftmax(ax) }, Torch: fmt.Sprintf("x0.log_softmax(%d)", ax)})
	}
	cs = append(cs, Case{Name: "reduce/argmax/all", Family: "reduce", FwdOnly: true, Inputs: []In{F(4, 6)},
		Fw: func(x []*T) *T { return x[0].Argmax() }, Torch: "x0.argmax()"})
	cs = append(cs, Case{Name: "reduce/argmax/ties", Family: "reduce", FwdOnly: true, Inputs: []In{D(dtype.Int32, 4, 6).R(0, 3)},
		Fw: func(x []*T) *T { return x[0].Argmax(1) }, Torch: "x0.argmax(1)"})
	cs = append(cs, Case{Name: "reduce/softmax/float16", Family: "softmax", Inputs: []In{D(dtype.Float16, 4, 8)},
		Fw: func(x []*T) *T { return x[0].Softmax(-1) }, Torch: "x0.softmax(-1)"})
	return cs
}

func movementCases() []Case {
	mv := func(name string, in []int, fw func(*T) *T, torch string) Case {
		return Case{Name: "movement/" + name, Family: "movement", Inputs: []In{F(in...)}, Fw: func(x []*T) *T { return fw(x[0]) }, Torch: torch}
	}
	return []Case{
		mv("reshape", []int{2, 3, 4}, func(x *T) *T { return x.Reshape(6, 4) }, "x0.reshape(6,4)"),
		mv("reshape/infer", []int{2, 3, 4}, func(x *T) *T { return x.Reshape(4, -1) }, "x0.reshape(4,-1)"),
		mv("reshape/scalar", []int{1, 1}, func(x *T) *T { return x.Reshape() }, "x0.reshape(())"),
		mv("reshape/after_permute", []int{2, 3, 4}, func(x *T) *T { return x.Permute(2, 0, 1).Reshape(4, 6) }, "x0.permute(2,0,1).reshape(4,6)"),
		mv("permute", []int{2, 3, 4}, func(x *T) *T { return x.Permute(2, 0, 1) }, "x0.permute(2,0,1)"),
		mv("permute/negative", []int{2, 3, 4}, func(x *T) *T { return x.Permute(-1, 1, 0) }, "x0.permute(-1,1,0)"),
		mv("transpose", []int{2, 3, 4}, func(x *T) *T { return x.Transpose(0, 2) }, "x0.transpose(0,2)"),
		mv("T", []int{3, 5}, func(x *T) *T { return x.T() }, "x0.T"),
		mv("expand", []int{3, 1}, func(x *T) *T { return x.Expand(3, 5) }, "x0.expand(3,5)"),
		mv("expand/new_dims", []int{4}, func(x *T) *T { return x.Expand(2, 3, 4) }, "x0.expand(2,3,4)"),
		mv("expand/minus_one", []int{3, 1}, func(x *T) *T { return x.Expand(-1, 5) }, "x0.expand(-1,5)"),
		mv("pad", []int{3, 4}, func(x *T) *T { return x.Pad([][2]int{{1, 2}, {0, 3}}) }, "F.pad(x0,(0,3,1,2))"),
		mv("pad/value", []int{3, 4}, func(x *T) *T { return x.Pad([][2]int{{1, 0}, {2, 1}}, 1.5) }, "F.pad(x0,(2,1,1,0),value=1.5)"),
		mv("pad/negative", []int{5, 6}, func(x *T) *T { return x.Pad([][2]int{{-1, 0}, {2, -2}}) }, "F.pad(x0,(2,-2,-1,0))"),
		mv("shrink", []int{5, 6}, func(x *T) *T { return x.Shrink([][2]int{{1, 4}, {0, 5}}) }, "x0[1:4,0:5]"),
		mv("slice", []int{5, 6}, func(x *T) *T { return x.Slice(1, 2, 5) }, "x0[:,2:5]"),
		mv("slice/negative", []int{5, 6}, func(x *T) *T { return x.Slice(-1, -4, -1) }, "x0[:,-4:-1]"),
		mv("flip", []int{3, 4, 5}, func(x *T) *T { return x.Flip(0, 2) }, "x0.flip(0,2)"),
		mv("flip/negative", []int{3, 4}, func(x *T) *T { return x.Flip(-1) }, "x0.flip(-1)"),
		mv("squeeze", []int{3, 1, 4, 1}, func(x *T) *T { return x.Squeeze() }, "x0.squeeze()"),
		mv("squeeze/axis", []int{3, 1, 4, 1}, func(x *T) *T { return x.Squeeze(1) }, "x0.squeeze(1)"),
		mv("unsqueeze", []int{3, 4}, func(x *T) *T { return x.Unsqueeze(1) }, "x0.unsqueeze(1)"),
		mv("unsqueeze/negative", []int{3, 4}, func(x *T) *T { return x.Unsqueeze(-1) }, "x0.unsqueeze(-1)"),
		mv("flatten", []int{2, 3, 4}, func(x *T) *T { return x.Flatten() }, "x0.flatten()"),
		mv("flatten/from1", []int{2, 3, 4}, func(x *T) *T { return x.Flatten(1) }, "x0.flatten(1)"),
		mv("repeat", []int{2, 3}, func(x *T) *T { return x.Repeat(2, 3) }, "x0.repeat(2,3)"),
		mv("repeat/new_dims", []int{2, 3}, func(x *T) *T { return x.Repeat(2, 1, 2) }, "x0.repeat(2,1,2)"),
		mv("chain", []int{4, 6}, func(x *T) *T {
			return x.Flip(1).Pad([][2]int{{1, 1}, {0, 0}}).Permute(1, 0).Slice(0, 1, 5).Reshape(2, 2, 6)
		},
			"F.pad(x0.flip(1),(0,0,1,1)).permute(1,0)[1:5].reshape(2,2,6)"),
		mv("contiguous", []int{4, 6}, func(x *T) *T { return x.T().Contiguous().Mul(2) }, "x0.T.contiguous()*2"),
		{Name: "movement/cat", Family: "movement", Inputs: []In{F(2, 3), F(4, 3), F(1, 3)},
			Fw: func(x []*T) *T { return x[0].Cat(0, x[1], x[2]) }, Torch: "torch.cat([x0,x1,x2],0)"},
		{Name: "movement/cat/axis1", Family: "movement", Inputs: []In{F(2, 3), F(2, 1)},
			Fw: func(x []*T) *T { return x[0].Cat(-1, x[1]) }, Torch: "torch.cat([x0,x1],-1)"},
		{Name: "movement/cat/noncontig", Family: "movement", Inputs: []In{F(3, 2), F(2, 3)},
			Fw: func(x []*T) *T { return x[0].T().Cat(0, x[1].Flip(0)) }, Torch: "torch.cat([x0.T,x1.flip(0)],0)"},
		{Name: "movement/stack", Family: "movement", Inputs: []In{F(2, 3), F(2, 3)},
			Fw: func(x []*T) *T { return x[0].Stack(0, x[1]) }, Torch: "torch.stack([x0,x1],0)"},
		{Name: "movement/stack/last", Family: "movement", Inputs: []In{F(2, 3), F(2, 3), F(2, 3)},
			Fw: func(x []*T) *T { return x[0].Stack(-1, x[1], x[2]) }, Torch: "torch.stack([x0,x1,x2],-1)"},
	}
}

func matmulCases() []Case {
	var cs []Case
	for _, p := range [][2][]int{
		{{5}, {5}}, {{3, 5}, {5}}, {{5}, {5, 4}}, {{3, 5}, {5, 4}}, {{2, 3, 5}, {2, 5, 4}}, {{2, 3, 5}, {5, 4}},
		{{3, 5}, {2, 5, 4}}, {{2, 1, 3, 5}, {4, 5, 2}}, {{1, 7}, {7, 1}}, {{16, 32}, {32, 8}},
	} {
		cs = append(cs, Case{Name: "matmul/" + shapeName(p[0]) + "@" + shapeName(p[1]), Family: "matmul", Inputs: []In{F(p[0]...), F(p[1]...)},
			Fw: func(x []*T) *T { return x[0].Matmul(x[1]) }, Torch: "x0 @ x1"})
	}
	cs = append(cs,
		Case{Name: "matmul/transposed", Family: "matmul", Inputs: []In{F(5, 3), F(4, 5)},
			Fw: func(x []*T) *T { return x[0].T().Matmul(x[1].T()) }, Torch: "x0.T @ x1.T"},
		Case{Name: "matmul/float16", Family: "matmul", Inputs: []In{D(dtype.Float16, 4, 8), D(dtype.Float16, 8, 3)},
			Fw: func(x []*T) *T { return x[0].Matmul(x[1]) }, Torch: "x0 @ x1", Tol: Tol{Atol: 5e-2, Rtol: 5e-2, GradAtol: 1e-1, GradRtol: 1e-1}},
		Case{Name: "matmul/int32", Family: "matmul", FwdOnly: true, Inputs: []In{D(dtype.Int32, 3, 4), D(dtype.Int32, 4, 2)},
			Fw: func(x []*T) *T { return x[0].Matmul(x[1]) }, Torch: "x0 @ x1"},
		Case{Name: "matmul/dot", Family: "matmul", Inputs: []In{F(6), F(6)},
			Fw: func(x []*T) *T { return x[0].Dot(x[1]) }, Torch: "x0.dot(x1)"},
	)
	return cs
}

func miscCases() []Case {
	var cs []Case
	for _, p := range [][3][]int{{{3, 4}, {3, 4}, {3, 4}}, {{3, 1}, {1, 4}, {4}}, {{4}, {3, 4}, {}}, {{2, 1, 4}, {3, 1}, {1}}} {
		cs = append(cs, Case{Name: "where/" + shapeName(p[0]) + "_" + shapeName(p[1]) + "_" + shapeName(p[2]), Family: "where",
			Inputs: []In{D(dtype.Bool, p[0]...), F(p[1]...), F(p[2]...)},
			Fw:     func(x []*T) *T { return x[0].Where(x[1], x[2]) }, Torch: "torch.where(x0, x1, x2)"})
	}
	cs = append(cs,
		Case{Name: "where/number", Family: "where", Inputs: []In{F(3, 4)},
			Fw: func(x []*T) *T { return x[0].Gt(0).Where(x[0], 0.25) }, Torch: "torch.where(x0 > 0, x0, torch.tensor(0.25))"},
		Case{Name: "where/cond_from_float", Family: "where", Inputs: []In{F(3, 4), F(3, 4)},
			Fw: func(x []*T) *T { return x[0].Lt(x[1]).Where(x[0].Mul(x[1]), x[1]) }, Torch: "torch.where(x0 < x1, x0*x1, x1)"},
		Case{Name: "index_select/rows", Family: "index_select", Inputs: []In{F(5, 3), D(dtype.Int64, 4).R(0, 5).NG()},
			Fw: func(x []*T) *T { return x[0].IndexSelect(0, x[1]) }, Torch: "torch.index_select(x0, 0, x1)"},
		Case{Name: "index_select/middle_axis", Family: "index_select", Inputs: []In{F(2, 5, 3), D(dtype.Int32, 6).R(0, 5).NG()},
			Fw: func(x []*T) *T { return x[0].IndexSelect(1, x[1]) }, Torch: "torch.index_select(x0, 1, x1.long())"},
		Case{Name: "index_select/2d_indices", Family: "index_select", Inputs: []In{F(4, 6), D(dtype.Int64, 2, 3).R(0, 6).NG()},
			Fw: func(x []*T) *T { return x[0].IndexSelect(1, x[1]) }, Torch: "x0[:, x1]"},
		Case{Name: "index_select/repeated_few_of_many", Family: "index_select", Inputs: []In{F(9, 3), D(dtype.Int64, 2, 3).R(0, 4).NG()},
			Fw: func(x []*T) *T { return x[0].IndexSelect(0, x[1]) }, Torch: "x0[x1]"},
		Case{Name: "index_select/middle_axis_few_of_many", Family: "index_select", Inputs: []In{F(2, 8, 3), D(dtype.Int32, 5).R(0, 3).NG()},
			Fw: func(x []*T) *T { return x[0].IndexSelect(1, x[1]) }, Torch: "torch.index_select(x0, 1, x1.long())"},
		Case{Name: "muladd/3x4", Family: "muladd", Inputs: []In{F(3, 4), F(3, 4), F(3, 4)},
			Fw: func(x []*T) *T { return x[0].MulAdd(x[1], x[2]) }, Torch: "torch.addcmul(x2, x0, x1)"},
		Case{Name: "muladd/broadcast", Family: "muladd", Inputs: []In{F(3, 1), F(4), F(2, 1, 1)},
			Fw: func(x []*T) *T { return x[0].MulAdd(x[1], x[2]) }, Torch: "torch.addcmul(x2, x0, x1)"},
		Case{Name: "muladd/numbers", Family: "muladd", Inputs: []In{F(3, 4)},
			Fw: func(x []*T) *T { return x[0].MulAdd(3, -1) }, Torch: "x0*3 - 1"},
	)
	casts := []struct{ from, to dtype.DType }{
		{dtype.Float32, dtype.Int32}, {dtype.Float32, dtype.Int64}, {dtype.Float32, dtype.Bool}, {dtype.Float32, dtype.Float16},
		{dtype.Float32, dtype.BFloat16}, {dtype.Int32, dtype.Float32}, {dtype.Int32, dtype.Int8}, {dtype.Int64, dtype.Int32},
		{dtype.Bool, dtype.Float32}, {dtype.Uint8, dtype.Float32}, {dtype.Float16, dtype.Float32}, {dtype.Int8, dtype.Int64},
		{dtype.Float32, dtype.Uint8},
	}
	for _, c := range casts {
		lo, hi := -100.0, 100.0
		if c.to == dtype.Uint8 || c.from == dtype.Uint8 {
			lo = 0
		}
		cs = append(cs, Case{Name: "cast/" + c.from.String() + "_to_" + c.to.String(), Family: "cast", FwdOnly: !c.from.IsFloat() || !c.to.IsFloat(),
			Inputs: []In{D(c.from, 4, 5).R(lo, hi)}, Fw: func(x []*T) *T { return x[0].Cast(c.to) },
			Torch: "x0.to(torch." + c.to.String() + ")"})
	}
	// Expressions that mix many ops, so fusion across them is checked too.
	cs = append(cs,
		Case{Name: "fused/product_of_six", Family: "fused", Inputs: []In{F(4, 5), F(4, 5), F(4, 5), F(4, 5), F(4, 5), F(4, 5)},
			Fw: func(x []*T) *T { return x[0].Mul(x[1]).Mul(x[2]).Mul(x[3]).Mul(x[4]).Mul(x[5]) }, Torch: "x0*x1*x2*x3*x4*x5"},
		Case{Name: "fused/mul_add", Family: "fused", Inputs: []In{F(8, 9), F(8, 9), F(9)},
			Fw: func(x []*T) *T { return x[0].Mul(x[1]).Add(x[2]) }, Torch: "x0*x1+x2"},
		Case{Name: "fused/normalize", Family: "fused", Inputs: []In{F(6, 10)},
			Fw: func(x []*T) *T {
				m := x[0].Mean(1, tensor.KeepDim)
				return x[0].Sub(m).Div(x[0].Var(1, tensor.KeepDim).Add(1e-5).Sqrt())
			}, Torch: "(x0 - x0.mean(1, keepdim=True)) / (x0.var(1, keepdim=True) + 1e-5).sqrt()"},
		Case{Name: "fused/reduce_twice", Family: "fused", Inputs: []In{F(5, 6)},
			Fw: func(x []*T) *T { return x[0].Sum(1).Exp().Sum() }, Torch: "x0.sum(1).exp().sum()"},
		Case{Name: "fused/shared_input", Family: "fused", Inputs: []In{F(4, 4)},
			Fw: func(x []*T) *T { s := x[0].Sigmoid(); return s.Mul(s.T()).Add(s.Sum(0)) }, Torch: "x0.sigmoid() * x0.sigmoid().T + x0.sigmoid().sum(0)"},
		Case{Name: "fused/mse", Family: "fused", Inputs: []In{F(16), F(16)},
			Fw: func(x []*T) *T { d := x[0].Sub(x[1]); return d.Mul(d).Mean() }, Torch: "((x0-x1)**2).mean()"},
	)
	return cs
}

// errorCases are inputs PyTorch refuses; the framework must refuse them too.
func errorCases() []Case {
	e := func(name string, in []In, fw func(x []*T) *T, torch string) Case {
		return Case{Name: "error/" + name, Family: "error", Inputs: in, Fw: fw, Torch: torch, FwdOnly: true}
	}
	return []Case{
		e("add_shapes", []In{F(3, 4), F(3, 5)}, func(x []*T) *T { return x[0].Add(x[1]) }, "x0 + x1"),
		e("matmul_inner", []In{F(3, 4), F(5, 2)}, func(x []*T) *T { return x[0].Matmul(x[1]) }, "x0 @ x1"),
		e("matmul_batch", []In{F(2, 3, 4), F(3, 4, 2)}, func(x []*T) *T { return x[0].Matmul(x[1]) }, "x0 @ x1"),
		e("reshape_size", []In{F(3, 4)}, func(x []*T) *T { return x[0].Reshape(5, 3) }, "x0.reshape(5,3)"),
		e("permute_dup", []In{F(3, 4)}, func(x []*T) *T { return x[0].Permute(0, 0) }, "x0.permute(0,0)"),
		e("sum_axis", []In{F(3, 4)}, func(x []*T) *T { return x[0].Sum(2) }, "x0.sum(2)"),
		e("expand_shape", []In{F(3, 2)}, func(x []*T) *T { return x[0].Expand(3, 4) }, "x0.expand(3,4)"),
		e("cat_shapes", []In{F(2, 3), F(2, 4)}, func(x []*T) *T { return x[0].Cat(0, x[1]) }, "torch.cat([x0,x1],0)"),
		e("where_shapes", []In{D(dtype.Bool, 3), F(4), F(3)}, func(x []*T) *T { return x[0].Where(x[1], x[2]) }, "torch.where(x0,x1,x2)"),
		e("squeeze_axis", []In{F(3, 4)}, func(x []*T) *T { return x[0].Unsqueeze(5) }, "x0.unsqueeze(5)"),
		e("flip_axis", []In{F(3, 4)}, func(x []*T) *T { return x[0].Flip(3) }, "x0.flip(3)"),
		e("matmul_scalar", []In{F(), F(3)}, func(x []*T) *T { return x[0].Matmul(x[1]) }, "x0 @ x1"),
	}
}
