package testops

import (
	"fmt"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/nn"
	"github.com/gradforge/gradforge/framework/tensor"
)

func init() { extraCases = append(extraCases, nnCases()...) }

func nnCases() []Case {
	var cs []Case
	add := func(name string, in []In, fw func(x []*T) *T, torch string) {
		cs = append(cs, Case{Name: "nn/" + name, Family: "nn", Inputs: in, Fw: fw, Torch: torch})
	}
	add("linear", []In{F(4, 6), F(3, 6), F(3)}, func(x []*T) *T { return (&nn.Linear{Weight: x[1], Bias: x[2]}).Forward(x[0]) }, "F.linear(x0,x1,x2)")
	add("linear/batched_nobias", []In{F(2, 4, 6), F(3, 6)}, func(x []*T) *T { return (&nn.Linear{Weight: x[1]}).Forward(x[0]) }, "F.linear(x0,x1)")
	convs := []struct {
		name                     string
		x, w                     []int
		stride, pad, dil, groups int
	}{
		{"basic", []int{2, 3, 7, 7}, []int{4, 3, 3, 3}, 1, 0, 1, 1},
		{"stride2", []int{1, 3, 8, 8}, []int{2, 3, 3, 3}, 2, 0, 1, 1},
		{"padding", []int{1, 2, 5, 5}, []int{3, 2, 3, 3}, 1, 1, 1, 1},
		{"dilation", []int{1, 2, 9, 9}, []int{2, 2, 3, 3}, 1, 0, 2, 1},
		{"groups", []int{1, 4, 6, 6}, []int{6, 2, 3, 3}, 1, 1, 1, 2},
		{"depthwise", []int{2, 3, 6, 6}, []int{3, 1, 3, 3}, 1, 1, 1, 3},
		{"all", []int{1, 4, 10, 9}, []int{4, 2, 3, 2}, 2, 2, 2, 2},
		{"1x1", []int{2, 5, 4, 4}, []int{3, 5, 1, 1}, 1, 0, 1, 1},
	}
	for _, c := range convs {
		opt := tensor.Window{Stride: []int{c.stride}, Padding: []int{c.pad}, Dilation: []int{c.dil}, Groups: c.groups}
		add("conv2d/"+c.name, []In{F(c.x...), F(c.w...), F(c.w[0])},
			func(x []*T) *T { return (&nn.Conv2d{Weight: x[1], Bias: x[2], Opt: opt}).Forward(x[0]) },
			fmt.Sprintf("F.conv2d(x0,x1,x2,stride=%d,padding=%d,dilation=%d,groups=%d)", c.stride, c.pad, c.dil, c.groups))
	}
	add("conv2d/asym_padding", []In{F(1, 2, 5, 6), F(3, 2, 3, 3)},
		func(x []*T) *T { return x[0].Conv2d(x[1], nil, tensor.Window{Padding: []int{1, 0, 2, 1}}) }, "F.conv2d(F.pad(x0,(2,1,1,0)),x1)")
	pools := []struct {
		name           string
		k, stride, pad int
	}{{"k2", 2, 2, 0}, {"k3s1", 3, 1, 0}, {"k3s2p1", 3, 2, 1}, {"k2s1", 2, 1, 0}}
	for _, p := range pools {
		opt := tensor.Window{Stride: []int{p.stride}, Padding: []int{p.pad}}
		add("maxpool2d/"+p.name, []In{F(2, 3, 7, 7)}, func(x []*T) *T { return nn.MaxPool2d(x[0], p.k, opt) },
			fmt.Sprintf("F.max_pool2d(x0,%d,stride=%d,padding=%d)", p.k, p.stride, p.pad))
		add("avgpool2d/"+p.name, []In{F(2, 3, 7, 7)}, func(x []*T) *T { return nn.AvgPool2d(x[0], p.k, opt) },
			fmt.Sprintf("F.avg_pool2d(x0,%d,stride=%d,padding=%d)", p.k, p.stride, p.pad))
	}
	add("batchnorm2d/train", []In{F(4, 3, 5, 5), F(3), F(3)}, func(x []*T) *T {
		bn := nn.NewBatchNorm(3)
		bn.Weight, bn.Bias = x[1], x[2]
		return bn.Forward(x[0])
	}, "F.batch_norm(x0,torch.zeros(3),torch.ones(3),x1,x2,training=True)")
	add("batchnorm1d/train", []In{F(8, 4), F(4), F(4)}, func(x []*T) *T {
		bn := nn.NewBatchNorm(4)
		bn.Weight, bn.Bias = x[1], x[2]
		return bn.Forward(x[0])
	}, "F.batch_norm(x0,torch.zeros(4),torch.ones(4),x1,x2,training=True)")
	add("batchnorm2d/eval", []In{F(2, 3, 4, 4), F(3).NG(), F(3).R(0.5, 2).NG(), F(3), F(3)}, func(x []*T) *T {
		bn := &nn.BatchNorm{Weight: x[3], Bias: x[4], RunningMean: x[1], RunningVar: x[2], Eps: 1e-5}
		return bn.Forward(x[0])
	}, "F.batch_norm(x0,x1,x2,x3,x4,training=False)")
	add("layernorm", []In{F(3, 4, 8), F(8), F(8)}, func(x []*T) *T {
		return (&nn.LayerNorm{Weight: x[1], Bias: x[2], Eps: 1e-5, Dims: 1}).Forward(x[0])
	}, "F.layer_norm(x0,(8,),x1,x2)")
	add("layernorm/2d", []In{F(3, 4, 5), F(4, 5), F(4, 5)}, func(x []*T) *T {
		return (&nn.LayerNorm{Weight: x[1], Bias: x[2], Eps: 1e-5, Dims: 2}).Forward(x[0])
	}, "F.layer_norm(x0,(4,5),x1,x2)")
	add("rmsnorm", []In{F(3, 8), F(8)}, func(x []*T) *T { return (&nn.RMSNorm{Weight: x[1], Eps: 1e-6}).Forward(x[0]) },
		"x0 * torch.rsqrt(x0.pow(2).mean(-1, keepdim=True) + 1e-6) * x1")
	add("embedding", []In{D(dtype.Int64, 2, 5).R(0, 10).NG(), F(10, 4)}, func(x []*T) *T { return (&nn.Embedding{Weight: x[1]}).Forward(x[0]) },
		"F.embedding(x0,x1)")
	add("embedding/int32", []In{D(dtype.Int32, 7).R(0, 6).NG(), F(6, 3)}, func(x []*T) *T { return (&nn.Embedding{Weight: x[1]}).Forward(x[0]) },
		"F.embedding(x0.long(),x1)")
	add("embedding/large_vocab", []In{D(dtype.Int64, 3, 4).R(0, 5).NG(), F(20, 4)}, func(x []*T) *T { return (&nn.Embedding{Weight: x[1]}).Forward(x[0]) },
		"F.embedding(x0,x1)")
	add("attention", []In{F(2, 5, 8), F(2, 6, 8), F(2, 6, 4)}, func(x []*T) *T { return nn.ScaledDotProductAttention(x[0], x[1], x[2], nil, false) },
		"torch.softmax(x0 @ x1.transpose(-1,-2) / 8**0.5, -1) @ x2")
	add("attention/causal", []In{F(1, 2, 5, 4), F(1, 2, 5, 4), F(1, 2, 5, 4)}, func(x []*T) *T { return nn.ScaledDotProductAttention(x[0], x[1], x[2], nil, true) },
		"torch.softmax((x0 @ x1.transpose(-1,-2) / 2.0).masked_fill(torch.ones(5,5,dtype=torch.bool).triu(1), float('-inf')), -1) @ x2")
	add("attention/mask", []In{F(2, 3, 4), F(2, 3, 4), F(2, 3, 4), F(3, 3).NG()}, func(x []*T) *T { return nn.ScaledDotProductAttention(x[0], x[1], x[2], x[3], false) },
		"torch.softmax(x0 @ x1.transpose(-1,-2) / 2.0 + x3, -1) @ x2")
	add("cross_entropy", []In{F(6, 5), D(dtype.Int64, 6).R(0, 5).NG()}, func(x []*T) *T { return nn.CrossEntropy(x[0], x[1], 0) }, "F.cross_entropy(x0,x1)")
	add("cross_entropy/smoothing", []In{F(6, 5), D(dtype.Int64, 6).R(0, 5).NG()}, func(x []*T) *T { return nn.CrossEntropy(x[0], x[1], 0.1) },
		"F.cross_entropy(x0,x1,label_smoothing=0.1)")
	add("cross_entropy/large_logits", []In{F(4, 10).R(-80, 80), D(dtype.Int32, 4).R(0, 10).NG()}, func(x []*T) *T { return nn.CrossEntropy(x[0], x[1], 0) },
		"F.cross_entropy(x0,x1.long())")
	add("mse", []In{F(4, 5), F(4, 5)}, func(x []*T) *T { return nn.MSE(x[0], x[1]) }, "F.mse_loss(x0,x1)")
	add("bce_with_logits", []In{F(4, 5).R(-30, 30), F(4, 5).R(0, 1)}, func(x []*T) *T { return nn.BCEWithLogits(x[0], x[1]) },
		"F.binary_cross_entropy_with_logits(x0,x1)")
	return cs
}
