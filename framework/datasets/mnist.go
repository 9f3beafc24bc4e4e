// Package datasets loads training data: Fashion-MNIST from the idx files of Debian's
// dataset-fashion-mnist package, and a Loader that batches and shuffles any in-memory set.
package datasets

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/gradforge/gradforge/framework/tensor"
)

// FashionMNISTDirs are where the Debian package puts the files, searched in order after
// $FASHION_MNIST_DIR.
var FashionMNISTDirs = []string{"/usr/share/datasets/fashion-mnist"}

// Set is a labelled image set in memory: Images [n, 1, 28, 28] scaled to [0, 1], Labels [n].
type Set struct {
	Images []float32
	Labels []int32
	N      int
	Shape  []int // shape of one sample, e.g. [1, 28, 28]
}

// FashionMNIST loads the "train" or "t10k" split.
func FashionMNIST(split string) (*Set, error) {
	if split != "train" && split != "t10k" {
		return nil, fmt.Errorf("fashion-mnist: split %q, want train or t10k", split)
	}
	dirs := FashionMNISTDirs
	if d := os.Getenv("FASHION_MNIST_DIR"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	for _, dir := range dirs {
		img := filepath.Join(dir, split+"-images-idx3-ubyte.gz")
		if _, err := os.Stat(img); err != nil {
			continue
		}
		return loadIdx(img, filepath.Join(dir, split+"-labels-idx1-ubyte.gz"))
	}
	return nil, fmt.Errorf("fashion-mnist %s files not found in %s: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR",
		split, strings.Join(dirs, ", "))
}

func loadIdx(images, labels string) (*Set, error) {
	img, idims, err := readIdx(images, 3)
	if err != nil {
		return nil, err
	}
	lab, ldims, err := readIdx(labels, 1)
	if err != nil {
		return nil, err
	}
	if idims[0] != ldims[0] {
		return nil, fmt.Errorf("fashion-mnist: %d images but %d labels", idims[0], ldims[0])
	}
	s := &Set{N: idims[0], Shape: []int{1, idims[1], idims[2]}, Images: make([]float32, len(img)), Labels: make([]int32, len(lab))}
	for i, p := range img {
		s.Images[i] = float32(p) / 255
	}
	for i, l := range lab {
		if l > 9 {
			return nil, fmt.Errorf("%s: label %d at %d is not a class 0-9", labels, l, i)
		}
		s.Labels[i] = int32(l)
	}
	return s, nil
}

// readIdx reads a gzipped idx file of unsigned bytes with the given number of dims.
func readIdx(path string, ndim int) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		r = z
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 8 || int(magic[3]) != ndim {
		return nil, nil, fmt.Errorf("%s: not an idx file of unsigned bytes with %d dims (magic % x)", path, ndim, magic)
	}
	dims := make([]int, ndim)
	n := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if d == 0 || d > 1<<24 {
			return nil, nil, fmt.Errorf("%s: dim %d of size %d", path, i, d)
		}
		dims[i] = int(d)
		n *= int(d)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, nil, fmt.Errorf("%s: want %d bytes of data: %w", path, n, err)
	}
	return data, dims, nil
}

// Loader yields batches of a Set, reshuffled each epoch when Shuffle is set.
type Loader struct {
	Set     *Set
	Batch   int
	Shuffle bool
	Rand    *rand.Rand // nil: a fixed seed, so runs repeat
	order   []int
	pos     int
}

// ErrDone ends an epoch.
var ErrDone = errors.New("epoch done")

// Len is the number of batches per epoch (the last may be short).
func (l *Loader) Len() int { return (l.Set.N + l.Batch - 1) / l.Batch }

// Reset starts a new epoch.
func (l *Loader) Reset() {
	if l.order == nil {
		l.order = make([]int, l.Set.N)
		for i := range l.order {
			l.order[i] = i
		}
		if l.Rand == nil {
			l.Rand = rand.New(rand.NewPCG(1, 2))
		}
	}
	if l.Shuffle {
		l.Rand.Shuffle(len(l.order), func(i, j int) { l.order[i], l.order[j] = l.order[j], l.order[i] })
	}
	l.pos = 0
}

// Next returns the next batch as tensors x [b, sample shape...] (float32) and y [b] (int32),
// or ErrDone at the end of the epoch.
func (l *Loader) Next() (x, y *tensor.Tensor, err error) {
	if l.order == nil {
		l.Reset()
	}
	if l.pos >= l.Set.N {
		return nil, nil, ErrDone
	}
	end := min(l.pos+l.Batch, l.Set.N)
	per := len(l.Set.Images) / l.Set.N
	xb := make([]float32, 0, (end-l.pos)*per)
	yb := make([]int32, 0, end-l.pos)
	for _, i := range l.order[l.pos:end] {
		xb = append(xb, l.Set.Images[i*per:(i+1)*per]...)
		yb = append(yb, l.Set.Labels[i])
	}
	l.pos = end
	return tensor.FromSlice(xb, append([]int{len(yb)}, l.Set.Shape...)...), tensor.FromSlice(yb, len(yb)), nil
}
