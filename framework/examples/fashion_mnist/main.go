// Command fashion_mnist trains a small CNN on Fashion-MNIST (Debian's dataset-fashion-mnist
// package), shows a progress bar per epoch, evaluates on the test set and saves a
// safetensors checkpoint:
//
//	go run ./framework/examples/fashion_mnist -epochs 5 -batch 128 -device CPU
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/gradforge/gradforge/framework/datasets"
	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/nn"
	"github.com/gradforge/gradforge/framework/optim"
	"github.com/gradforge/gradforge/framework/state"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Net is the CNN: two 3×3 conv blocks with batch norm and max pooling, then two linear layers.
type Net struct {
	C1, C2   *nn.Conv2d
	B1, B2   *nn.BatchNorm
	FC1, FC2 *nn.Linear
}

// NewNet makes the model with PyTorch's default initialisation.
func NewNet() *Net {
	p := tensor.Window{Padding: []int{1}}
	return &Net{
		C1: nn.NewConv2d(1, 16, 3, p, false), B1: nn.NewBatchNorm(16),
		C2: nn.NewConv2d(16, 32, 3, p, false), B2: nn.NewBatchNorm(32),
		FC1: nn.NewLinear(32*7*7, 128, true), FC2: nn.NewLinear(128, 10, true),
	}
}

// Forward maps images [b, 1, 28, 28] to logits [b, 10].
func (n *Net) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = nn.MaxPool2d(n.B1.Forward(n.C1.Forward(x)).Relu(), 2, tensor.Window{})
	x = nn.MaxPool2d(n.B2.Forward(n.C2.Forward(x)).Relu(), 2, tensor.Window{})
	return n.FC2.Forward(n.FC1.Forward(x.Flatten(1)).Relu())
}

// Stats are one epoch's numbers.
type Stats struct {
	Loss, Acc float64
	Samples   int
	Took      time.Duration
}

// TrainEpoch runs one epoch (or maxSteps batches when > 0) and reports mean loss and accuracy.
func TrainEpoch(net *Net, opt optim.Optimizer, l *datasets.Loader, maxSteps int, progress func(step, total int, s Stats)) (Stats, error) {
	nn.Train(net, true)
	l.Reset()
	var st Stats
	start := time.Now()
	total := l.Len()
	if maxSteps > 0 {
		total = min(total, maxSteps)
	}
	for step := 0; step < total; step++ {
		x, y, err := l.Next()
		if errors.Is(err, datasets.ErrDone) {
			break
		}
		opt.ZeroGrad()
		logits := net.Forward(x)
		loss := nn.CrossEntropy(logits, y, 0)
		acc := nn.Accuracy(logits.Detach(), y)
		loss.Backward()
		extra := []*tensor.Tensor{loss, acc, net.B1.RunningMean, net.B1.RunningVar, net.B2.RunningMean, net.B2.RunningVar}
		if err := opt.Step(extra...); err != nil {
			return st, err
		}
		lv, _ := loss.Item()
		av, _ := acc.Item()
		b := y.Shape()[0]
		st.Loss += lv * float64(b)
		st.Acc += av * float64(b)
		st.Samples += b
		st.Took = time.Since(start)
		if progress != nil {
			progress(step+1, total, Stats{st.Loss / float64(st.Samples), st.Acc / float64(st.Samples), st.Samples, st.Took})
		}
	}
	if st.Samples > 0 {
		st.Loss /= float64(st.Samples)
		st.Acc /= float64(st.Samples)
	}
	return st, nil
}

// Evaluate reports accuracy over a whole set in evaluation mode.
func Evaluate(net *Net, s *datasets.Set, batch int) (float64, error) {
	nn.Train(net, false)
	l := &datasets.Loader{Set: s, Batch: batch}
	correct := 0.0
	for {
		x, y, err := l.Next()
		if errors.Is(err, datasets.ErrDone) {
			break
		}
		a, err := nn.Accuracy(net.Forward(x), y).Item()
		if err != nil {
			return 0, err
		}
		correct += a * float64(y.Shape()[0])
	}
	return correct / float64(s.N), nil
}

