package view

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// arr is the reference: an explicit array of buffer positions (-1 = invalid), moved by
// direct index math. Every Stack result must match it element by element.
type arr struct {
	shape []int
	pos   []int
}

func iota(shape []int) arr {
	a := arr{shape: slices.Clone(shape), pos: make([]int, Prod(shape))}
	for i := range a.pos {
		a.pos[i] = i
	}
	return a
}

// unravel turns a flat row-major index into a multi-index.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d] = i % shape[d]
		i /= shape[d]
	}
	return idx
}

func ravel(idx, shape []int) int {
	f := 0
	for d := range shape {
		f = f*shape[d] + idx[d]
	}
	return f
}

func (a arr) gen(shape []int, src func(idx []int) int) arr {
	out := arr{shape: slices.Clone(shape), pos: make([]int, Prod(shape))}
	for i := range out.pos {
		out.pos[i] = src(unravel(i, shape))
	}
	return out
}

func (a arr) at(idx []int) int { return a.pos[ravel(idx, a.shape)] }

func (a arr) permute(o []int) arr {
	shape := make([]int, len(o))
	for i, d := range o {
		shape[i] = a.shape[d]
	}
	return a.gen(shape, func(idx []int) int {
		src := make([]int, len(o))
		for i, d := range o {
			src[d] = idx[i]
		}
		return a.at(src)
	})
}

func (a arr) expand(shape []int) arr {
	return a.gen(shape, func(idx []int) int {
		src := slices.Clone(idx)
		for i := range src {
			if a.shape[i] == 1 {
				src[i] = 0
			}
		}
		return a.at(src)
	})
}

func (a arr) pad(p [][2]int) arr {
	shape := make([]int, len(p))
	for i := range p {
		shape[i] = a.shape[i] + p[i][0] + p[i][1]
	}
	return a.gen(shape, func(idx []int) int {
		src := make([]int, len(idx))
		for i := range idx {
			src[i] = idx[i] - p[i][0]
			if src[i] < 0 || src[i] >= a.shape[i] {
				return -1
			}
		}
		return a.at(src)
	})
}

func (a arr) shrink(r [][2]int) arr {
	shape := make([]int, len(r))
	for i := range r {
		shape[i] = r[i][1] - r[i][0]
	}
	return a.gen(shape, func(idx []int) int {
		src := make([]int, len(idx))
		for i := range idx {
			src[i] = idx[i] + r[i][0]
		}
		return a.at(src)
	})
}

func (a arr) flip(f []bool) arr {
	return a.gen(a.shape, func(idx []int) int {
		src := slices.Clone(idx)
		for i := range src {
			if f[i] {
				src[i] = a.shape[i] - 1 - idx[i]
			}
		}
		return a.at(src)
	})
}

func check(t *testing.T, what string, s Stack, a arr) {
	t.Helper()
	if !slices.Equal(s.Shape(), a.shape) {
		t.Fatalf("%s: shape %v, want %v", what, s.Shape(), a.shape)
	}
	names := make([]string, len(a.shape))
	for i := range names {
		names[i] = fmt.Sprintf("gidx%d", i)
	}
	idxExpr, validExpr := s.Render(names)
	for i, want := range a.pos {
		idx := unravel(i, a.shape)
		got, ok := s.Index(idx)
		if !ok {
			got = -1
		}
		if got != want {
			t.Fatalf("%s: at %v got position %d, want %d (views %v)", what, idx, got, want, s.Views)
		}
		// The rendered C must agree with Index wherever the element is valid.
		vars := map[string]int{}
		for d, v := range idx {
			vars[names[d]] = v
		}
		rok := validExpr == "" || eval(validExpr, vars) != 0
		if rok != ok || (ok && eval(idxExpr, vars) != want) {
			t.Fatalf("%s: at %v rendered (%s valid %s) disagrees with position %d (views %v)", what, idx, idxExpr, validExpr, want, s.Views)
		}
	}
}

