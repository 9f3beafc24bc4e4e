package nn

import (
	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// CrossEntropy is the mean over the batch of -log softmax(logits)[target], with labels
// smoothed towards the uniform distribution by smoothing (0 for none), as PyTorch's
// cross_entropy. logits is [batch, classes]; target holds class ids [batch].
func CrossEntropy(logits, target *T, smoothing float64) *T {
	if logits.Ndim() != 2 || target.Ndim() != 1 || target.Shape()[0] != logits.Shape()[0] {
		panic(&tensor.Error{Op: "CrossEntropy", Msg: "want logits [batch, classes] and targets [batch]"})
	}
	c := logits.Shape()[1]
	logp := logits.LogSoftmax(1)
	onehot := target.Unsqueeze(1).Eq(arange(c, target).Cast(target.DType())).Cast(logp.DType())
	nll := logp.Mul(onehot).Sum(1).Neg()
	if smoothing == 0 {
		return nll.Mean()
	}
	smooth := logp.Mean(1).Neg()
	return nll.Mul(1 - smoothing).Add(smooth.Mul(smoothing)).Mean()
}

// MSE is the mean squared error.
func MSE(pred, target *T) *T { d := pred.Sub(target); return d.Mul(d).Mean() }

// BCEWithLogits is binary cross entropy on logits, computed stably:
// max(x,0) - x·y + log(1 + e^-|x|), averaged.
func BCEWithLogits(logits, target *T) *T {
	x, y := logits, target.Cast(dtype.Float32)
	return x.Relu().Sub(x.Mul(y)).Add(x.Abs().Neg().Exp().Add(1).Log()).Mean()
}

// Accuracy is the fraction of rows whose argmax equals the target.
func Accuracy(logits, target *T) *T {
	return logits.Argmax(1).Eq(target.Cast(dtype.Int64)).Cast(dtype.Float32).Mean()
}
