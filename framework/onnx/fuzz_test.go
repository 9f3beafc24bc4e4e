package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// FuzzDecodeModel feeds arbitrary bytes to the model, tensor, sequence and optional
// decoders: they must return an error or a value, never panic or allocate wildly. The kept
// corpus is in testdata/fuzz/FuzzDecodeModel; a few real models are added as seeds.
func FuzzDecodeModel(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	if dir := os.Getenv("GRADFORGE_CONFORMANCE"); dir != "" {
		matches, _ := filepath.Glob(filepath.Join(dir, "onnx-light", "*.onnx"))
		for _, p := range matches {
			if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeModel(b); err == nil && m.Graph == nil {
			t.Fatal("DecodeModel returned a model without a graph and no error")
		}
		if tt, err := DecodeTensor(b); err == nil && tt.Type != String && !tt.hasExt {
			if len(tt.Raw) != tt.Len()*tt.Type.Size() {
				t.Fatalf("tensor %v %v: %d raw bytes for %d elements", tt.Type, tt.Dims, len(tt.Raw), tt.Len())
			}
			if _, err := tt.Float64s(); err != nil {
				t.Fatalf("decoded tensor cannot be read: %v", err)
			}
		}
		DecodeSequence(b)
		DecodeOptional(b)
	})
}

// fuzzSeeds builds small valid and nearly valid messages by hand so the fuzzer starts from
// the interesting shapes of the format.
func fuzzSeeds() [][]byte {
	msg := func(num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tensor := cat(varint(1, 2), varint(1, 2), varint(2, uint64(Float)), msg(9, make([]byte, 16)), msg(8, []byte("w")))
	absurd := cat(varint(1, 1<<40), varint(1, 1<<40), varint(2, uint64(Float)))
	negative := cat(varint(1, ^uint64(0)), varint(2, uint64(Int64)))
	node := cat(msg(1, []byte("x")), msg(1, []byte("w")), msg(2, []byte("y")), msg(4, []byte("Add")),
		msg(5, cat(msg(1, []byte("alpha")), varint(20, uint64(AttrFloat)))))
	dim := msg(1, varint(1, 3))
	vi := cat(msg(1, []byte("x")), msg(2, msg(1, cat(varint(1, uint64(Float)), msg(2, cat(dim, msg(1, msg(2, []byte("N")))))))))
	graph := cat(msg(1, node), msg(5, tensor), msg(11, vi), msg(12, vi))
	model := cat(varint(1, 8), msg(7, graph), msg(8, cat(msg(1, nil), varint(2, 17))))
	sub := cat(msg(1, msg(5, cat(msg(1, []byte("then_branch")), msg(6, graph), varint(20, uint64(AttrGraph))))))
	nested := cat(varint(1, 8), msg(7, cat(sub, sub)))
	ext := cat(varint(1, 4), varint(2, uint64(Float)), varint(14, 1), msg(13, cat(msg(1, []byte("location")), msg(2, []byte("../../etc/passwd")))))
	return [][]byte{nil, tensor, absurd, negative, model, nested, ext, model[:len(model)/2], {0xff, 0xff, 0xff}}
}

func TestDecodeRejects(t *testing.T) {
	seeds := fuzzSeeds()
	tests := []struct {
		name string
		b    []byte
	}{
		{"shape with 2^80 elements", seeds[2]},
		{"negative dimension", seeds[3]},
		{"truncated model", seeds[4][:len(seeds[4])/2]},
		{"bad tag", []byte{0xff, 0xff, 0xff}},
		{"raw data of wrong length", func() []byte {
			b := protowire.AppendTag(nil, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, 3)
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(Float))
			b = protowire.AppendTag(b, 9, protowire.BytesType)
			return protowire.AppendBytes(b, make([]byte, 5))
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeTensor(tc.b); err == nil && tc.name != "truncated model" {
				t.Errorf("DecodeTensor accepted %x", tc.b)
			}
			if _, err := DecodeModel(tc.b); err == nil {
				t.Errorf("DecodeModel accepted %x", tc.b)
			}
		})
	}
}