func TestMovementOps(t *testing.T) {
	base := []int{2, 3, 4}
	cases := []struct {
		name string
		st   func(Stack) Stack
		ref  func(arr) arr
	}{
		{"permute", func(s Stack) Stack { return s.Permute([]int{2, 0, 1}) }, func(a arr) arr { return a.permute([]int{2, 0, 1}) }},
		{"reshape merges", func(s Stack) Stack { return s.Reshape([]int{6, 4}) }, func(a arr) arr { a.shape = []int{6, 4}; return a }},
		{"expand", func(s Stack) Stack { return s.Reshape([]int{2, 1, 12}).Expand([]int{2, 5, 12}) }, func(a arr) arr {
			a.shape = []int{2, 1, 12}
			return a.expand([]int{2, 5, 12})
		}},
		{"pad", func(s Stack) Stack { return s.Pad([][2]int{{1, 0}, {0, 2}, {1, 1}}) }, func(a arr) arr { return a.pad([][2]int{{1, 0}, {0, 2}, {1, 1}}) }},
		{"shrink", func(s Stack) Stack { return s.Shrink([][2]int{{1, 2}, {0, 3}, {1, 3}}) }, func(a arr) arr { return a.shrink([][2]int{{1, 2}, {0, 3}, {1, 3}}) }},
		{"flip", func(s Stack) Stack { return s.Flip([]bool{true, false, true}) }, func(a arr) arr { return a.flip([]bool{true, false, true}) }},
		{"reshape of a permute pushes a view", func(s Stack) Stack { return s.Permute([]int{1, 0, 2}).Reshape([]int{24}) }, func(a arr) arr {
			a = a.permute([]int{1, 0, 2})
			a.shape = []int{24}
			return a
		}},
		{"pad then shrink back", func(s Stack) Stack {
			return s.Pad([][2]int{{1, 1}, {2, 2}, {0, 0}}).Shrink([][2]int{{0, 3}, {1, 6}, {0, 4}})
		}, func(a arr) arr {
			return a.pad([][2]int{{1, 1}, {2, 2}, {0, 0}}).shrink([][2]int{{0, 3}, {1, 6}, {0, 4}})
		}},
		{"flip of a pad", func(s Stack) Stack { return s.Pad([][2]int{{0, 1}, {2, 0}, {0, 0}}).Flip([]bool{true, true, false}) }, func(a arr) arr {
			return a.pad([][2]int{{0, 1}, {2, 0}, {0, 0}}).flip([]bool{true, true, false})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check(t, c.name, c.st(Contiguous(base...)), c.ref(iota(base)))
		})
	}
}

func TestReshapeMergesWhenStridesAllow(t *testing.T) {
	s := Contiguous(4, 6).Reshape([]int{2, 2, 3, 2}).Reshape([]int{24})
	if len(s.Views) != 1 || !s.IsContiguous() {
		t.Fatalf("contiguous reshapes should stay one contiguous view, got %v", s.Views)
	}
	p := Contiguous(4, 6).Permute([]int{1, 0}).Reshape([]int{3, 2, 4})
	if len(p.Views) != 1 {
		t.Fatalf("splitting a permuted dim needs no new view, got %v", p.Views)
	}
	if q := Contiguous(4, 6).Permute([]int{1, 0}).Reshape([]int{24}); len(q.Views) != 2 {
		t.Fatalf("flattening a transpose needs a second view, got %v", q.Views)
	}
}

// TestRandomCompositions applies random chains of movement ops to the view stack and to the
// reference array and compares every element.
func TestRandomCompositions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		compose(t, r.IntN)
	}
}

// FuzzCompositions drives the same comparison from fuzzer bytes:
// go test -fuzz FuzzCompositions ./framework/view
func FuzzCompositions(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{2, 3, 2, 5, 1, 1, 0, 2, 1, 4, 3, 3, 1, 0, 2, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		i := 0
		compose(t, func(n int) int {
			if i >= len(data) {
				return 0
			}
			i++
			return int(data[i-1]) % n
		})
	})
}

