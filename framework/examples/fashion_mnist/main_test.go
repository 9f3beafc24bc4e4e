package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gradforge/gradforge/framework/datasets"
	"github.com/gradforge/gradforge/framework/nn"
	"github.com/gradforge/gradforge/framework/optim"
	"github.com/gradforge/gradforge/framework/state"
	"github.com/gradforge/gradforge/framework/tensor"
)

// TestTrainingSmoke trains the example's CNN for a short while on the real data and checks
// that it learns: test accuracy on 1,000 held-out images rises well above chance, and the
// checkpoint round-trips.
func TestTrainingSmoke(t *testing.T) {
	train, err := datasets.FashionMNIST("train")
	if err != nil {
		if os.Getenv("GRADFORGE_TEST_DATASETS") == "require" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	test, err := datasets.FashionMNIST("t10k")
	if err != nil {
		t.Fatal(err)
	}
	held := &datasets.Set{Images: test.Images[:1000*28*28], Labels: test.Labels[:1000], N: 1000, Shape: test.Shape}
	tensor.ManualSeed(1)
	net := NewNet()
	before, err := Evaluate(net, held, 500)
	if err != nil {
		t.Fatal(err)
	}
	opt := optim.NewAdam(nn.Parameters(net), 2e-3)
	l := &datasets.Loader{Set: train, Batch: 32, Shuffle: true}
	var first float64
	st, err := TrainEpoch(net, opt, l, 150, func(step, _ int, s Stats) {
		if step == 1 {
			first = s.Loss
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := Evaluate(net, held, 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss: first batch %.3f, mean over 150 steps %.3f; held-out accuracy %.1f%% → %.1f%%", first, st.Loss, 100*before, 100*after)
	if after < 0.65 || st.Loss > first-0.6 {
		t.Fatalf("did not learn: held-out accuracy %.3f (before %.3f), loss %.3f from %.3f", after, before, st.Loss, first)
	}
	path := filepath.Join(t.TempDir(), "cnn.safetensors")
	if err := state.SaveModel(path, net, nil); err != nil {
		t.Fatal(err)
	}
	again := NewNet()
	if err := state.LoadModel(path, again); err != nil {
		t.Fatal(err)
	}
	if acc, err := Evaluate(again, held, 500); err != nil || acc != after {
		t.Fatalf("reloaded model accuracy %.4f (err %v), saved one %.4f", acc, err, after)
	}
}
