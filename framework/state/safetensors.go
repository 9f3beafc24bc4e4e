// Package state saves and loads tensors: safetensors files (read and written here, the header
// validated before any data is trusted) and NumPy .npy files, plus helpers that move a
// model's nn.State in and out of them.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/nn"
	"github.com/gradforge/gradforge/framework/tensor"
)

// maxHeader bounds the JSON header, as the format's reference reader does (100 MB).
const maxHeader = 100 << 20

var stNames = map[dtype.DType]string{
	dtype.Bool: "BOOL", dtype.Uint8: "U8", dtype.Int8: "I8", dtype.Int32: "I32", dtype.Int64: "I64",
	dtype.Float16: "F16", dtype.BFloat16: "BF16", dtype.Float32: "F32",
}

type entry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// Save writes tensors to a safetensors file, names sorted, with optional string metadata.
func Save(path string, tensors map[string]*tensor.Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var blobs [][]byte
	off := 0
	for _, n := range names {
		t := tensors[n]
		st, ok := stNames[t.DType()]
		if !ok {
			return fmt.Errorf("save %s: dtype %s has no safetensors name", n, t.DType())
		}
		b, err := t.Data()
		if err != nil {
			return fmt.Errorf("save %s: %w", n, err)
		}
		header[n] = entry{st, t.Shape(), [2]int{off, off + len(b)}}
		blobs = append(blobs, b)
		off += len(b)
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 { // the data starts 8-byte aligned
		h = append(h, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	f.Write(n[:])
	f.Write(h)
	for _, b := range blobs {
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f.Close()
}

// Load reads every tensor of a safetensors file. It checks the header before trusting it:
// known dtypes, shapes that match their byte ranges, ranges inside the file that tile the
// data exactly (sorted, no gaps, no overlaps).
func Load(path string) (map[string]*tensor.Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	ts, meta, err := Decode(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, meta, nil
}

// Decode reads a safetensors stream of size bytes (see Load).
func Decode(r io.Reader, size int64) (map[string]*tensor.Tensor, map[string]string, error) {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, nil, errors.New("safetensors: file shorter than its 8-byte header length")
	}
	hl := binary.LittleEndian.Uint64(n[:])
	if hl > maxHeader || int64(hl) > size-8 {
		return nil, nil, fmt.Errorf("safetensors: header length %d does not fit a %d-byte file", hl, size)
	}
	hb := make([]byte, hl)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, fmt.Errorf("safetensors: read header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header is not a JSON object: %w", err)
	}
	var meta map[string]string
	type named struct {
		name string
		e    entry
		dt   dtype.DType
	}
	var es []named
	for name, m := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(m, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(m, &e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		dt, ok := dtypeOf(e.DType)
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %q has unknown dtype %q", name, e.DType)
		}
		count := 1
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && count > (1<<40)/d) {
				return nil, nil, fmt.Errorf("safetensors: tensor %q has bad shape %v", name, e.Shape)
			}
			count *= d
		}
		if e.Offsets[1]-e.Offsets[0] != count*dt.Size() || e.Offsets[0] < 0 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: range %v holds %d bytes, shape %v of %s needs %d",
				name, e.Offsets, e.Offsets[1]-e.Offsets[0], e.Shape, dt, count*dt.Size())
		}
		es = append(es, named{name, e, dt})
	}
	slices.SortFunc(es, func(a, b named) int { return a.e.Offsets[0] - b.e.Offsets[0] })
	end := 0
	for _, x := range es {
		if x.e.Offsets[0] != end {
			return nil, nil, fmt.Errorf("safetensors: tensor %q starts at %d, want %d (ranges must tile the data without gaps or overlaps)", x.name, x.e.Offsets[0], end)
		}
		end = x.e.Offsets[1]
	}
	if int64(end) != size-8-int64(hl) {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d data bytes, the file holds %d", end, size-8-int64(hl))
	}
	data := make([]byte, end)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, nil, fmt.Errorf("safetensors: read data: %w", err)
	}
	out := map[string]*tensor.Tensor{}
	for _, x := range es {
		out[x.name] = tensor.FromBytes(x.dt, data[x.e.Offsets[0]:x.e.Offsets[1]], x.e.Shape...)
	}
	return out, meta, nil
}

func dtypeOf(s string) (dtype.DType, bool) {
	for d, n := range stNames {
		if n == s {
			return d, true
		}
	}
	return 0, false
}

// SaveModel writes a model's nn.State to a safetensors file.
func SaveModel(path string, model any, meta map[string]string) error {
	m := map[string]*tensor.Tensor{}
	for _, n := range nn.State(model) {
		m[n.Name] = n.Tensor
	}
	return Save(path, m, meta)
}

// LoadModel fills a model's tensors from a safetensors file. Every tensor of the model must
// be in the file with its shape; the dtype is converted when it differs.
func LoadModel(path string, model any) error {
	ts, _, err := Load(path)
	if err != nil {
		return err
	}
	for _, n := range nn.State(model) {
		t, ok := ts[n.Name]
		if !ok {
			return fmt.Errorf("%s: no tensor %q for the model", path, n.Name)
		}
		if !slices.Equal(t.Shape(), n.Tensor.Shape()) {
			return fmt.Errorf("%s: tensor %q has shape %v, the model wants %v", path, n.Name, t.Shape(), n.Tensor.Shape())
		}
		n.Tensor.Assign(t)
		if err := n.Tensor.Realize(); err != nil {
			return err
		}
	}
	return nil
}
