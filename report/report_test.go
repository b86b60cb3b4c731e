package report

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	plotPath := filepath.Join(dir, "loss.png")
	err := LinePlot(plotPath, "loss", "epoch", "NT-Xent",
		Series{Name: "train", X: []float64{0, 1, 2}, Y: []float64{5, 4, 3.5}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Errorf("plot is not a PNG: %v", err)
	}
	f.Close()

	im := image.NewGray(image.Rect(0, 0, 4, 4))
	im.Set(1, 1, color.White)
	gridPath := filepath.Join(dir, "nn.png")
	if err := Grid(gridPath, [][]image.Image{{im, im, im}, {im, im}}, 2); err != nil {
		t.Fatal(err)
	}
	f, _ = os.Open(gridPath)
	g, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := g.Bounds(); b.Dx() != 3*(8+4)+4 || b.Dy() != 2*(8+4)+4 {
		t.Errorf("grid size %v", b)
	}

	html, err := WriteHTML(dir, Page{Title: "demo <1>", Table: [][]string{{"encoder", "kNN"}, {"random", "50%"}},
		Figures: []Figure{{File: "loss.png", Caption: "loss"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(html)
	s := string(b)
	for _, want := range []string{"demo &lt;1&gt;", "<th>kNN</th>", "<td>50%</td>", `src="loss.png"`} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
