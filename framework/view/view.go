// Package view turns movement ops (reshape, permute, expand, pad, shrink, flip) into index
// arithmetic. A View maps an n-dimensional index to a position in a flat buffer through
// strides, an offset and a validity mask (indices outside the mask read as zero, which is
// how padding costs nothing). A Stack is a list of views applied outermost last: when a
// reshape cannot be expressed with strides over the current view, a new view is pushed and
// the previous one is reached by unravelling a flat index. Nothing here copies data.
package view

import (
	"fmt"
	"strconv"
	"strings"
)

// View is one strided window over a flat buffer.
type View struct {
	Shape   []int
	Strides []int
	Offset  int
	Mask    [][2]int // per dim [lo, hi) of valid indices; nil when every index is valid
}

// Stack is a list of views; Views[len-1] is the one the caller indexes, Views[0] reaches the
// buffer. The zero Stack is not usable; start from Contiguous.
type Stack struct{ Views []View }

// Strides returns the row-major strides of shape; dims of size 1 get stride 0 so that they
// never influence an index.
func Strides(shape []int) []int {
	st := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 {
			st[i] = acc
		}
		acc *= shape[i]
	}
	return st
}

// Prod multiplies the ints of s (1 for an empty s).
func Prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// Contiguous is the stack of one row-major view of shape.
func Contiguous(shape ...int) Stack {
	return Stack{[]View{{Shape: clone(shape), Strides: Strides(shape)}}}
}

func clone[T any](s []T) []T { return append([]T(nil), s...) }

func (s Stack) last() View { return s.Views[len(s.Views)-1] }

func (s Stack) with(v View) Stack {
	vs := clone(s.Views)
	vs[len(vs)-1] = v
	return Stack{vs}
}

// Shape is the shape the stack is indexed with.
func (s Stack) Shape() []int { return clone(s.last().Shape) }

// IsContiguous reports whether indexing the stack reads the buffer in plain row-major order.
func (s Stack) IsContiguous() bool {
	v := s.last()
	if len(s.Views) != 1 || v.Offset != 0 || v.Mask != nil {
		return false
	}
	want := Strides(v.Shape)
	for i := range want {
		if v.Shape[i] != 1 && v.Strides[i] != want[i] {
			return false
		}
	}
	return true
}

// Key is a string that identifies the stack exactly (for caches and memo tables).
func (s Stack) Key() string { return fmt.Sprint(s.Views) }

// Permute reorders the dims: new dim i is old dim order[i].
func (s Stack) Permute(order []int) Stack {
	v := s.last()
	n := View{Shape: make([]int, len(order)), Strides: make([]int, len(order)), Offset: v.Offset}
	if v.Mask != nil {
		n.Mask = make([][2]int, len(order))
	}
	for i, o := range order {
		n.Shape[i], n.Strides[i] = v.Shape[o], v.Strides[o]
		if v.Mask != nil {
			n.Mask[i] = v.Mask[o]
		}
	}
	return s.with(n)
}

// Expand broadcasts dims of size 1 to the sizes in shape (other dims must already match).
func (s Stack) Expand(shape []int) Stack {
	v := s.last()
	n := View{Shape: clone(shape), Strides: clone(v.Strides), Offset: v.Offset, Mask: clone(v.Mask)}
	for i := range shape {
		if v.Shape[i] != shape[i] {
			n.Strides[i] = 0
			if n.Mask != nil && n.Mask[i][1] > n.Mask[i][0] {
				n.Mask[i] = [2]int{0, shape[i]}
			}
		}
	}
	return s.with(n)
}

// Shrink keeps the index range [lo, hi) of every dim.
func (s Stack) Shrink(r [][2]int) Stack {
	v := s.last()
	n := View{Shape: make([]int, len(r)), Strides: clone(v.Strides), Offset: v.Offset}
	for i, b := range r {
		n.Shape[i] = b[1] - b[0]
		n.Offset += b[0] * v.Strides[i]
	}
	if v.Mask != nil {
		n.Mask = make([][2]int, len(r))
		for i, b := range r {
			lo, hi := max(v.Mask[i][0], b[0])-b[0], min(v.Mask[i][1], b[1])-b[0]
			n.Mask[i] = [2]int{lo, max(lo, hi)}
		}
	}
	return s.with(n)
}

// Pad adds p[i][0] invalid (zero) indices before and p[i][1] after every dim i.
func (s Stack) Pad(p [][2]int) Stack {
	v := s.last()
	n := View{Shape: make([]int, len(p)), Strides: clone(v.Strides), Offset: v.Offset, Mask: make([][2]int, len(p))}
	for i, b := range p {
		n.Shape[i] = v.Shape[i] + b[0] + b[1]
		n.Offset -= b[0] * v.Strides[i]
		lo, hi := 0, v.Shape[i]
		if v.Mask != nil {
			lo, hi = v.Mask[i][0], v.Mask[i][1]
		}
		n.Mask[i] = [2]int{lo + b[0], hi + b[0]}
	}
	return s.with(n)
}

// Flip reverses the dims whose flag is set.
func (s Stack) Flip(axes []bool) Stack {
	v := s.last()
	n := View{Shape: clone(v.Shape), Strides: clone(v.Strides), Offset: v.Offset, Mask: clone(v.Mask)}
	for i, f := range axes {
		if !f || v.Shape[i] == 0 {
			continue
		}
		n.Offset += (v.Shape[i] - 1) * v.Strides[i]
		n.Strides[i] = -v.Strides[i]
		if n.Mask != nil {
			n.Mask[i] = [2]int{v.Shape[i] - v.Mask[i][1], v.Shape[i] - v.Mask[i][0]}
		}
	}
	return s.with(n)
}

