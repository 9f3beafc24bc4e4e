package onnx

import (
	"context"
	"fmt"
)

// RunOptions configures Run.
type RunOptions struct {
	Device string // framework device name; "" = the default ($DEVICE or CPU)
}

// Run evaluates m's graph on inputs (one per graph input that is not an initializer, in
// order) and returns the graph outputs as host values.
func Run(ctx context.Context, m *Model, inputs []Value, opt RunOptions) ([]Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, n := range m.Graph.Nodes {
		return nil, fmt.Errorf("node %q: op %s (opset %d) is not supported", n.Name, n.OpType, m.Opset(n.Domain))
	}
	return nil, fmt.Errorf("graph has no nodes")
}
