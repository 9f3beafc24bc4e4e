// Package framework is gradforge's tensor framework: lazy tensors over a small set of
// primitive ops, fused into kernels and compiled for CPU (C), CUDA and OpenCL. Its
// sub-packages hold the tensor front end, the scheduler, code generation, the runtimes,
// autograd, nn, optim and the ONNX importer.
package framework