func bar(step, total int, s Stats) string {
	const w = 30
	done := w * step / total
	return fmt.Sprintf("\r[%s%s] %d/%d loss %.4f acc %.2f%% %.0f samples/s", strings.Repeat("=", done), strings.Repeat(" ", w-done),
		step, total, s.Loss, 100*s.Acc, float64(s.Samples)/s.Took.Seconds())
}

func main() {
	epochs := flag.Int("epochs", 5, "passes over the training set (5 reach 91.1% test accuracy with seed 0; 4 reached 90.7%, 3 89.98%)")
	batch := flag.Int("batch", 128, "batch size")
	lr := flag.Float64("lr", 1e-3, "Adam learning rate")
	device := flag.String("device", "", "device: CPU, CUDA or CL (default $DEVICE or CPU)")
	out := flag.String("out", "fashion_mnist.safetensors", "checkpoint file")
	steps := flag.Int("steps", 0, "stop each epoch after this many batches (0: whole epoch)")
	seed := flag.Uint64("seed", 0, "random seed")
	bench := flag.Int("bench", 0, "only time this many training steps on one random batch (compare: python3 torch_ref.py BATCH STEPS)")
	int8 := flag.Bool("int8", false, "after training, also evaluate with int8 weights")
	flag.Parse()
	if *device != "" {
		os.Setenv("DEVICE", *device)
	}
	if *bench > 0 {
		if err := benchSteps(*batch, *bench, *lr); err != nil {
			log.Fatal(err)
		}
		return
	}
	train, err := datasets.FashionMNIST("train")
	if err != nil {
		log.Fatal(err)
	}
	test, err := datasets.FashionMNIST("t10k")
	if err != nil {
		log.Fatal(err)
	}
	tensor.ManualSeed(*seed)
	net := NewNet()
	opt := optim.NewAdam(nn.Parameters(net), *lr)
	sched := optim.Cosine(*lr, *lr/20, *epochs)
	l := &datasets.Loader{Set: train, Batch: *batch, Shuffle: true}
	for e := range *epochs {
		opt.SetLR(sched(e))
		fmt.Printf("epoch %d/%d\n", e+1, *epochs)
		st, err := TrainEpoch(net, opt, l, *steps, func(step, total int, s Stats) { fmt.Print(bar(step, total, s)) })
		if err != nil {
			log.Fatal(err)
		}
		acc, err := Evaluate(net, test, 1000)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("\nepoch %d: train loss %.4f acc %.2f%%, test acc %.2f%%, %.1fs (%.0f samples/s)\n",
			e+1, st.Loss, 100*st.Acc, 100*acc, st.Took.Seconds(), float64(st.Samples)/st.Took.Seconds())
	}
	if err := state.SaveModel(*out, net, map[string]string{"model": "fashion_mnist cnn"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved", *out)
	if *int8 {
		if _, err := nn.QuantizeWeights(net, true); err != nil {
			log.Fatal(err)
		}
		acc, err := Evaluate(net, test, 1000)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("int8 weights (per-channel): test acc %.2f%%\n", 100*acc)
	}
}

// benchSteps times training steps on one fixed random batch, as torch_ref.py does.
func benchSteps(batch, steps int, lr float64) error {
	tensor.ManualSeed(0)
	net := NewNet()
	opt := optim.NewAdam(nn.Parameters(net), lr)
	x := tensor.Rand(batch, 1, 28, 28)
	y := tensor.Rand(batch).Mul(10).Cast(dtype.Int32)
	if err := tensor.Realize(x, y); err != nil {
		return err
	}
	var start time.Time
	for i := range steps + 3 {
		if i == 3 {
			start = time.Now()
		}
		opt.ZeroGrad()
		loss := nn.CrossEntropy(net.Forward(x), y, 0)
		loss.Backward()
		if err := opt.Step(loss, net.B1.RunningMean, net.B1.RunningVar, net.B2.RunningMean, net.B2.RunningVar); err != nil {
			return err
		}
		if _, err := loss.Item(); err != nil {
			return err
		}
	}
	took := time.Since(start).Seconds()
	fmt.Printf("gradforge %s batch=%d steps=%d: %.2f ms/step, %.0f samples/s, %.1f s per 60k-sample epoch\n",
		os.Getenv("DEVICE"), batch, steps, 1000*took/float64(steps), float64(batch*steps)/took, 60000/(float64(batch*steps)/took))
	return nil
}