// compose builds a random chain of movement ops from intn and checks it against arr.
func compose(t *testing.T, intn func(int) int) {
	shape := []int{1 + intn(3), 1 + intn(4), 1 + intn(3)}
	s, a := Contiguous(shape...), iota(shape)
	var log []string
	for range 1 + intn(6) {
		n := len(a.shape)
		switch intn(6) {
		case 0:
			o := make([]int, n)
			for i := range o {
				o[i] = i
			}
			for i := n - 1; i > 0; i-- {
				j := intn(i + 1)
				o[i], o[j] = o[j], o[i]
			}
			s, a = s.Permute(o), a.permute(o)
			log = append(log, fmt.Sprint("permute", o))
		case 1: // reshape to a random factorisation of the element count
			var ns []int
			for rest := Prod(a.shape); rest > 1; {
				ds := divisors(rest)
				f := ds[intn(len(ds))]
				ns, rest = append(ns, f), rest/f
			}
			if len(ns) == 0 {
				ns = []int{1}
			}
			s, a = s.Reshape(ns), arr{shape: ns, pos: a.pos}
			log = append(log, fmt.Sprint("reshape", ns))
		case 2:
			p := make([][2]int, n)
			for i := range p {
				p[i] = [2]int{intn(2), intn(2)}
			}
			s, a = s.Pad(p), a.pad(p)
			log = append(log, fmt.Sprint("pad", p))
		case 3:
			rr := make([][2]int, n)
			for i, d := range a.shape {
				if d == 0 {
					continue
				}
				lo := intn(d)
				rr[i] = [2]int{lo, lo + 1 + intn(d-lo)}
			}
			s, a = s.Shrink(rr), a.shrink(rr)
			log = append(log, fmt.Sprint("shrink", rr))
		case 4:
			f := make([]bool, n)
			for i := range f {
				f[i] = intn(2) == 0
			}
			s, a = s.Flip(f), a.flip(f)
			log = append(log, fmt.Sprint("flip", f))
		case 5:
			ns := slices.Clone(a.shape)
			for i := range ns {
				if ns[i] == 1 {
					ns[i] = 1 + intn(3)
				}
			}
			s, a = s.Expand(ns), a.expand(ns)
			log = append(log, fmt.Sprint("expand", ns))
		}
	}
	check(t, fmt.Sprint(shape, log), s, a)
}

func divisors(n int) []int {
	var out []int
	for f := 2; f <= n; f++ {
		if n%f == 0 {
			out = append(out, f)
		}
	}
	return out
}

// eval evaluates the C integer expressions Render writes (numbers, variables, + * / % < >=
// && and parentheses), with C's truncating division.
func eval(s string, vars map[string]int) int {
	p := &parser{s: s, vars: vars}
	v := p.and()
	if p.i != len(s) {
		panic("trailing input in " + s)
	}
	return v
}

type parser struct {
	s    string
	i    int
	vars map[string]int
}

