package testops

import (
	"fmt"

	"github.com/gradforge/gradforge/framework/dtype"
	"github.com/gradforge/gradforge/framework/tensor"
)

// backwarder is autograd's entry point on a loss tensor.
type backwarder interface{ Backward() }

// fromBlob makes a framework tensor (on $DEVICE) from a protocol blob.
func fromBlob(b Blob, _ string) *tensor.Tensor {
	d, err := dtype.Parse(b.DType)
	if err != nil {
		panic(fmt.Sprintf("testops: %v", err))
	}
	return tensor.FromBytes(d, b.Data, b.Shape...)
}

// toBlob realizes a framework tensor and returns its bytes as a protocol blob.
func toBlob(t *tensor.Tensor) (Blob, error) {
	data, err := t.Data()
	if err != nil {
		return Blob{}, err
	}
	return Blob{Shape: t.Shape(), DType: t.DType().String(), Data: data}, nil
}