func TestDecodeModelSeed(t *testing.T) {
	m, err := DecodeModel(fuzzSeeds()[4])
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if m.IRVersion != 8 || m.Opset("ai.onnx") != 17 {
		t.Errorf("ir %d opset %d, want 8 and 17", m.IRVersion, m.Opset(""))
	}
	if len(g.Nodes) != 1 || g.Nodes[0].OpType != "Add" || len(g.Nodes[0].Inputs) != 2 || g.Nodes[0].Attr("alpha") == nil {
		t.Errorf("node decoded wrong: %+v", g.Nodes)
	}
	in := g.Inputs[0].Type
	if in.Kind != KindTensor || in.Elem != Float || len(in.Shape) != 2 || in.Shape[0].Value != 3 || in.Shape[1].Param != "N" || in.Shape[1].Known {
		t.Errorf("input type decoded wrong: %+v", in)
	}
	if w := g.Initializers[0]; w.Name != "w" || w.Len() != 4 || len(w.Raw) != 16 {
		t.Errorf("initializer decoded wrong: %+v", w)
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 24)
	data[8+3] = 0x3f
	data[8+2] = 0x80 // float32 1.0 at element 0 of a tensor stored at offset 8
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(loc, off string) []byte {
		kv := func(k, v string) []byte {
			e := protowire.AppendTag(nil, 1, protowire.BytesType)
			e = protowire.AppendString(e, k)
			e = protowire.AppendTag(e, 2, protowire.BytesType)
			e = protowire.AppendString(e, v)
			out := protowire.AppendTag(nil, 13, protowire.BytesType)
			return protowire.AppendBytes(out, e)
		}
		tb := protowire.AppendTag(nil, 1, protowire.VarintType)
		tb = protowire.AppendVarint(tb, 4)
		tb = protowire.AppendTag(tb, 2, protowire.VarintType)
		tb = protowire.AppendVarint(tb, uint64(Float))
		tb = protowire.AppendTag(tb, 8, protowire.BytesType)
		tb = protowire.AppendString(tb, "w")
		tb = protowire.AppendTag(tb, 14, protowire.VarintType)
		tb = protowire.AppendVarint(tb, 1)
		tb = append(tb, kv("location", loc)...)
		tb = append(tb, kv("offset", off)...)
		g := protowire.AppendTag(nil, 5, protowire.BytesType)
		g = protowire.AppendBytes(g, tb)
		m := protowire.AppendTag(nil, 7, protowire.BytesType)
		return protowire.AppendBytes(m, g)
	}
	write := func(b []byte) string {
		p := filepath.Join(dir, "model.onnx")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m, err := LoadModel(write(build("w.bin", "8")))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Graph.Initializers[0].Float64s(); len(v) != 4 || v[0] != 1 {
		t.Errorf("external tensor = %v, want [1 0 0 0]", v)
	}
	for _, bad := range []struct{ loc, off string }{{"../w.bin", "0"}, {"/etc/passwd", "0"}, {"w.bin", "16"}, {"w.bin", "-1"}, {"missing.bin", "0"}} {
		if _, err := LoadModel(write(build(bad.loc, bad.off))); err == nil {
			t.Errorf("location %q offset %s accepted", bad.loc, bad.off)
		}
	}
}

func TestTypedFields(t *testing.T) {
	// float16 1.0 and -2.0 carried in int32_data, and int4 packed pairs in int32_data.
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(Float16))
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendVarint(nil, 0x3c00), 0xc000))
	tt, err := DecodeTensor(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tt.Float64s(); v[0] != 1 || v[1] != -2 {
		t.Errorf("float16 from int32_data = %v, want [1 -2]", v)
	}
	b = protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 3)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(Int4))
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendVarint(nil, 0xF7), 0x01))
	if tt, err = DecodeTensor(b); err != nil {
		t.Fatal(err)
	}
	if v, _ := tt.Int64s(); v[0] != 7 || v[1] != -1 || v[2] != 1 {
		t.Errorf("int4 from int32_data = %v, want [7 -1 1]", v)
	}
}

func TestDecodeNpy(t *testing.T) {
	head := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }"
	head += strings.Repeat(" ", 128-10-len(head)-1) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(head)), 0)
	b = append(b, head...)
	b = append(b, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40)
	tt, err := DecodeNpy(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tt.Float64s(); len(v) != 2 || v[0] != 1 || v[1] != 2 || len(tt.Dims) != 2 {
		t.Errorf("got %v %v, want [2 1] [1 2]", tt.Dims, v)
	}
	if _, err := DecodeNpy(b[:len(b)-1]); err == nil {
		t.Error("short data accepted")
	}
}
