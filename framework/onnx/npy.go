package onnx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// npyTypes maps numpy dtype descriptors (little-endian or byte-sized) to ONNX types.
var npyTypes = map[string]DataType{
	"<f4": Float, "<f8": Double, "<f2": Float16, "<i8": Int64, "<i4": Int32, "<i2": Int16,
	"|i1": Int8, "|u1": Uint8, "|b1": Bool, "<u2": Uint16, "<u4": Uint32, "<u8": Uint64,
}

var (
	npyDescr = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyOrder = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// DecodeNpy reads a NumPy .npy file (format 1.x-3.x, C order, little-endian numeric types).
func DecodeNpy(b []byte) (*Tensor, error) {
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		return nil, fmt.Errorf("npy: missing magic")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("npy: truncated header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, fmt.Errorf("npy: unsupported version %d", b[6])
	}
	if hlen < 0 || start+hlen > len(b) {
		return nil, fmt.Errorf("npy: header of %d bytes runs past the file", hlen)
	}
	h := string(b[start : start+hlen])
	d, o, s := npyDescr.FindStringSubmatch(h), npyOrder.FindStringSubmatch(h), npyShape.FindStringSubmatch(h)
	if d == nil || o == nil || s == nil {
		return nil, fmt.Errorf("npy: cannot parse header %q", h)
	}
	dt, ok := npyTypes[d[1]]
	if !ok {
		return nil, fmt.Errorf("npy: unsupported dtype %q", d[1])
	}
	if o[1] == "True" {
		return nil, fmt.Errorf("npy: Fortran order is not supported")
	}
	t := &Tensor{Type: dt, Dims: []int64{}}
	for _, f := range strings.Split(s[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("npy: shape %q: %w", s[1], err)
		}
		t.Dims = append(t.Dims, v)
	}
	n, err := elementCount(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	data := b[start+hlen:]
	if len(data) != n*dt.Size() {
		return nil, fmt.Errorf("npy: %d data bytes, want %d for %v %v", len(data), n*dt.Size(), dt, t.Dims)
	}
	t.Raw = append([]byte(nil), data...)
	return t, nil
}
