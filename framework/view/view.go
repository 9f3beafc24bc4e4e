// Package view turns movement ops (reshape, permute, expand, pad, shrink, flip) into index
// arithmetic. A View maps an n-dimensional index to a position in a flat buffer through
// strides, an offset and a validity mask (indices outside the mask read as zero, which is
// how padding costs nothing). A Stack is a list of views applied outermost last: when a
// reshape cannot be expressed with strides over the current view, a new view is pushed and
// the previous one is reached by unravelling a flat index. Nothing here copies data.
package view

import (
	"fmt"
	"slices"
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

// Equal reports whether two stacks are the same views (what equal Keys say, without the strings).
func (s Stack) Equal(o Stack) bool {
	return slices.EqualFunc(s.Views, o.Views, func(a, b View) bool {
		return a.Offset == b.Offset && slices.Equal(a.Shape, b.Shape) && slices.Equal(a.Strides, b.Strides) &&
			slices.Equal(a.Mask, b.Mask)
	})
}

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
	var osb, ostb [8]int         // room for the usual ranks, so the lists stay off the heap
	os, ost := osb[:0], ostb[:0] // old dims without the size-1 ones
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
// as one expression per dim, each ranging over [0, size of that dim). valid is "" when always
// true. The expressions are plain integer arithmetic shared by every C-like dialect; they are
// simplified with the ranges of the dims, so that a window or a reshape of a permute usually
// renders as a plain sum of strided indices instead of nested divisions.
func (s Stack) Render(idx []string) (index, valid string) {
	shape := s.last().Shape
	vars := make([]lin, len(idx))
	known := &[]limit{}
	for i, x := range idx {
		vars[i] = variable(x, shape[i]-1)
		vars[i].known = known
	}
	var conds []string
	var pos lin
	for k := len(s.Views) - 1; k >= 0; k-- {
		v := s.Views[k]
		pos = lin{k: v.Offset}
		for i, x := range vars {
			if v.Mask != nil {
				lo, hi := x.bounds()
				m := v.Mask[i]
				switch {
				case m[0] >= m[1] || hi < m[0] || lo >= m[1]:
					conds = append(conds, "0")
				default:
					if lo < m[0] {
						conds = append(conds, fmt.Sprintf("%s>=%d", x, m[0]))
					}
					if hi >= m[1] {
						conds = append(conds, fmt.Sprintf("%s<%d", x, m[1]))
						*known = append(*known, limit{lin{terms: x.terms, k: x.k}, m[1] - 1})
					}
				}
			}
			pos = pos.add(x.mul(v.Strides[i]))
		}
		if k == 0 {
			break
		}
		inner := s.Views[k-1].Shape
		vars = make([]lin, len(inner))
		div := 1
		for i := len(inner) - 1; i >= 0; i-- {
			vars[i] = pos.div(div).mod(inner[i])
			div *= inner[i]
		}
	}
	if slices.Contains(conds, "0") {
		conds = []string{"0"}
	}
	return pos.String(), strings.Join(conds, "&&")
}

// lin is an integer expression in linear form: a constant plus multiples of atoms (loop
// variables or opaque sub-expressions), each with known bounds.
type lin struct {
	terms []term
	k     int
	known *[]limit // facts that hold wherever the index is used (the masks checked so far)
}

// limit says x ≤ hi for every valid index: a mask condition that guards the load.
type limit struct {
	x  lin
	hi int
}

type term struct {
	c  int
	s  string // the atom as C
	hi int    // the atom ranges over [0, hi]
}

func variable(s string, hi int) lin {
	if hi <= 0 || s == "0" {
		return lin{}
	}
	return lin{terms: []term{{1, s, hi}}}
}

func (l lin) bounds() (lo, hi int) {
	terms := l.terms
	lo, hi = l.k, l.k
	if l.known != nil { // a group of terms that a mask bounds counts with that bound
		terms = slices.Clone(terms)
		for _, lim := range *l.known {
			if m, rest, ok := cover(terms, lim.x); ok {
				hi += m * (lim.hi - lim.x.k)
				terms = rest
			}
		}
	}
	for _, t := range terms {
		if t.c > 0 {
			hi += t.c * t.hi
		} else {
			lo += t.c * t.hi
		}
	}
	return lo, hi
}

// cover finds m > 0 with m·(x's terms) among terms (x's coefficients all positive) and returns
// the terms left over.
func cover(terms []term, x lin) (m int, rest []term, ok bool) {
	if len(x.terms) == 0 {
		return 0, nil, false
	}
	used := make([]bool, len(terms))
	for i, t := range x.terms {
		j := slices.IndexFunc(terms, func(u term) bool { return u.s == t.s })
		if t.c <= 0 || j < 0 || terms[j].c%t.c != 0 || terms[j].c/t.c <= 0 || (i > 0 && terms[j].c/t.c != m) {
			return 0, nil, false
		}
		m, used[j] = terms[j].c/t.c, true
	}
	for j, t := range terms {
		if !used[j] {
			rest = append(rest, t)
		}
	}
	return m, rest, true
}

func (l lin) add(o lin) lin {
	out := lin{terms: slices.Clone(l.terms), k: l.k + o.k, known: l.known}
	if out.known == nil {
		out.known = o.known
	}
	for _, t := range o.terms {
		if i := slices.IndexFunc(out.terms, func(u term) bool { return u.s == t.s }); i >= 0 {
			out.terms[i].c += t.c
		} else {
			out.terms = append(out.terms, t)
		}
	}
	out.terms = slices.DeleteFunc(out.terms, func(t term) bool { return t.c == 0 })
	return out
}

func (l lin) mul(c int) lin {
	if c == 0 {
		return lin{}
	}
	out := lin{terms: slices.Clone(l.terms), k: l.k * c, known: l.known}
	for i := range out.terms {
		out.terms[i].c *= c
	}
	return out
}

// bounded wraps an expression that does not simplify as one atom with bounds [lo, hi]
// (an atom itself always starts at 0, so a negative lo is carried by the constant).
func bounded(s string, lo, hi int) lin {
	if lo == 0 {
		return lin{terms: []term{{1, s, hi}}}
	}
	return lin{terms: []term{{1, "(" + s + "+" + strconv.Itoa(-lo) + ")", hi - lo}}, k: lo}
}

// div is l/p with C's truncation. It simplifies when l is never negative and the terms that
// p does not divide add up to less than p.
func (l lin) div(p int) lin {
	lo, hi := l.bounds()
	if p == 1 {
		return l
	}
	if lo < 0 {
		return bounded("("+l.String()+")/"+strconv.Itoa(p), lo/p, hi/p)
	}
	q, r := lin{k: l.k / p, known: l.known}, lin{k: l.k % p, known: l.known}
	for _, t := range l.terms {
		if t.c%p == 0 {
			q.terms = append(q.terms, term{t.c / p, t.s, t.hi})
		} else {
			r.terms = append(r.terms, t)
		}
	}
	if rlo, rhi := r.bounds(); rlo >= 0 && rhi < p {
		return q
	}
	// One term c·t with c dividing p and the rest in [0, c): (c·t + rest)/p = t/(p/c).
	if t, _, ok := r.split(p); ok {
		return q.add(bounded("("+t.s+")/"+strconv.Itoa(p/t.c), 0, t.hi/(p/t.c)))
	}
	return bounded("("+l.String()+")/"+strconv.Itoa(p), 0, hi/p)
}

// split finds a term c·t of l with c > 1 dividing p whose companions (and constant) stay in
// [0, c), returning the term and the rest of l.
func (l lin) split(p int) (term, lin, bool) {
	for i, t := range l.terms {
		if t.c <= 1 || p%t.c != 0 {
			continue
		}
		rest := lin{terms: append(slices.Clone(l.terms[:i]), l.terms[i+1:]...), k: l.k, known: l.known}
		if lo, hi := rest.bounds(); lo >= 0 && hi < t.c {
			return t, rest, true
		}
	}
	return term{}, lin{}, false
}

// mod is l%n with C semantics. It simplifies when l is never negative: multiples of n drop
// out of the coefficients when what remains stays in [0, n).
func (l lin) mod(n int) lin {
	lo, hi := l.bounds()
	if lo >= 0 && hi < n {
		return l
	}
	if lo < 0 {
		return bounded("("+l.String()+")%"+strconv.Itoa(n), -(n - 1), n-1)
	}
	r := lin{k: l.k % n, known: l.known}
	for _, t := range l.terms {
		if c := t.c % n; c != 0 {
			r.terms = append(r.terms, term{c, t.s, t.hi})
		}
	}
	if rlo, rhi := r.bounds(); rlo >= 0 && rhi < n {
		return r
	}
	// One term c·t with c dividing n and the rest in [0, c): (c·t + rest)%n = c·(t%(n/c)) + rest.
	if t, rest, ok := r.split(n); ok {
		m := n / t.c
		return rest.add(bounded("("+t.s+")%"+strconv.Itoa(m), 0, min(t.hi, m-1)).mul(t.c))
	}
	return bounded("("+l.String()+")%"+strconv.Itoa(n), 0, n-1)
}

func (l lin) String() string {
	var parts []string
	for _, t := range l.terms {
		if t.c == 1 {
			parts = append(parts, t.s)
		} else {
			parts = append(parts, t.s+"*"+strconv.Itoa(t.c))
		}
	}
	if l.k != 0 || len(parts) == 0 {
		parts = append(parts, strconv.Itoa(l.k))
	}
	return strings.Join(parts, "+")
}
