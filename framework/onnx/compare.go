package onnx

import (
	"bytes"
	"fmt"
	"math"
)

// Tolerance is the closeness test for floating-point outputs, as numpy's assert_allclose:
// |got - want| <= Atol + Rtol*|want|. NaN matches NaN; infinities must match exactly.
type Tolerance struct{ Rtol, Atol float64 }

// NodeTolerance is what the upstream node suite uses.
var NodeTolerance = Tolerance{Rtol: 1e-3, Atol: 1e-7}

// Compare reports how got differs from want, or nil when they match: same kind, same type,
// same shape and values within tol (exact for integers, booleans and strings).
func Compare(got, want Value, tol Tolerance) error {
	switch w := want.(type) {
	case *Tensor:
		g, ok := got.(*Tensor)
		if !ok {
			return fmt.Errorf("got %T, want a tensor", got)
		}
		return compareTensor(g, w, tol)
	case *Sequence:
		g, ok := got.(*Sequence)
		if !ok {
			return fmt.Errorf("got %T, want a sequence", got)
		}
		if len(g.Tensors) != len(w.Tensors) || len(g.Sequences) != len(w.Sequences) {
			return fmt.Errorf("sequence of %d tensors, want %d", len(g.Tensors), len(w.Tensors))
		}
		for i := range w.Tensors {
			if err := compareTensor(g.Tensors[i], w.Tensors[i], tol); err != nil {
				return fmt.Errorf("sequence element %d: %w", i, err)
			}
		}
		for i := range w.Sequences {
			if err := Compare(g.Sequences[i], w.Sequences[i], tol); err != nil {
				return fmt.Errorf("sequence element %d: %w", i, err)
			}
		}
		return nil
	case *Optional:
		g, ok := got.(*Optional)
		if !ok {
			return fmt.Errorf("got %T, want an optional", got)
		}
		switch {
		case w.Tensor != nil:
			if g.Tensor == nil {
				return fmt.Errorf("optional without a tensor, want one")
			}
			return compareTensor(g.Tensor, w.Tensor, tol)
		case w.Sequence != nil:
			if g.Sequence == nil {
				return fmt.Errorf("optional without a sequence, want one")
			}
			return Compare(g.Sequence, w.Sequence, tol)
		case g.Tensor != nil || g.Sequence != nil:
			return fmt.Errorf("optional holds a value, want none")
		}
		return nil
	}
	return fmt.Errorf("cannot compare %T", want)
}

func compareTensor(g, w *Tensor, tol Tolerance) error {
	if g.Type != w.Type {
		return fmt.Errorf("dtype %v, want %v", g.Type, w.Type)
	}
	if fmt.Sprint(g.Dims) != fmt.Sprint(w.Dims) {
		return fmt.Errorf("shape %v, want %v", g.Dims, w.Dims)
	}
	if w.Type == String {
		for i := range w.Strings {
			if !bytes.Equal(g.Strings[i], w.Strings[i]) {
				return fmt.Errorf("element %d: %q, want %q", i, g.Strings[i], w.Strings[i])
			}
		}
		return nil
	}
	switch w.Type {
	case Int64, Uint64:
		gv, _ := g.Int64s()
		wv, _ := w.Int64s()
		for i := range wv {
			if gv[i] != wv[i] {
				return fmt.Errorf("element %d of %d: %d, want %d", i, len(wv), gv[i], wv[i])
			}
		}
		return nil
	}
	gv, err := g.Float64s()
	if err != nil {
		return err
	}
	wv, err := w.Float64s()
	if err != nil {
		return err
	}
	exact := !w.Type.isFloat()
	bad, worst, worstAt := 0, 0.0, -1
	for i := range wv {
		a, b := gv[i], wv[i]
		switch {
		case math.IsNaN(b):
			if !math.IsNaN(a) {
				bad++
				if worstAt < 0 {
					worstAt = i
				}
			}
			continue
		case math.IsInf(b, 0) || exact:
			if a != b {
				bad++
				if worstAt < 0 || math.IsInf(b, 0) {
					worstAt, worst = i, math.Inf(1)
				}
			}
			continue
		}
		d := math.Abs(a - b)
		if !(d <= tol.Atol+tol.Rtol*math.Abs(b)) {
			bad++
			if math.IsNaN(d) || d > worst {
				worst, worstAt = d, i
				if math.IsNaN(d) {
					worst = math.Inf(1)
				}
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d elements differ; worst at %d: got %g, want %g", bad, len(wv), worstAt, gv[worstAt], wv[worstAt])
	}
	return nil
}

func (d DataType) isFloat() bool {
	switch d {
	case Float, Double, Float16, BFloat16, Complex64, Complex128, Float8E4M3FN, Float8E4M3FNZ,
		Float8E5M2, Float8E5M2FNZ, Float8E8M0, Float4E2M1:
		return true
	}
	return false
}