func (p *parser) eat(tok string) bool {
	if len(p.s)-p.i >= len(tok) && p.s[p.i:p.i+len(tok)] == tok {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *parser) and() int {
	v := p.cmp()
	for p.eat("&&") {
		w := p.cmp()
		v = b2i(v != 0 && w != 0)
	}
	return v
}

func (p *parser) cmp() int {
	v := p.add()
	switch {
	case p.eat(">="):
		return b2i(v >= p.add())
	case p.eat("<"):
		return b2i(v < p.add())
	}
	return v
}

func (p *parser) add() int {
	v := p.mul()
	for p.eat("+") {
		v += p.mul()
	}
	return v
}

func (p *parser) mul() int {
	v := p.atom()
	for {
		switch {
		case p.eat("*"):
			v *= p.atom()
		case p.eat("/"):
			v /= p.atom()
		case p.eat("%"):
			v %= p.atom()
		default:
			return v
		}
	}
}

func (p *parser) atom() int {
	if p.eat("(") {
		v := p.and()
		if !p.eat(")") {
			panic("missing ) in " + p.s)
		}
		return v
	}
	j := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.s) && (p.s[p.i] == '_' || p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] >= 'a' && p.s[p.i] <= 'z') {
		p.i++
	}
	tok := p.s[j:p.i]
	if v, ok := p.vars[tok]; ok {
		return v
	}
	n := 0
	neg := tok != "" && tok[0] == '-'
	for _, c := range tok[b2i(neg):] {
		if c < '0' || c > '9' {
			panic("bad token " + tok + " in " + p.s)
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRenderAgreesWithIndex checks the C expressions against Index on random stacks.
func TestRenderAgreesWithIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 200 {
		s := Contiguous(2+r.IntN(3), 1+r.IntN(4), 2)
		for range 4 {
			n := len(s.Shape())
			switch r.IntN(5) {
			case 0:
				s = s.Permute(r.Perm(n))
			case 1:
				s = s.Reshape([]int{Prod(s.Shape())})
			case 2:
				p := make([][2]int, n)
				for i := range p {
					p[i] = [2]int{r.IntN(2), r.IntN(3)}
				}
				s = s.Pad(p)
			case 3:
				f := make([]bool, n)
				f[r.IntN(n)] = true
				s = s.Flip(f)
			case 4:
				sh := s.Shape()
				if sh[0]%2 == 0 {
					s = s.Reshape(append([]int{2, sh[0] / 2}, sh[1:]...))
				}
			}
		}
		shape := s.Shape()
		names := make([]string, len(shape))
		for i := range names {
			names[i] = fmt.Sprintf("gidx%d", i)
		}
		idxExpr, validExpr := s.Render(names)
		for i := range Prod(shape) {
			idx := unravel(i, shape)
			vars := map[string]int{}
			for d, v := range idx {
				vars[names[d]] = v
			}
			want, ok := s.Index(idx)
			gotOK := validExpr == "" || eval(validExpr, vars) != 0
			if gotOK != ok || (ok && eval(idxExpr, vars) != want) {
				t.Fatalf("iteration %d at %v: rendered (%s valid %s) disagrees with Index (%d, %v); views %v",
					iter, idx, idxExpr, validExpr, want, ok, s.Views)
			}
		}
	}
}

// TestLinDivModExhaustive checks the simplified division and remainder of random linear
// expressions against plain arithmetic for every value of their variables.
func TestLinDivModExhaustive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	coefs := []int{1, 2, 3, 4, 8, 16, 17, 51, 64, 256}
	for iter := range 400 {
		var l lin
		names := []string{"a", "b", "c"}
		his := make([]int, len(names))
		for i, n := range names {
			his[i] = 1 + r.IntN(20)
			l = l.add(variable(n, his[i]).mul(coefs[r.IntN(len(coefs))]))
		}
		l = l.add(lin{k: r.IntN(40)})
		p := []int{2, 4, 16, 17, 51, 64, 256, 4096}[r.IntN(8)]
		d, m := l.div(p).String(), l.mod(p).String()
		for a := range his[0] + 1 {
			for b := range his[1] + 1 {
				for c := range his[2] + 1 {
					vars := map[string]int{"a": a, "b": b, "c": c}
					x := eval(l.String(), vars)
					if got := eval(d, vars); got != x/p {
						t.Fatalf("iteration %d: (%s)/%d rendered %s = %d at %v, want %d", iter, l, p, d, got, vars, x/p)
					}
					if got := eval(m, vars); got != x%p {
						t.Fatalf("iteration %d: (%s)%%%d rendered %s = %d at %v, want %d", iter, l, p, m, got, vars, x%p)
					}
				}
			}
		}
	}
}

// TestEqualAgreesWithKey: Equal says two stacks are the same exactly when their Keys do.
func TestEqualAgreesWithKey(t *testing.T) {
	base := Contiguous(2, 3, 4)
	stacks := []Stack{
		base, Contiguous(2, 3, 4), Contiguous(6, 4), base.Reshape([]int{6, 4}), base.Permute([]int{2, 0, 1}),
		base.Permute([]int{2, 0, 1}).Reshape([]int{4, 6}), base.Pad([][2]int{{0, 0}, {1, 0}, {0, 0}}),
		base.Pad([][2]int{{0, 0}, {0, 1}, {0, 0}}), base.Shrink([][2]int{{0, 2}, {1, 3}, {0, 4}}),
		base.Flip([]bool{false, true, false}), Contiguous(2, 1, 4).Expand([]int{2, 3, 4}), Contiguous(2, 3, 4),
	}
	for i, a := range stacks {
		for j, b := range stacks {
			if got, want := a.Equal(b), a.Key() == b.Key(); got != want {
				t.Errorf("stacks %d and %d: Equal %v, Keys equal %v (%s vs %s)", i, j, got, want, a.Key(), b.Key())
			}
		}
	}
	if !base.Equal(stacks[1]) || base.Equal(stacks[2]) {
		t.Error("Equal misses the obvious cases")
	}
}
