package onnx

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// UnpackSuite extracts a .tgz of node cases into dst, refusing entries that would land
// outside it.
func UnpackSuite(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("unpack suite: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("unpack suite %s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack suite %s: %w", tgz, err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("unpack suite %s: entry %q leaves the destination", tgz, h.Name)
		}
		path := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("unpack suite: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("unpack suite: %w", err)
			}
			out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return fmt.Errorf("unpack suite: %w", err)
			}
			_, err = io.Copy(out, io.LimitReader(tr, maxFileSize))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack suite %s: %w", h.Name, err)
			}
		}
	}
}

// Case is one node test case folder: model.onnx plus test_data_set_N folders.
type Case struct {
	Name string // folder name, e.g. "test_abs"
	Dir  string
}

// ListCases finds the test_* folders under dir that hold a model.onnx, sorted by name.
func ListCases(dir string) ([]Case, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	var cases []Case
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, "model.onnx")); err == nil {
			cases = append(cases, Case{Name: e.Name(), Dir: p})
		}
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	return cases, nil
}

// LoadData reads input_N.pb and output_N.pb of test_data_set_<set>, decoding each as the
// kind the model's graph input or output declares.
func (c Case) LoadData(m *Model, set int) (inputs, outputs []Value, err error) {
	dir := filepath.Join(c.Dir, fmt.Sprintf("test_data_set_%d", set))
	load := func(prefix string, infos []*ValueInfo) ([]Value, error) {
		var vals []Value
		for i := 0; ; i++ {
			p := filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i))
			if _, err := os.Stat(p); err != nil {
				break
			}
			var typ *Type
			if i < len(infos) {
				typ = infos[i].Type
			}
			v, err := LoadValue(p, typ)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
		return vals, nil
	}
	// Graph inputs that are initializers have no data files; only the rest are fed.
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	var fed []*ValueInfo
	for _, vi := range m.Graph.Inputs {
		if !inits[vi.Name] {
			fed = append(fed, vi)
		}
	}
	if inputs, err = load("input", fed); err != nil {
		return nil, nil, fmt.Errorf("case %s: %w", c.Name, err)
	}
	if outputs, err = load("output", m.Graph.Outputs); err != nil {
		return nil, nil, fmt.Errorf("case %s: %w", c.Name, err)
	}
	return inputs, outputs, nil
}
