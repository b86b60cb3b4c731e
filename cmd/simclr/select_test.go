package main

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/selection"
)

// readPicks returns the names a picks file lists (comments skipped).
func readPicks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	return names
}

func TestSelectCommand(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	selectRun := func(out string, extra ...string) {
		t.Helper()
		args := append([]string{"--backend", "purego", "--threads", "1", "select", "--checkpoint", ckpt, "--data", imgs, "--quiet", "--out", out}, extra...)
		if status, _, stderr := runMain(t, args...); status != 0 {
			t.Fatalf("simclr %s: status %d\n%s", strings.Join(args, " "), status, stderr)
		}
	}
	first := filepath.Join(dir, "round1", "picks.txt")
	selectRun(first, "--budget", "4", "--seed", "7")
	picks := readPicks(t, first)
	if len(picks) != 4 || len(slices.Compact(slices.Sorted(slices.Values(picks)))) != 4 {
		t.Fatalf("picks %v: want 4 distinct names", picks)
	}

	// finetune --labels-file and semi read the list.
	ds, err := openDataset(imgs, "train", false, false)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := labelledSubset(ds, first)
	if err != nil {
		t.Fatalf("--labels-file cannot read the picks: %v", err)
	}
	if sub.Len() != 4 {
		t.Errorf("--labels-file read %d images of 4 picks", sub.Len())
	}

	// The contact sheet holds 4 thumbnails in a row; the page lists every pick.
	f, err := os.Open(filepath.Join(dir, "round1", "picks.png"))
	if err != nil {
		t.Fatal(err)
	}
	sheet, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := sheet.Bounds(); b.Dx() != 4*(thumbSide+4)+4 || b.Dy() != thumbSide+8 {
		t.Errorf("contact sheet of 4 picks is %v", b)
	}
	page, err := os.ReadFile(filepath.Join(dir, "round1", "picks.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range picks {
		if !strings.Contains(string(page), p) {
			t.Errorf("page does not list %s", p)
		}
	}

	// Same seed, same picks; the same images without their class folders
	// read as labels give the same picks too: labels play no part.
	again := filepath.Join(dir, "again.txt")
	selectRun(again, "--budget", "4", "--seed", "7", "--unlabeled")
	if got := readPicks(t, again); !slices.Equal(got, picks) {
		t.Errorf("unlabelled rerun picked %v, first run %v", got, picks)
	}

	// A second round never repeats the first; every method honours it.
	for _, m := range []string{"typiclust", "kmeans", "kcenter", "random"} {
		next := filepath.Join(dir, m+".txt")
		selectRun(next, "--budget", "5", "--method", m, "--exclude", first)
		got := readPicks(t, next)
		if len(got) != 5 {
			t.Errorf("%s: %d picks, want 5", m, len(got))
		}
		for _, p := range got {
			if slices.Contains(picks, p) {
				t.Errorf("%s picked %s, which --exclude lists", m, p)
			}
		}
	}
}

func TestSelectRefuses(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	exclude := filepath.Join(dir, "labelled.txt")
	os.WriteFile(exclude, []byte("0\n1\n"), 0o644)
	base := []string{"--backend", "purego", "--threads", "1", "select", "--checkpoint", ckpt, "--data", imgs, "--quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--budget", "2", "--out", exclude, "--exclude", exclude}, "--out"},
		{[]string{"--budget", "2", "--out", ckpt}, "--out"},
		{[]string{"--budget", "2", "--out", filepath.Join(imgs, "picks.txt")}, "--out"},
		{[]string{"--budget", "2", "--out", filepath.Join(dir, "p.png")}, "--out"},
		{[]string{"--budget", "19", "--exclude", exclude, "--out", filepath.Join(dir, "p.txt")}, "--budget"},
		{[]string{"--budget", "2", "--method", "best", "--out", filepath.Join(dir, "p.txt")}, "--method"},
	} {
		status, _, stderr := runMain(t, append(base, c.args...)...)
		if status != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("select %s: status %d, want %d naming %s:\n%s", strings.Join(c.args, " "), status, exitUsage, c.want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "p.txt")); err == nil {
		t.Error("a refused run wrote its list")
	}
	// A name the pool does not hold is an error naming the file and line.
	ds, err := openDataset(imgs, "train", false, false)
	if err != nil {
		t.Fatal(err)
	}
	names, err := sampleNames(ds)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(exclude, []byte("# labelled\n"+names[0]+"\nno-such.png\n"), 0o644)
	status, _, stderr := runMain(t, append(base, "--budget", "2", "--exclude", exclude, "--out", filepath.Join(dir, "p.txt"))...)
	if status == 0 || !strings.Contains(stderr, "labelled.txt line 3") {
		t.Errorf("unknown name in --exclude: status %d:\n%s", status, stderr)
	}
}

// grey is a dataset of n flat grey 4x6 images.
type grey struct{ n int }

func (g grey) Len() int          { return g.n }
func (g grey) Classes() []string { return nil }
func (g grey) Get(i int) (data.Sample, error) {
	rgb := make([]uint8, 4*6*3)
	for j := range rgb {
		rgb[j] = uint8(i)
	}
	return data.Sample{W: 4, H: 6, RGB: rgb, Label: -1, Name: strconv.Itoa(i)}, nil
}

