package testops

import "testing"

func TestCompareToleranceUsed(t *testing.T) {
	// atol 1e-5, rtol 1e-4: at want=1000 the tolerance is 0.10001, so an error of 0.05 uses half.
	d := compare([]float64{1000.05, 1, 3}, []float64{1000, 1, 3}, 1e-5, 1e-4)
	if d.Bad != 0 || d.Used < 0.49 || d.Used > 0.5 {
		t.Errorf("compare = %+v, want no bad element and half the tolerance used", d)
	}
	if d := compare([]float64{2}, []float64{1}, 1e-5, 1e-4); d.Bad != 1 || d.Used < 1 {
		t.Errorf("a failing element must use more than its tolerance: %+v", d)
	}
}
