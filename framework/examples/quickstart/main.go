// Command quickstart is gradforge's first example: build a computation lazily, then realize
// it. Run it with DEBUG=2 to see that a*b+c, the ReLU and the row sums are one fused kernel:
//
//	DEBUG=2 go run ./framework/examples/quickstart
package main

import (
	"fmt"
	"log"

	"github.com/gradforge/gradforge/framework/schedule"
	"github.com/gradforge/gradforge/framework/tensor"
)

func main() {
	tensor.ManualSeed(0)
	a := tensor.Rand(1024, 1024)
	b := tensor.Rand(1024, 1024)
	c := tensor.Randn(1024)                         // broadcasts over the rows
	if err := tensor.Realize(a, b, c); err != nil { // upload the inputs
		log.Fatal(err)
	}

	before := schedule.Launches()
	rows := a.Mul(b).Add(c).Relu().Sum(1) // nothing runs yet: this only builds a graph
	v, err := rows.Float32s()             // schedule, compile (cached on disk), run
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("row sums %v: first %.4f, kernels launched: %d\n", rows.Shape(), v[0], schedule.Launches()-before)

	x := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	w := tensor.Eye(3).Mul(2)
	fmt.Println(x.Matmul(w).Softmax(-1))
}