func TestContactSheetBounded(t *testing.T) {
	picks := make([]selection.Pick, sheetMax+37)
	for i := range picks {
		picks[i].Index = i
	}
	path := filepath.Join(t.TempDir(), "sheet.png")
	if err := writeContactSheet(path, grey{len(picks)}, picks); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := sheetMax/10*(thumbSide+4) + 4; cfg.Height != want || cfg.Width != 10*(thumbSide+4)+4 {
		t.Errorf("sheet of %d picks is %dx%d, want %d rows of 10 (height %d)", len(picks), cfg.Width, cfg.Height, sheetMax/10, want)
	}
}

// TestSemiSelect runs semi on the images select chooses: fine-tuning and
// distillation learn the labels of exactly those.
func TestSemiSelect(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	_, testImgs, _ := fixture(t)
	out := filepath.Join(dir, "semi")
	args := []string{"semi", "--backend", "purego", "--threads", "1", "--checkpoint", ckpt, "--data", imgs, "--test-data", testImgs,
		"--select", "typiclust", "--budget", "4", "--ft-epochs", "1", "--ft-batch", "4", "--distill-epochs", "1", "--distill-batch", "4",
		"--no-baseline", "--out", out, "--quiet", "--json"}
	status, stdout, stderr := runMain(t, args...)
	if status != 0 {
		t.Fatalf("simclr %s: status %d:\n%s", strings.Join(args, " "), status, stderr)
	}
	var res struct {
		Metrics map[string]float64 `json:"metrics"`
		Details semiReport         `json:"details"`
	}
	decodeJSON(t, stdout, &res)
	if _, ok := res.Metrics["student_top1@typiclust"]; !ok {
		t.Errorf("metrics %v lack student_top1@typiclust", res.Metrics)
	}
	rows := res.Details.Rows
	if len(rows) != 1 || rows[0].Labelled != 4 || rows[0].Selected != "typiclust" || rows[0].Fraction != 4.0/20 {
		t.Fatalf("rows %+v: want one of 4 labelled images chosen by typiclust (fraction 0.2)", rows)
	}
	picks := readPicks(t, filepath.Join(out, "picks-typiclust-4.txt"))
	if len(picks) != 4 {
		t.Errorf("picks %v", picks)
	}
	var distilled bool
	for _, c := range res.Details.Commands {
		if strings.HasPrefix(c, "simclr distill ") {
			distilled = strings.Contains(c, "--labels-file "+filepath.Join(out, "picks-typiclust-4.txt"))
		}
	}
	if !distilled {
		t.Errorf("distillation did not learn the picks' labels: %q", res.Details.Commands)
	}

	for _, bad := range [][]string{
		{"semi", "--checkpoint", ckpt, "--data", imgs, "--val", "4", "--select", "kmeans", "--budget", "2", "--out", out},
		{"semi", "--checkpoint", ckpt, "--data", imgs, "--select", "kmeans", "--out", out},
		{"distill", "--teacher", rows[0].TeacherOut, "--data", imgs, "--fraction", "0.5", "--labels-file", filepath.Join(out, "picks-typiclust-4.txt")},
	} {
		if status, _, stderr := runMain(t, bad...); status != exitUsage {
			t.Errorf("simclr %s: status %d, want %d:\n%s", strings.Join(bad, " "), status, exitUsage, stderr)
		}
	}
}

// TestBenchSelect compares the methods on the fixture's 20 labelled images
// (16 in the pool, 4 held out) and fine-tunes on a trial's written picks.
func TestBenchSelect(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	picksDir := filepath.Join(dir, "picks")
	args := []string{"--backend", "purego", "--threads", "1", "bench", "select", "--checkpoint", ckpt, "--data", imgs,
		"--val", "4", "--budgets", "2,4", "--seeds", "2", "--quiet", "--picks-dir", picksDir}
	status, stdout, stderr := runMain(t, args...)
	if status != 0 {
		t.Fatalf("simclr %s: status %d\n%s", strings.Join(args, " "), status, stderr)
	}
	for _, m := range []string{"typiclust", "kmeans", "kcenter", "random", "balanced"} {
		for _, b := range []string{"2", "4"} {
			if !strings.Contains(stdout, "| "+m+" | "+b+" | ") {
				t.Errorf("no row for %s at budget %s in\n%s", m, b, stdout)
			}
			for _, s := range []string{"0", "1"} {
				names := readPicks(t, filepath.Join(picksDir, m+"-"+b+"-seed"+s+".txt"))
				if strconv.Itoa(len(names)) != b {
					t.Errorf("%s-%s-seed%s: %d names", m, b, s, len(names))
				}
			}
		}
	}
	// Balanced picks cover both classes; the written names are images of
	// the pool that --labels-file reads.
	ds, err := openDataset(imgs, "train", false, false)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := labelledSubset(ds, filepath.Join(picksDir, "balanced-2-seed0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := range sub.Len() {
		s, err := sub.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		seen[s.Label] = true
	}
	if len(seen) != 2 {
		t.Errorf("balanced picks of 2 cover %d classes", len(seen))
	}
	// A budget larger than the pool is refused with the count.
	bad := []string{"--backend", "purego", "bench", "select", "--checkpoint", ckpt, "--data", imgs, "--val", "4", "--budgets", "17", "--quiet"}
	if status, _, stderr := runMain(t, bad...); status != 2 || !strings.Contains(stderr, "16") {
		t.Errorf("budget above the pool: status %d, %s", status, stderr)
	}
}
