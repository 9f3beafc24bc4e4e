package onnx

import (
	"fmt"
	"regexp"
	"strings"
)

// String ops run on the host: the framework has no string dtype. Their numeric outputs
// (masks, counts) become framework tensors.

func strVal(s []string, dims []int64) *val {
	h := &Tensor{Type: String, Dims: dims}
	for _, x := range s {
		h.Strings = append(h.Strings, []byte(x))
	}
	return &val{dt: String, str: h, host: h}
}

func strs(v *val) ([]string, error) {
	if v.str == nil {
		return nil, fmt.Errorf("input is %v, want string", v.dt)
	}
	out := make([]string, len(v.str.Strings))
	for i, b := range v.str.Strings {
		out[i] = string(b)
	}
	return out, nil
}

func init() {
	ops["StringConcat"] = func(c *call, in []*val) ([]*val, error) {
		a, err := strs(in[0])
		if err != nil {
			return nil, err
		}
		b, err := strs(in[1])
		if err != nil {
			return nil, err
		}
		da, db := in[0].str.Dims, in[1].str.Dims
		outDims := toInt64s(broadcastShapes(toInts(da), toInts(db)))
		n := 1
		for _, d := range outDims {
			n *= int(d)
		}
		out := make([]string, n)
		for i := range out {
			out[i] = a[bcastIndex(i, outDims, da)] + b[bcastIndex(i, outDims, db)]
		}
		return one(strVal(out, outDims))
	}
	ops["RegexFullMatch"] = func(c *call, in []*val) ([]*val, error) {
		s, err := strs(in[0])
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile("^(?:" + c.str("pattern", "") + ")$")
		if err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
		out := make([]bool, len(s))
		for i, x := range s {
			out[i] = re.MatchString(x)
		}
		return one(tv(c.slice(out, toInts(in[0].str.Dims)...), Bool))
	}
	ops["StringNormalizer"] = func(c *call, in []*val) ([]*val, error) {
		s, err := strs(in[0])
		if err != nil {
			return nil, err
		}
		sensitive := c.int("is_case_sensitive", 0) == 1
		stop := map[string]bool{}
		if a := c.attr("stopwords"); a != nil {
			for _, w := range a.Strings {
				k := string(w)
				if !sensitive {
					k = strings.ToLower(k)
				}
				stop[k] = true
			}
		}
		var out []string
		for _, x := range s {
			k := x
			if !sensitive {
				k = strings.ToLower(k)
			}
			if stop[k] {
				continue
			}
			switch c.str("case_change_action", "NONE") {
			case "LOWER":
				x = strings.ToLower(x)
			case "UPPER":
				x = strings.ToUpper(x)
			}
			out = append(out, x)
		}
		dims := in[0].str.Dims
		if len(out) == 0 {
			out = []string{""}
		}
		if len(dims) == 2 {
			return one(strVal(out, []int64{1, int64(len(out))}))
		}
		return one(strVal(out, []int64{int64(len(out))}))
	}
	ops["StringSplit"] = func(c *call, in []*val) ([]*val, error) {
		s, err := strs(in[0])
		if err != nil {
			return nil, err
		}
		delim := c.str("delimiter", "")
		maxSplit := int(c.int("maxsplit", -1))
		parts := make([][]string, len(s))
		width := 0
		for i, x := range s {
			var p []string
			if delim == "" {
				f := strings.Fields(x)
				if maxSplit >= 0 && len(f) > maxSplit+1 {
					// keep the remainder after maxSplit splits, as Python does
					rest := x
					p = nil
					for k := 0; k < maxSplit; k++ {
						rest = strings.TrimLeft(rest, " \t\n\r\v\f")
						j := strings.IndexAny(rest, " \t\n\r\v\f")
						p = append(p, rest[:j])
						rest = rest[j:]
					}
					p = append(p, strings.TrimLeft(rest, " \t\n\r\v\f"))
				} else {
					p = f
				}
			} else {
				p = strings.SplitN(x, delim, maxSplit+1)
				if maxSplit < 0 {
					p = strings.Split(x, delim)
				}
			}
			parts[i] = p
			width = max(width, len(p))
		}
		var out []string
		counts := make([]int64, len(s))
		for i, p := range parts {
			counts[i] = int64(len(p))
			for j := 0; j < width; j++ {
				if j < len(p) {
					out = append(out, p[j])
				} else {
					out = append(out, "")
				}
			}
		}
		dims := append(append([]int64{}, in[0].str.Dims...), int64(width))
		return []*val{strVal(out, dims), c.konst(counts, toInts(in[0].str.Dims)...)}, nil
	}
}

func toInts(s []int64) []int {
	out := make([]int, len(s))
	for i, x := range s {
		out[i] = int(x)
	}
	return out
}

// bcastIndex maps flat index i of the broadcast shape out to the flat index in shape in.
func bcastIndex(i int, out, in []int64) int {
	idx, stride := 0, 1
	for d := len(out) - 1; d >= 0; d-- {
		co := i % int(out[d])
		i /= int(out[d])
		k := d - (len(out) - len(in))
		if k >= 0 {
			if in[k] != 1 {
				idx += co * stride
			}
			stride *= int(in[k])
		}
	}
	return idx
}
