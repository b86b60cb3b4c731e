package simclr

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/backend/purego"
	"github.com/simclr-go/simclr/tensor"
)

// TestNTXentReference compares loss and gradient with the float64 values
// of the reference (8 rows, d=4, two temperatures). float32 rounding of
// sums over 8 terms keeps us within 1e-5 relative.
func TestNTXentReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/ntxent.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Z     [][]float64 `json:"z"`
		Cases []struct {
			Temperature float64     `json:"temperature"`
			Loss        float64     `json:"loss_mean_2n_f64"`
			LossTF      float64     `json:"loss_official_tf_f64"`
			Grad        [][]float64 `json:"grad_z_f64"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	rows, d := len(ref.Z), len(ref.Z[0])
	zt := tensor.New(rows, d)
	for i, r := range ref.Z {
		for j, v := range r {
			zt.Data[i*d+j] = float32(v)
		}
	}
	for _, c := range ref.Cases {
		tape := autograd.NewTape(purego.New(2))
		z := autograd.NewParam(zt.Clone())
		loss, _ := NTXent(tape, z, float32(c.Temperature))
		if got := float64(loss.Value.Data[0]); math.Abs(got-c.Loss) > 1e-5*c.Loss {
			t.Errorf("tau %g: loss %.7f, want %.7f", c.Temperature, got, c.Loss)
		}
		if math.Abs(2*c.Loss-c.LossTF) > 1e-9 {
			t.Errorf("tau %g: reference TF loss is not twice the mean", c.Temperature)
		}
		if err := tape.Backward(loss); err != nil {
			t.Fatal(err)
		}
		for i, r := range c.Grad {
			for j, want := range r {
				if got := float64(z.Grad.Data[i*d+j]); math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
					t.Errorf("tau %g: grad[%d][%d] = %g, want %g", c.Temperature, i, j, got, want)
				}
			}
		}
	}
}

// TestNTXentAccuracy: views that are exact copies make every positive the
// most similar row.
func TestNTXentAccuracy(t *testing.T) {
	rng := tensor.NewRNG(1, "test")
	n, d := 6, 16
	z := tensor.New(2*n, d)
	rng.FillNormal(z, 1)
	copy(z.Data[n*d:], z.Data[:n*d])
	tape := autograd.NewTape(purego.New(1))
	_, st := NTXent(tape, autograd.Const(z), 0.5)
	if st.Accuracy != 1 {
		t.Errorf("accuracy %g with identical views, want 1", st.Accuracy)
	}
	if maxEnt := math.Log(float64(2*n - 1)); st.Entropy <= 0 || st.Entropy >= maxEnt {
		t.Errorf("entropy %g outside (0, log(2N-1) = %g)", st.Entropy, maxEnt)
	}
	// All-equal projections: uniform softmax, maximal entropy.
	for i := range z.Data {
		z.Data[i] = 1
	}
	_, st = NTXent(autograd.NewTape(purego.New(1)), autograd.Const(z), 0.5)
	if maxEnt := math.Log(float64(2*n - 1)); math.Abs(st.Entropy-maxEnt) > 1e-6 {
		t.Errorf("entropy %g for identical rows, want log(2N-1) = %g", st.Entropy, maxEnt)
	}
}
