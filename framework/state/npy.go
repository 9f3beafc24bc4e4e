package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

var npyTypes = map[string]dtype.DType{
	"<f4": dtype.Float32, "<f2": dtype.Float16, "<i4": dtype.Int32, "<i8": dtype.Int64,
	"|i1": dtype.Int8, "|u1": dtype.Uint8, "|b1": dtype.Bool,
}

var (
	npyDescr = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyOrder = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// LoadNpy reads a NumPy .npy file (format versions 1 to 3, little-endian numeric dtypes,
// C or Fortran order) as a tensor. float64 arrays are converted to float32.
func LoadNpy(path string) (*tensor.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := DecodeNpy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// NpyHeader is what a .npy file's header says about its array.
type NpyHeader struct {
	Descr   string // numpy dtype descriptor, e.g. "<f4"
	Fortran bool   // column-major data
	Shape   []int
	Count   int    // elements
	Data    []byte // the bytes after the header
}

// ParseNpy reads the header of a .npy file (format versions 1 to 3) and returns it with the
// data that follows, refusing absurd shapes before anything is allocated.
func ParseNpy(b []byte) (*NpyHeader, error) {
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		return nil, fmt.Errorf("npy: missing the \\x93NUMPY magic")
	}
	hlen, start := int(binary.LittleEndian.Uint16(b[8:])), 10
	switch b[6] {
	case 1:
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("npy: truncated header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d", b[6])
	}
	if hlen < 0 || start+hlen > len(b) {
		return nil, fmt.Errorf("npy: header of %d bytes runs past the file", hlen)
	}
	h := string(b[start : start+hlen])
	d, o, s := npyDescr.FindStringSubmatch(h), npyOrder.FindStringSubmatch(h), npyShape.FindStringSubmatch(h)
	if d == nil || o == nil || s == nil {
		return nil, fmt.Errorf("npy: cannot parse header %q", h)
	}
	out := &NpyHeader{Descr: d[1], Fortran: o[1] == "True", Count: 1, Data: b[start+hlen:]}
	for _, f := range strings.Split(s[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 || (v > 0 && out.Count > (1<<40)/v) {
			return nil, fmt.Errorf("npy: bad shape (%s)", s[1])
		}
		out.Shape = append(out.Shape, v)
		out.Count *= v
	}
	return out, nil
}

// DecodeNpy reads the bytes of a .npy file (see LoadNpy).
func DecodeNpy(b []byte) (*tensor.Tensor, error) {
	h, err := ParseNpy(b)
	if err != nil {
		return nil, err
	}
	shape, n, data := h.Shape, h.Count, h.Data
	var t *tensor.Tensor
	if h.Descr == "<f8" { // no float64 on the devices: narrow once here
		if len(data) != 8*n {
			return nil, fmt.Errorf("npy: %d data bytes, want %d for float64 %v", len(data), 8*n, shape)
		}
		f := make([]float32, n)
		for i := range f {
			f[i] = float32(mathFloat64(data[8*i:]))
		}
		t = tensor.FromSlice(f, shapeFor(shape, h.Fortran)...)
	} else {
		dt, ok := npyTypes[h.Descr]
		if !ok {
			return nil, fmt.Errorf("npy: unsupported dtype %q (want one of <f4 <f8 <f2 <i4 <i8 |i1 |u1 |b1)", h.Descr)
		}
		if len(data) != n*dt.Size() {
			return nil, fmt.Errorf("npy: %d data bytes, want %d for %s %v", len(data), n*dt.Size(), dt, shape)
		}
		t = tensor.FromBytes(dt, data, shapeFor(shape, h.Fortran)...)
	}
	if h.Fortran { // Fortran order is the transpose of C order over reversed dims
		perm := make([]int, len(shape))
		for i := range perm {
			perm[i] = len(shape) - 1 - i
		}
		t = t.Permute(perm...)
	}
	return t, nil
}

func shapeFor(shape []int, fortran bool) []int {
	if !fortran {
		return shape
	}
	r := make([]int, len(shape))
	for i, d := range shape {
		r[len(shape)-1-i] = d
	}
	return r
}

func mathFloat64(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
