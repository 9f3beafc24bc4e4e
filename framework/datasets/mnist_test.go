package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeIdx(t *testing.T, path string, dims []uint32, data []byte) {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write([]byte{0, 0, 8, byte(len(dims))})
	binary.Write(z, binary.BigEndian, dims)
	z.Write(data)
	z.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoaderBatchesAndShuffles(t *testing.T) {
	dir := t.TempDir()
	img := make([]byte, 5*2*2)
	for i := range img {
		img[i] = byte(i * 12)
	}
	writeIdx(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), []uint32{5, 2, 2}, img)
	writeIdx(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), []uint32{5}, []byte{0, 1, 2, 3, 4})
	t.Setenv("FASHION_MNIST_DIR", dir)
	s, err := FashionMNIST("train")
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 5 || s.Images[1] != 12.0/255 || s.Labels[4] != 4 {
		t.Fatalf("loaded %d samples, image[1]=%v label[4]=%v", s.N, s.Images[1], s.Labels[4])
	}
	l := &Loader{Set: s, Batch: 2, Shuffle: true}
	seen := map[int32]bool{}
	batches := 0
	for {
		x, y, err := l.Next()
		if errors.Is(err, ErrDone) {
			break
		}
		batches++
		ys, _ := y.Int64s()
		xs, _ := x.Float32s()
		for i, v := range ys {
			seen[int32(v)] = true
			if xs[i*4] != float32(v*4*12)/255 { // each image starts with 4·label·12
				t.Fatalf("image and label out of step: label %d, first pixel %v", v, xs[i*4])
			}
		}
	}
	if batches != l.Len() || len(seen) != 5 {
		t.Fatalf("%d batches covering %d labels, want %d and 5", batches, len(seen), l.Len())
	}
}

func TestMissingAndCorruptFiles(t *testing.T) {
	t.Setenv("FASHION_MNIST_DIR", t.TempDir())
	old := FashionMNISTDirs
	FashionMNISTDirs = nil
	defer func() { FashionMNISTDirs = old }()
	if _, err := FashionMNIST("train"); err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Fatalf("missing files: %v, want a hint naming the package", err)
	}
	dir := os.Getenv("FASHION_MNIST_DIR")
	writeIdx(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), []uint32{2, 2, 2}, make([]byte, 3)) // short
	writeIdx(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), []uint32{2}, []byte{0, 1})
	if _, err := FashionMNIST("t10k"); err == nil {
		t.Fatal("a truncated image file loaded")
	}
	if _, err := FashionMNIST("validation"); err == nil {
		t.Fatal("an unknown split loaded")
	}
}

// TestRealFashionMNIST reads the Debian package's files when they are installed.
func TestRealFashionMNIST(t *testing.T) {
	s, err := FashionMNIST("t10k")
	if err != nil {
		if os.Getenv("GRADFORGE_TEST_DATASETS") == "require" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if s.N != 10000 || len(s.Images) != 10000*28*28 {
		t.Fatalf("t10k has %d samples and %d pixels", s.N, len(s.Images))
	}
	counts := make([]int, 10)
	for _, l := range s.Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n != 1000 {
			t.Fatalf("class %d has %d test samples, want 1000", c, n)
		}
	}
}
