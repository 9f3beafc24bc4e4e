package onnx

import (
	"fmt"

	"github.com/gradforge/gradforge/framework/state"
)

// npyTypes maps numpy dtype descriptors (little-endian or byte-sized) to ONNX types.
var npyTypes = map[string]DataType{
	"<f4": Float, "<f8": Double, "<f2": Float16, "<i8": Int64, "<i4": Int32, "<i2": Int16,
	"|i1": Int8, "|u1": Uint8, "|b1": Bool, "<u2": Uint16, "<u4": Uint32, "<u8": Uint64,
}

// DecodeNpy reads a NumPy .npy file (format 1.x-3.x, C order, little-endian numeric types).
func DecodeNpy(b []byte) (*Tensor, error) {
	h, err := state.ParseNpy(b)
	if err != nil {
		return nil, err
	}
	dt, ok := npyTypes[h.Descr]
	if !ok {
		return nil, fmt.Errorf("npy: unsupported dtype %q", h.Descr)
	}
	if h.Fortran {
		return nil, fmt.Errorf("npy: Fortran order is not supported")
	}
	t := &Tensor{Type: dt, Dims: []int64{}}
	for _, d := range h.Shape {
		t.Dims = append(t.Dims, int64(d))
	}
	n, err := elementCount(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	data := h.Data
	if len(data) != n*dt.Size() {
		return nil, fmt.Errorf("npy: %d data bytes, want %d for %v %v", len(data), n*dt.Size(), dt, t.Dims)
	}
	t.Raw = append([]byte(nil), data...)
	return t, nil
}