// Reshape reinterprets the row-major order of the current shape as shape. It merges into
// the current view when strides allow it and pushes a new view otherwise.
func (s Stack) Reshape(shape []int) Stack {
	v := s.last()
	if eq(v.Shape, shape) {
		return s
	}
	if st, ok := reshapeStrides(v, shape); ok {
		return s.with(View{Shape: clone(shape), Strides: st, Offset: v.Offset})
	}
	return Stack{append(clone(s.Views), View{Shape: clone(shape), Strides: Strides(shape)})}
}

// reshapeStrides finds strides for shape over v's memory, if any exist (numpy's no-copy
// reshape): every group of new dims must cover a group of old dims that is itself laid
// out contiguously.
func reshapeStrides(v View, shape []int) ([]int, bool) {
	if v.Mask != nil {
		return nil, false
	}
	st := make([]int, len(shape))
	if Prod(shape) == 0 {
		return Strides(shape), true
	}
	var os, ost []int // old dims without the size-1 ones
	for i, d := range v.Shape {
		if d != 1 {
			os, ost = append(os, d), append(ost, v.Strides[i])
		}
	}
	oi, ni := 0, 0
	for ni < len(shape) && shape[ni] == 1 {
		ni++
	}
	for oi < len(os) {
		if ni >= len(shape) {
			return nil, false
		}
		nj, oj, np, op := ni+1, oi+1, shape[ni], os[oi]
		for np != op {
			if np < op {
				if nj >= len(shape) {
					return nil, false
				}
				np *= shape[nj]
				nj++
			} else {
				if oj >= len(os) {
					return nil, false
				}
				op *= os[oj]
				oj++
			}
		}
		for k := oi; k < oj-1; k++ {
			if ost[k] != ost[k+1]*os[k+1] {
				return nil, false
			}
		}
		acc := ost[oj-1]
		for k := nj - 1; k >= ni; k-- {
			if shape[k] != 1 {
				st[k] = acc
			}
			acc *= shape[k]
		}
		ni, oi = nj, oj
		for ni < len(shape) && shape[ni] == 1 {
			ni++
		}
	}
	return st, ni == len(shape)
}

func eq(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Index evaluates the stack for one index: the buffer position and whether it is valid.
// It is the reference that Render must agree with.
func (s Stack) Index(idx []int) (int, bool) {
	for k := len(s.Views) - 1; k >= 0; k-- {
		v := s.Views[k]
		pos := v.Offset
		for i, x := range idx {
			if v.Mask != nil && (x < v.Mask[i][0] || x >= v.Mask[i][1]) {
				return 0, false
			}
			pos += x * v.Strides[i]
		}
		if k == 0 {
			return pos, true
		}
		inner := s.Views[k-1].Shape
		idx = make([]int, len(inner))
		for i := len(inner) - 1; i >= 0; i-- {
			if inner[i] > 0 {
				idx[i] = pos % inner[i]
				pos /= inner[i]
			}
		}
	}
	return 0, false
}

// Render writes C expressions for the buffer position and the validity of the index given
// as one expression per dim (a dim of size 1 may be given as "0"). valid is "" when always
// true. The expressions are plain integer arithmetic shared by every C-like dialect.
func (s Stack) Render(idx []string) (index, valid string) {
	var conds []string
	for k := len(s.Views) - 1; k >= 0; k-- {
		v := s.Views[k]
		var terms []string
		for i, x := range idx {
			if v.Shape[i] == 1 {
				x = "0"
			}
			if v.Mask != nil {
				if m := v.Mask[i]; m[0] >= m[1] {
					conds = append(conds, "0")
				} else {
					if m[0] > 0 {
						conds = append(conds, fmt.Sprintf("%s>=%d", x, m[0]))
					}
					if m[1] < v.Shape[i] {
						conds = append(conds, fmt.Sprintf("%s<%d", x, m[1]))
					}
				}
			}
			if x == "0" || v.Strides[i] == 0 {
				continue
			}
			if v.Strides[i] == 1 {
				terms = append(terms, x)
			} else {
				terms = append(terms, x+"*"+strconv.Itoa(v.Strides[i]))
			}
		}
		if v.Offset != 0 || len(terms) == 0 {
			terms = append(terms, strconv.Itoa(v.Offset))
		}
		index = strings.Join(terms, "+")
		if k == 0 {
			break
		}
		inner := s.Views[k-1].Shape
		idx = make([]string, len(inner))
		flat, div := "("+index+")", 1
		for i := len(inner) - 1; i >= 0; i-- {
			switch {
			case inner[i] == 1:
				idx[i] = "0"
			case i == 0 || allOne(inner[:i]):
				idx[i] = flat + "/" + strconv.Itoa(div)
			default:
				idx[i] = "(" + flat + "/" + strconv.Itoa(div) + "%" + strconv.Itoa(inner[i]) + ")"
			}
			idx[i] = strings.TrimSuffix(idx[i], "/1")
			div *= inner[i]
		}
	}
	return index, strings.Join(conds, "&&")
}

func allOne(s []int) bool {
	for _, d := range s {
		if d != 1 {
			return false
		}
	}
	return true
}
