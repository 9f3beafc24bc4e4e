package bench

import (
	"fmt"
	"io"
	"math"
	goruntime "runtime"
	"runtime/debug"
	"time"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/runtime"
	"github.com/gradforge/gradforge/framework/schedule"
	"github.com/gradforge/gradforge/framework/tensor"
)

// Framework runs the cases through the tensor front end on CUDA: each timed run builds the
// lazy graph and realizes it (scheduling, code generation from the cache, launches), timed
// with device events around the whole realize, as PyTorch eager is timed around its calls.
// Results are checked against host arithmetic on sampled elements.
func Framework(dev *runtime.CUDA, o Options, sz Sizes) []Result {
	var out []Result
	reps := max(1, o.Reps/2)
	run := func(r Result, build func() *tensor.Tensor, check func(*tensor.Tensor) error) {
		// Set-up left gigabytes of host garbage; collect it and return it to the OS now, so
		// that the scavenger does not stall the timed realizes (seen: +1.2 ms each).
		goruntime.GC()
		debug.FreeOSMemory()
		var res *tensor.Tensor
		ms, err := median(reps, func() (time.Duration, error) {
			var t time.Duration
			err := tensor.Try(func() {
				var e error
				// The previous result is garbage; hand its memory back now, as PyTorch's
				// reference counting does, rather than when the collector gets to it.
				if res != nil && res.Node().Buf != nil {
					dev.Free(res.Node().Buf.Mem)
				}
				t, e = dev.Time(func() error {
					res = build()
					return res.Realize()
				})
				if e != nil {
					panic(e)
				}
			})
			return t, err
		})
		if err == nil {
			err = check(res)
		}
		r.Ms = ms
		if err != nil {
			r.Err = err.Error()
		}
		out = append(out, r)
		if err != nil {
			return
		}
		// The same realize with DEBUG=2 timing (each launch waits): the kernels' own device
		// time, without the host work between them.
		k := r
		k.Impl, k.Note = "gradforge kernels", "DEBUG=2 device time"
		debug, log := schedule.Debug, schedule.Log
		schedule.Debug, schedule.Log = 2, io.Discard
		k.Ms, err = median(reps, func() (time.Duration, error) {
			if res != nil && res.Node().Buf != nil {
				dev.Free(res.Node().Buf.Mem)
			}
			before := dev.KernelTime()
			var rerr error
			if err := tensor.Try(func() { res = build(); rerr = res.Realize() }); err != nil {
				return 0, err
			}
			return dev.KernelTime() - before, rerr
		})
		schedule.Debug, schedule.Log = debug, log
		if err != nil {
			k.Err = err.Error()
		}
		out = append(out, k)
	}
	// Inputs are made on the host once and uploaded; the host copies are dropped so the Go
	// heap stays small, as in a program that loads data and trains (the framework collects
	// garbage to free device memory, and a heap of gigabytes makes each collection slow).
	n := sz.N
	hostAt := func(i int) float32 { return fillValue(uint32(i), 12345) }
	x := onCUDA(tensor.FromSlice(fill(n, hostAt), n))

	// Six different inputs from one upload: a_k = x·(k+1)/8 + 1, realized on the device.
	var ins []*tensor.Tensor
	for k := range 6 {
		a := x.Mul(float64(k+1) / 8).Add(1)
		if err := a.Realize(); err != nil {
			out = append(out, Result{Case: "product6", Impl: "gradforge", Err: err.Error()})
			return out
		}
		ins = append(ins, a)
	}
	run(Result{Case: "product6", Impl: "gradforge", Bytes: int64(28 * n)},
		func() *tensor.Tensor { return ins[0].Mul(ins[1]).Mul(ins[2]).Mul(ins[3]).Mul(ins[4]).Mul(ins[5]) },
		func(t *tensor.Tensor) error {
			got, err := t.Float32s()
			if err != nil {
				return err
			}
			for i := 0; i < n; i += max(1, n/4099) {
				want := float32(1)
				for k := range 6 {
					want *= hostAt(i)*float32(k+1)/8 + 1
				}
				if math.Abs(float64(got[i]-want)) > 1e-5*math.Abs(float64(want)) {
					return fmt.Errorf("product6[%d] = %v, want %v", i, got[i], want)
				}
			}
			return nil
		})
	ins = nil

	run(Result{Case: "sum", Impl: "gradforge", Bytes: int64(4 * n)},
		func() *tensor.Tensor { return x.Sum() },
		func(t *tensor.Tensor) error {
			got, err := t.Item()
			if err != nil {
				return err
			}
			var want float64
			for i := range n {
				want += float64(hostAt(i))
			}
			if math.Abs(got-want) > 1e-4*math.Sqrt(float64(n)) {
				return fmt.Errorf("sum = %v, want %v", got, want)
			}
			return nil
		})
	x = nil

	rows := sz.Rows
	mAt := func(i int) float32 { return fillValue(uint32(i), 777) * 4 }
	m := onCUDA(tensor.FromSlice(fill(rows*rows, mAt), rows, rows))
	run(Result{Case: "softmax", Impl: "gradforge", Bytes: int64(8 * rows * rows)},
		func() *tensor.Tensor { return m.Softmax(-1) },
		func(t *tensor.Tensor) error {
			got, err := t.Float32s()
			if err != nil {
				return err
			}
			for _, row := range []int{0, rows / 2, rows - 1} {
				r := fill(rows, func(c int) float32 { return mAt(row*rows + c) })
				mx, z := math.Inf(-1), 0.0
				for _, v := range r {
					mx = math.Max(mx, float64(v))
				}
				for _, v := range r {
					z += math.Exp(float64(v) - mx)
				}
				for c := 0; c < rows; c += 101 {
					want := math.Exp(float64(r[c])-mx) / z
					if g := float64(got[row*rows+c]); math.Abs(g-want) > 1e-5*want+1e-9 {
						return fmt.Errorf("softmax[%d,%d] = %v, want %v", row, c, g, want)
					}
				}
			}
			return nil
		})
	m = nil

	mm := sz.MM
	ah, bh := make([]float32, mm*mm), make([]float32, mm*mm)
	for i := range ah {
		ah[i], bh[i] = fillValue(uint32(i), 31), fillValue(uint32(i), 97)
	}
	for _, dt := range []dtype.DType{dtype.Float32, dtype.Float16} {
		a := onCUDA(tensor.FromSlice(ah, mm, mm)).Cast(dt)
		b := onCUDA(tensor.FromSlice(bh, mm, mm)).Cast(dt)
		if err := tensor.Realize(a, b); err != nil {
			out = append(out, Result{Case: "matmul_" + shortName(dt), Impl: "gradforge", Err: err.Error()})
			continue
		}
		run(Result{Case: "matmul_" + shortName(dt), Impl: "gradforge", Flops: 2 * int64(mm) * int64(mm) * int64(mm)},
			func() *tensor.Tensor { return a.Matmul(b) },
			func(t *tensor.Tensor) error {
				got, err := t.Float64s()
				if err != nil {
					return err
				}
				for _, ij := range [][2]int{{0, 0}, {mm - 1, mm - 1}, {mm / 3, mm/2 + 5}} {
					var want float64
					for l := range mm {
						av, bv := ah[ij[0]*mm+l], bh[l*mm+ij[1]]
						if dt == dtype.Float16 {
							av, bv = dtype.HalfToFloat32(dtype.Float32ToHalf(av)), dtype.HalfToFloat32(dtype.Float32ToHalf(bv))
						}
						want += float64(av) * float64(bv)
					}
					tol := 1e-4
					if dt == dtype.Float16 {
						tol = 2e-3
					}
					if g := got[ij[0]*mm+ij[1]]; math.Abs(g-want) > tol*math.Sqrt(float64(mm))+tol*math.Abs(want) {
						return fmt.Errorf("matmul[%d,%d] = %v, want %v", ij[0], ij[1], g, want)
					}
				}
				return nil
			})
	}
	return out
}

// fill returns n values of at.
func fill(n int, at func(int) float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = at(i)
	}
	return v
}

func shortName(dt dtype.DType) string {
	if dt == dtype.Float16 {
		return "f16"
	}
	return "f32"
}

// onCUDA moves a host-built tensor to the GPU; the tensor layer reports a missing device when
// it realizes.
func onCUDA(t *tensor.Tensor) *tensor.Tensor {
	c, err := t.To("CUDA")
	if err != nil {
		panic(err)
	}
	return c
}
