package state

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/nn"
	"github.com/gradforge/gradforge/framework/tensor"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	in := map[string]*tensor.Tensor{
		"f32":  tensor.FromSlice([]float32{1, -2.5, 3}, 3),
		"i64":  tensor.FromSlice([]int64{1 << 40, -7}, 2, 1),
		"u8":   tensor.FromSlice([]uint8{0, 255}, 2),
		"b":    tensor.FromSlice([]bool{true, false, true}, 3),
		"h":    tensor.FromSlice([]float32{0.5, 2}, 2).Cast(dtype.Float16),
		"bf":   tensor.FromSlice([]float32{0.5, -2}, 1, 2).Cast(dtype.BFloat16),
		"i8":   tensor.FromSlice([]int8{-128, 127}, 2),
		"i32":  tensor.FromSlice([]int32{5}, 1, 1, 1),
		"zero": tensor.Zeros(0, 3),
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := Save(path, in, map[string]string{"epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["epoch"] != "3" || len(out) != len(in) {
		t.Fatalf("metadata %v, %d tensors; want epoch 3 and %d", meta, len(out), len(in))
	}
	for name, want := range in {
		got := out[name]
		wb, _ := want.Data()
		gb, err := got.Data()
		if err != nil || !bytes.Equal(wb, gb) || got.DType() != want.DType() || !reflect.DeepEqual(got.Shape(), want.Shape()) {
			t.Errorf("%s: got %v %s %v, want %v %s %v (err %v)", name, got.Shape(), got.DType(), gb, want.Shape(), want.DType(), wb, err)
		}
	}
}

// file builds a safetensors file from a literal header and data.
func file(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestSafetensorsRefusesBadHeaders(t *testing.T) {
	eight := make([]byte, 8)
	for _, tc := range []struct {
		name, want string
		raw        []byte
	}{
		{"short file", "shorter", []byte{1, 2}},
		{"header past the end", "does not fit", append([]byte{255, 0, 0, 0, 0, 0, 0, 0}, '{', '}')},
		{"not json", "not a JSON object", file("[1,2]", nil)},
		{"unknown dtype", "unknown dtype", file(`{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, eight)},
		{"shape disagrees with range", "needs 4", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, eight)},
		{"gap", "without gaps", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight)},
		{"overlap", "without gaps", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight)},
		{"range past the data", "cover 16", file(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight)},
		{"trailing bytes", "cover 4", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight)},
		{"negative dim", "bad shape", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, eight)},
		{"bad metadata", "__metadata__", file(`{"__metadata__":{"a":1}}`, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(bytes.NewReader(tc.raw), int64(len(tc.raw)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(file(`{"__metadata__":{"k":"v"}}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := Decode(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			for _, x := range ts {
				if _, err := x.Data(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func FuzzDecodeNpy(f *testing.F) {
	f.Add([]byte("\x93NUMPY\x01\x00\x36\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }          \n\x00\x00\x80\x3f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if x, err := DecodeNpy(b); err == nil {
			x.Data()
		}
	})
}

type model struct {
	Conv *nn.Conv2d
	BN   *nn.BatchNorm
	FC   []*nn.Linear
}

func TestModelRoundTrip(t *testing.T) {
	tensor.ManualSeed(1)
	a := &model{Conv: nn.NewConv2d(1, 2, 3, tensor.Window{}, true), BN: nn.NewBatchNorm(2), FC: []*nn.Linear{nn.NewLinear(4, 3, true)}}
	b := &model{Conv: nn.NewConv2d(1, 2, 3, tensor.Window{}, true), BN: nn.NewBatchNorm(2), FC: []*nn.Linear{nn.NewLinear(4, 3, true)}}
	var names []string
	for _, n := range nn.State(a) {
		names = append(names, n.Name)
	}
	want := "conv.weight conv.bias bn.weight bn.bias bn.running_mean bn.running_var fc.0.weight fc.0.bias"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("state names %q, want %q", got, want)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := SaveModel(path, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := LoadModel(path, b); err != nil {
		t.Fatal(err)
	}
	wa, _ := a.FC[0].Weight.Float32s()
	wb, _ := b.FC[0].Weight.Float32s()
	if !reflect.DeepEqual(wa, wb) {
		t.Fatalf("loaded weights %v, saved %v", wb, wa)
	}
	if !b.FC[0].Weight.RequiresGrad {
		t.Fatal("a loaded parameter lost RequiresGrad")
	}
	small := &model{Conv: nn.NewConv2d(1, 3, 3, tensor.Window{}, true), BN: nn.NewBatchNorm(2), FC: []*nn.Linear{nn.NewLinear(4, 3, true)}}
	if err := LoadModel(path, small); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("loading into a different shape: %v, want a shape error", err)
	}
}

// TestNpyAgainstNumpy reads files numpy itself wrote.
func TestNpyAgainstNumpy(t *testing.T) {
	dir := t.TempDir()
	script := `
import numpy as np, sys
d = sys.argv[1]
np.save(d + '/f4.npy', np.arange(12, dtype=np.float32).reshape(3, 4) / 4)
np.save(d + '/f8.npy', np.arange(6, dtype=np.float64).reshape(2, 3) - 1.5)
np.save(d + '/i8.npy', np.array([[1, -2], [3, 1 << 40]], dtype=np.int64))
np.save(d + '/u1.npy', np.array([0, 7, 255], dtype=np.uint8))
np.save(d + '/b1.npy', np.array([True, False]))
np.save(d + '/fortran.npy', np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save(d + '/scalar.npy', np.float32(2.5))
`
	if out, err := exec.Command("/usr/bin/python3", "-c", script, dir).CombinedOutput(); err != nil {
		if os.Getenv("TESTOPS_REQUIRE_TORCH") == "1" {
			t.Fatalf("numpy: %v %s", err, out)
		}
		t.Skipf("numpy not available (%v): skipping", err)
	}
	for _, tc := range []struct {
		file  string
		shape []int
		want  []float64
	}{
		{"f4", []int{3, 4}, []float64{0, .25, .5, .75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75}},
		{"f8", []int{2, 3}, []float64{-1.5, -.5, .5, 1.5, 2.5, 3.5}},
		{"i8", []int{2, 2}, []float64{1, -2, 3, 1 << 40}},
		{"u1", []int{3}, []float64{0, 7, 255}},
		{"b1", []int{2}, []float64{1, 0}},
		{"fortran", []int{2, 3}, []float64{0, 1, 2, 3, 4, 5}},
		{"scalar", nil, []float64{2.5}},
	} {
		x, err := LoadNpy(filepath.Join(dir, tc.file+".npy"))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		got, err := x.Float64s()
		if err != nil || !reflect.DeepEqual(got, tc.want) || len(x.Shape()) != len(tc.shape) {
			t.Errorf("%s: %v %v (err %v), want %v %v", tc.file, x.Shape(), got, err, tc.shape, tc.want)
		}
	}
	if _, err := DecodeNpy([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<c8'}")); err == nil {
		t.Error("a header without shape parsed")
	}
}
