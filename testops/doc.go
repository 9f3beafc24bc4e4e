// Package testops is the parity suite: each op case is declared once, run through the
// framework and through PyTorch, and compared forward and backward.
package testops
