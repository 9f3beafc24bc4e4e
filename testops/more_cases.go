package testops

import (
	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

func init() { extraCases = append(extraCases, moreCases()...) }

// moreCases covers the rest of the API: creation, bit-level ops, N-d windows.
func moreCases() []Case {
	c := func(name, family string, in []In, fw func(x []*T) *T, torch string, fwdOnly bool) Case {
		return Case{Name: name, Family: family, Inputs: in, Fw: fw, Torch: torch, FwdOnly: fwdOnly}
	}
	return []Case{
		c("unary/tan", "unary", []In{F(3, 4).R(-1.2, 1.2)}, func(x []*T) *T { return x[0].Tan() }, "x0.tan()", false),
		c("unary/not/bool", "integer", []In{D(dtype.Bool, 3, 4)}, func(x []*T) *T { return x[0].Not() }, "x0.logical_not()", true),
		c("unary/not/float", "integer", []In{F(3, 4).R(-1, 1)}, func(x []*T) *T { return x[0].Mul(2).Cast(dtype.Int32).Not() }, "(x0*2).int().logical_not()", true),
		c("cast/bitcast_f32_i32", "cast", []In{F(3, 4)}, func(x []*T) *T { return x[0].Bitcast(dtype.Int32) }, "x0.view(torch.int32)", true),
		c("cast/bitcast_i32_f32", "cast", []In{D(dtype.Int32, 5).R(1e8, 1e9)}, func(x []*T) *T { return x[0].Bitcast(dtype.Float32) }, "x0.view(torch.float32)", true),
		c("movement/broadcast_to", "movement", []In{F(3, 1)}, func(x []*T) *T { return x[0].BroadcastTo(2, 3, 4) }, "x0.broadcast_to((2,3,4))", false),
		c("movement/full_like", "creation", []In{F(2, 3)}, func(x []*T) *T { return x[0].FullLike(2.5).Add(x[0]) }, "torch.full_like(x0, 2.5) + x0", false),
		c("movement/ones_zeros_like", "creation", []In{F(2, 3)}, func(x []*T) *T { return x[0].OnesLike().Sub(x[0].ZerosLike()).Mul(x[0]) }, "(torch.ones_like(x0) - torch.zeros_like(x0)) * x0", false),
		c("creation/zeros", "creation", nil, func([]*T) *T { return tensor.Zeros(2, 3) }, "torch.zeros(2,3)", true),
		c("creation/ones", "creation", nil, func([]*T) *T { return tensor.Ones(4) }, "torch.ones(4)", true),
		c("creation/full", "creation", nil, func([]*T) *T { return tensor.Full(-1.5, 2, 2) }, "torch.full((2,2), -1.5)", true),
		c("creation/scalar", "creation", nil, func([]*T) *T { return tensor.Scalar(3) }, "torch.tensor(3.0)", true),
		c("creation/arange", "creation", nil, func([]*T) *T { return tensor.Arange(2, 11, 3) }, "torch.arange(2, 11, 3, dtype=torch.int32)", true),
		c("creation/arange_float", "creation", nil, func([]*T) *T { return tensor.Arange(0, 1, 0.25) }, "torch.arange(0, 1, 0.25)", true),
		c("creation/arange_down", "creation", nil, func([]*T) *T { return tensor.Arange(5, 0, -2) }, "torch.arange(5, 0, -2, dtype=torch.int32)", true),
		c("creation/eye", "creation", nil, func([]*T) *T { return tensor.Eye(4) }, "torch.eye(4)", true),
		c("conv/1d", "nn", []In{F(2, 3, 9), F(4, 3, 3), F(4)}, func(x []*T) *T {
			return x[0].Conv(x[1], x[2], tensor.Window{Stride: []int{2}, Padding: []int{1}})
		}, "F.conv1d(x0,x1,x2,stride=2,padding=1)", false),
		c("conv/3d", "nn", []In{F(1, 2, 4, 5, 5), F(3, 2, 2, 3, 3)}, func(x []*T) *T {
			return x[0].Conv(x[1], nil, tensor.Window{Padding: []int{0, 1, 1}})
		}, "F.conv3d(x0,x1,padding=(0,1,1))", false),
		c("pool/max1d", "nn", []In{F(2, 3, 10)}, func(x []*T) *T { return x[0].MaxPool([]int{3}, tensor.Window{Stride: []int{2}}) }, "F.max_pool1d(x0,3,stride=2)", false),
		c("pool/avg3d", "nn", []In{F(1, 2, 4, 4, 4)}, func(x []*T) *T { return x[0].AvgPool([]int{2, 2, 2}, tensor.Window{}) }, "F.avg_pool3d(x0,2)", false),
		c("pool/max_dilated", "nn", []In{F(1, 2, 9, 9)}, func(x []*T) *T {
			return x[0].MaxPool([]int{3, 3}, tensor.Window{Stride: []int{1}, Dilation: []int{2}})
		}, "F.max_pool2d(x0,3,stride=1,dilation=2)", false),
	}
}
