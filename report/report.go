// Package report turns a run's numbers into things a person would rather
// look at than read: line plots as PNG and one HTML page that gathers the
// table, the plots and the image grids. FromRunDir makes the page of a run
// folder (metrics.jsonl, run.yaml, views.png), and a Recorder keeps that
// page and the folder's TensorBoard events (package tfevents) current
// while the run goes on.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"

	"github.com/simclr-go/simclr/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

// LinePlot writes a PNG line plot of the series to path, atomically (a
// page being reloaded never shows half a plot).
func LinePlot(path, title, xLabel, yLabel string, series ...Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	for i, s := range series {
		if len(s.X) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(s.X))
		for j := range s.X {
			pts[j].X, pts[j].Y = s.X[j], s.Y[j]
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", title, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		if len(pts) == 1 { // a line of one point draws nothing
			dot, err := plotter.NewScatter(pts)
			if err != nil {
				return fmt.Errorf("plot %s: %w", title, err)
			}
			dot.Color = l.Color
			p.Add(dot)
		}
		if s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
	}
	p.Legend.Top = true
	w, err := p.WriterTo(6*vg.Inch, 3.5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", title, err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", title, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

// Grid writes rows of equally sized images as one PNG, with a gutter; the
// first image of each row is framed (the query of a neighbour grid).
func Grid(path string, rows [][]image.Image, scale int) error {
	if len(rows) == 0 || len(rows[0]) == 0 {
		return fmt.Errorf("report: empty grid for %s", path)
	}
	const gap = 4
	b := rows[0][0].Bounds()
	cw, ch := b.Dx()*scale, b.Dy()*scale
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	out := image.NewNRGBA(image.Rect(0, 0, cols*(cw+gap)+gap, len(rows)*(ch+gap)+gap))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, r := range rows {
		for j, im := range r {
			x0, y0 := gap+j*(cw+gap), gap+i*(ch+gap)
			if j == 0 {
				frame := image.Rect(x0-2, y0-2, x0+cw+2, y0+ch+2)
				draw.Draw(out, frame, image.NewUniform(color.RGBA{200, 40, 40, 255}), image.Point{}, draw.Src)
			}
			ib := im.Bounds()
			for y := 0; y < ch; y++ {
				for x := 0; x < cw; x++ {
					out.Set(x0+x, y0+y, im.At(ib.Min.X+x/scale, ib.Min.Y+y/scale))
				}
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, out); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Page is the content of the HTML report.
type Page struct {
	Title   string
	Summary string
	// Table is a header row followed by data rows.
	Table [][]string
	// Figures are image files relative to the page, with captions.
	Figures []Figure
	// Notes are preformatted lines (commands, settings).
	Notes []string
	// Settings is a second table, of name and value rows, under the figures.
	Settings [][]string
	// Links are other pages (a run's stages, say).
	Links []Link
	// Refresh, if positive, has a browser reload the page every that many
	// seconds: the report of a run still under way.
	Refresh int
}

// Link is a hyperlink on the page.
type Link struct {
	Href, Text string
}

// Figure is an image on the page.
type Figure struct {
	File, Caption string
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">{{if gt .Refresh 0}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.35em .8em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%;image-rendering:pixelated}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Summary}}<p>{{.Summary}}</p>{{end}}
{{if .Table}}<table>{{range $i, $r := .Table}}<tr>{{range $r}}{{if eq $i 0}}<th>{{.}}</th>{{else}}<td>{{.}}</td>{{end}}{{end}}</tr>{{end}}</table>{{end}}
{{if .Links}}<ul>{{range .Links}}<li><a href="{{.Href}}">{{.Text}}</a></li>{{end}}</ul>{{end}}
{{range .Figures}}<figure><img src="{{.File}}" alt="{{.Caption}}"><figcaption>{{.Caption}}</figcaption></figure>
{{end}}
{{if .Settings}}<h2>Settings</h2><table>{{range .Settings}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>{{end}}
{{if .Notes}}<pre>{{range .Notes}}{{.}}
{{end}}</pre>{{end}}
</body></html>
`))

// WriteHTML writes the page to dir/index.html and returns its path.
func WriteHTML(dir string, p Page) (string, error) {
	path := filepath.Join(dir, "index.html")
	return path, WriteHTMLFile(path, p)
}

// WriteHTMLFile writes the page to path, atomically.
func WriteHTMLFile(path string, p Page) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, p); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}
