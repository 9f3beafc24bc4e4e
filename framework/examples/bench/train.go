package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gradforge/gradforge/framework/jit"
	"github.com/gradforge/gradforge/framework/nn"
	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/tensor"
)

// cnn is the Fashion-MNIST model both sides train (torchref.py builds the same):
// conv 1→32 3×3, ReLU, max-pool 2; conv 32→64 3×3, ReLU, max-pool 2; linear 1600→128, ReLU;
// linear 128→10.
type cnn struct {
	C1, C2 *nn.Conv2d
	L1, L2 *nn.Linear
}

func (m *cnn) forward(x *tensor.Tensor) *tensor.Tensor {
	h := nn.MaxPool2d(m.C1.Forward(x).Relu(), 2, tensor.Window{})
	h = nn.MaxPool2d(m.C2.Forward(h).Relu(), 2, tensor.Window{})
	h = h.Reshape(h.Shape()[0], -1)
	return m.L2.Forward(m.L1.Forward(h).Relu())
}

// TrainStep times one SGD step of the CNN at batch 512 (64 with Small) on random images:
// forward, cross-entropy, backward and the parameter update, realized together.
func TrainStep(dev *runtime.CUDA, o Options, sz Sizes) Result {
	return timeTraining(dev, o, "gradforge", func(batch int) (func() error, func() *tensor.Tensor) {
		return newTrainStep(batch)
	})
}

// TrainStepJIT times the same step through framework/jit: its kernels are recorded into a
// CUDA graph once and replayed, so no step builds, schedules or launches anything on the
// host. The loss is checked to fall across replayed steps only.
func TrainStepJIT(dev *runtime.CUDA, o Options, sz Sizes) Result {
	return timeTraining(dev, o, "gradforge (JIT)", func(batch int) (func() error, func() *tensor.Tensor) {
		tr := newTrainer(batch)
		f := jit.New(func(in ...*tensor.Tensor) *tensor.Tensor { return tr.step(in[0], in[1]) }).Updates(tr.params...)
		var l *tensor.Tensor
		step := func() (err error) {
			l, err = f.Call(tr.x, tr.y)
			return err
		}
		for range 2 { // run directly, then record
			if err := step(); err != nil {
				panic(err)
			}
		}
		if !f.Replaying() {
			panic(fmt.Errorf("jit did not record the step: %w", f.Err()))
		}
		return step, func() *tensor.Tensor { return l }
	})
}

// timeTraining times the step build returns at batch 512 (64 with Small), on CUDA, and checks
// that the loss fell from its first run to its last.
func timeTraining(dev *runtime.CUDA, o Options, impl string, build func(batch int) (func() error, func() *tensor.Tensor)) Result {
	batch := 512
	if o.Small {
		batch = 64
	}
	r := Result{Case: "train_step", Impl: impl, Note: fmt.Sprintf("batch %d", batch)}
	old, had := os.LookupEnv("DEVICE")
	os.Setenv("DEVICE", "CUDA") // layers and constants are made on the default device
	defer func() {
		if had {
			os.Setenv("DEVICE", old)
		} else {
			os.Unsetenv("DEVICE")
		}
	}()
	err := tensor.Try(func() {
		step, loss := build(batch)
		first := math.NaN()
		ms, err := median(max(10, o.Reps), func() (time.Duration, error) {
			t, err := dev.Time(step)
			if math.IsNaN(first) && err == nil {
				first, _ = loss().Item()
			}
			return t, err
		})
		if err != nil {
			panic(err)
		}
		last, err := loss().Item()
		if err != nil {
			panic(err)
		}
		if math.IsNaN(last) || !(last < first) {
			panic(fmt.Errorf("loss went from %v to %v on a fixed batch; training is broken", first, last))
		}
		r.Ms = ms
	})
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// trainer is the CNN, its parameters and a fixed random batch.
type trainer struct {
	m      *cnn
	params []*tensor.Tensor
	x, y   *tensor.Tensor
}

// newTrainer builds the CNN and a fixed random batch on the default device ($DEVICE).
func newTrainer(batch int) *trainer {
	m := &cnn{C1: nn.NewConv2d(1, 32, 3, tensor.Window{}, true), C2: nn.NewConv2d(32, 64, 3, tensor.Window{}, true),
		L1: nn.NewLinear(1600, 128, true), L2: nn.NewLinear(128, 10, true)}
	rng := rand.New(rand.NewPCG(1, 2))
	labels := make([]int32, batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(10))
	}
	x, y := tensor.Randn(batch, 1, 28, 28), tensor.FromSlice(labels, batch)
	params := nn.Parameters(m)
	// Realized here, the parameters are buffers in every step: the first step's kernels are
	// the later ones' (a JIT records the second step with no new kernel to compile).
	if err := tensor.Realize(append([]*tensor.Tensor{x, y}, params...)...); err != nil {
		panic(err)
	}
	return &trainer{m: m, params: params, x: x, y: y}
}

// step is one SGD step on images x with labels y: it assigns the updated parameters and
// returns the loss, all unrealized.
func (tr *trainer) step(x, y *tensor.Tensor) *tensor.Tensor {
	for _, p := range tr.params {
		p.Grad = nil
	}
	l := nn.CrossEntropy(tr.m.forward(x), y, 0)
	l.Backward()
	for _, p := range tr.params {
		p.Assign(p.Detach().Sub(p.Grad.Mul(0.01)))
	}
	return l
}

// newTrainStep returns a step that trains a new CNN on a fixed random batch, realizing the loss
// and the parameters together; loss is the last step's loss.
func newTrainStep(batch int) (step func() error, loss func() *tensor.Tensor) {
	tr := newTrainer(batch)
	var l *tensor.Tensor
	step = func() error {
		l = tr.step(tr.x, tr.y)
		return tensor.Realize(append([]*tensor.Tensor{l}, tr.params...)...)
	}
	return step, func() *tensor.Tensor { return l }
}
