package onnx

import (
	"fmt"
	"strings"
)

// TfIdfVectorizer counts pooled n-grams (with skips) on the host; the counts become a
// framework tensor.

func init() {
	ops["TfIdfVectorizer"] = func(c *call, in []*val) ([]*val, error) {
		var items []string
		var dims []int
		if in[0].str != nil {
			s, err := strs(in[0])
			if err != nil {
				return nil, err
			}
			items, dims = s, toInts(in[0].str.Dims)
		} else {
			for _, v := range in[0].hostInts() {
				items = append(items, fmt.Sprint(v))
			}
			dims = in[0].t.Shape()
		}
		var pool []string
		if a := c.attr("pool_int64s"); a != nil {
			for _, v := range a.Ints {
				pool = append(pool, fmt.Sprint(v))
			}
		} else if a := c.attr("pool_strings"); a != nil {
			for _, v := range a.Strings {
				pool = append(pool, string(v))
			}
		}
		counts, _ := c.ints("ngram_counts")
		indexes, _ := c.ints("ngram_indexes")
		weights := c.floats("weights")
		minN, maxN := int(c.int("min_gram_length", 1)), int(c.int("max_gram_length", 1))
		maxSkip := int(c.int("max_skip_count", 0))
		mode := c.str("mode", "TF")
		// Map each pooled n-gram (joined by \x00) to its ordinal.
		ord := map[string]int{}
		k := 0
		for n := 1; n <= len(counts); n++ {
			start := counts[n-1]
			end := len(pool)
			if n < len(counts) {
				end = counts[n]
			}
			for i := start; i+n <= end; i += n {
				ord[strings.Join(pool[i:i+n], "\x00")] = k
				k++
			}
		}
		width := 0
		for _, i := range indexes {
			width = max(width, i+1)
		}
		rows, cols := 1, len(items)
		if len(dims) == 2 {
			rows, cols = dims[0], dims[1]
		}
		out := make([]float32, rows*width)
		for r := 0; r < rows; r++ {
			row := items[r*cols : (r+1)*cols]
			for n := max(minN, 1); n <= maxN; n++ {
				skips := maxSkip
				if n == 1 {
					skips = 0
				}
				for sk := 0; sk <= skips; sk++ {
					step := sk + 1
					for i := 0; i+(n-1)*step < len(row); i++ {
						g := make([]string, n)
						for j := 0; j < n; j++ {
							g[j] = row[i+j*step]
						}
						if o, ok := ord[strings.Join(g, "\x00")]; ok && o < len(indexes) {
							out[r*width+indexes[o]]++
						}
					}
				}
			}
		}
		for i := range out {
			w := float32(1)
			if len(weights) > 0 {
				w = float32(weights[indexOf(indexes, i%width)])
			}
			switch mode {
			case "IDF":
				if out[i] > 0 {
					out[i] = w
				}
			case "TFIDF":
				out[i] *= w
			}
		}
		shape := []int{width}
		if len(dims) == 2 {
			shape = []int{rows, width}
		}
		return one(tv(c.slice(out, shape...), Float))
	}
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}
