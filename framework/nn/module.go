// Package nn holds neural-network layers and losses built from tensor ops, and the walk that
// finds a model's parameters: a model is any struct whose fields (directly, through pointers,
// slices, arrays or nested structs) hold *tensor.Tensor values or other layers.
package nn

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"unicode"

	"github.com/gradforge/gradforge/framework/tensor"
)

type T = tensor.Tensor

// Named is a tensor of a model with its dotted path, e.g. "conv1.weight".
type Named struct {
	Name   string
	Tensor *T
}

// State lists every tensor of a model (parameters and buffers such as BatchNorm's running
// statistics) with its dotted name, in field order. A field tagged `nn:"-"` is skipped and
// `nn:"name"` renames it; names are otherwise the field names with a lower-case first letter.
func State(model any) []Named {
	var out []Named
	seen := map[*T]bool{}
	walk(reflect.ValueOf(model), "", func(name string, t *T) {
		if !seen[t] {
			seen[t] = true
			out = append(out, Named{name, t})
		}
	})
	return out
}

// Parameters lists the tensors of a model that take gradients.
func Parameters(model any) []*T {
	var out []*T
	for _, n := range State(model) {
		if n.Tensor.RequiresGrad {
			out = append(out, n.Tensor)
		}
	}
	return out
}

var tensorType = reflect.TypeOf((*T)(nil))

func walk(v reflect.Value, path string, visit func(string, *T)) {
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "." + b
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Type() == tensorType {
			visit(path, v.Interface().(*T))
			return
		}
		walk(v.Elem(), path, visit)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name := lowerFirst(f.Name)
			if tag := f.Tag.Get("nn"); tag == "-" {
				continue
			} else if tag != "" {
				name = tag
			}
			walk(v.Field(i), join(path, name), visit)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walk(v.Index(i), join(path, fmt.Sprint(i)), visit)
		}
	}
}

func lowerFirst(s string) string {
	r := []rune(s)
	if len(r) > 1 && unicode.IsUpper(r[1]) { // "BN1" stays readable as "bn1"
		return strings.ToLower(s)
	}
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// Trainer is a layer that behaves differently in training and evaluation.
type Trainer interface{ SetTraining(on bool) }

// Train switches every layer of model that has a training mode (BatchNorm, Dropout) on or off.
func Train(model any, on bool) {
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		if v.CanInterface() {
			if tr, ok := v.Interface().(Trainer); ok && !(v.Kind() == reflect.Pointer && v.IsNil()) {
				tr.SetTraining(on)
			}
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() && v.Type() != tensorType {
				visit(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					if f := v.Field(i); f.CanAddr() {
						visit(f.Addr())
					} else {
						visit(f)
					}
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				visit(v.Index(i))
			}
		}
	}
	visit(reflect.ValueOf(model))
}

// uniform is a parameter drawn from U(-bound, bound), PyTorch's default layer init.
func uniform(bound float64, shape ...int) *T {
	return tensor.Rand(shape...).Mul(2 * bound).Sub(bound).Contiguous().SetRequiresGrad(true)
}

func fanIn(shape []int) int {
	n := 1
	for _, d := range shape[1:] {
		n *= d
	}
	return n
}

// kaiming is PyTorch's default weight init for Linear and Conv: U(±1/√fan_in).
func kaiming(shape ...int) *T { return uniform(1/math.Sqrt(float64(fanIn(shape))), shape...) }
