package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pilScript writes random JPEGs of odd sizes, qualities and subsamplings
// into the folder it is given, then decodes every file there as
// torchvision's ImageFolder does (Image.open + convert("RGB")), writing
// NAME.pil.rgb and one JSON line per file.
const pilScript = `
import io, json, os, random, sys
from PIL import Image, ImageFilter

d = sys.argv[1]
rng = random.Random(7)
sizes = [(37, 53), (1, 1), (8, 8), (17, 9), (9, 17), (200, 3), (3, 200), (64, 48), (33, 33)]
for i, (w, h) in enumerate(sizes):
    noise = Image.frombytes("RGB", (w, h), bytes(rng.getrandbits(8) for _ in range(w * h * 3)))
    grad = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    img = Image.blend(noise.filter(ImageFilter.GaussianBlur(1)), grad, 0.5)
    for q in (50, 95):
        for sub in (0, 1, 2):
            img.save(os.path.join(d, f"rand_{i}_q{q}_s{sub}.jpg"), quality=q, subsampling=sub)
    img.save(os.path.join(d, f"rand_{i}_prog.jpg"), quality=80, progressive=True)
    img.convert("L").save(os.path.join(d, f"rand_{i}_gray.jpg"), quality=75)
    img.convert("CMYK").save(os.path.join(d, f"rand_{i}_cmyk.jpg"), quality=75)
    img.save(os.path.join(d, f"rand_{i}_lossy.webp"), quality=70)
    rgba = img.copy()
    rgba.putalpha(grad.convert("L"))
    rgba.save(os.path.join(d, f"rand_{i}_alpha.webp"), quality=70)

for name in sorted(os.listdir(d)):
    if name.endswith(".pil.rgb") or name == "pil.py":
        continue
    rec = {"name": name}
    try:
        with Image.open(os.path.join(d, name)) as im:
            rgb = im.convert("RGB")
        rec["w"], rec["h"] = rgb.size
        with open(os.path.join(d, name + ".pil.rgb"), "wb") as f:
            f.write(rgb.tobytes())
    except Exception as e:
        rec["err"] = f"{type(e).__name__}: {e}"
    print(json.dumps(rec))
`

// pilPython returns a Python interpreter that can import PIL, or "".
func pilPython() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import PIL").Run() == nil {
			return py
		}
	}
	return ""
}

// TestDecodeAgainstLivePIL runs PIL on the test images, on images it makes
// afresh (JPEGs of odd sizes at qualities 50 and 95 with every subsampling,
// progressive, gray and CMYK; lossy WebP with and without alpha) and on
// truncated JPEGs, and compares with our decoding pixel by pixel, errors
// included.
func TestDecodeAgainstLivePIL(t *testing.T) {
	py := pilPython()
	if py == "" {
		t.Skip("PIL is not installed (Debian: python3-pil): live comparison with PIL skipped")
	}
	dir := t.TempDir()
	for _, name := range decodeTestFiles(t) {
		b := readTestImage(t, name)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "jpeg_") {
			for _, cut := range []int{1, 2, len(b) / 3} {
				trunc := strings.TrimSuffix(name, ".jpg") + "_cut" + strconv.Itoa(cut) + ".jpg"
				if err := os.WriteFile(filepath.Join(dir, trunc), b[:len(b)-cut], 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	script := filepath.Join(dir, "pil.py")
	if err := os.WriteFile(script, []byte(pilScript), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(py, script, dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", py, script, err, stderr.String())
	}
	var compared, exact, refused, worstMax int
	var worstMean float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var rec struct {
			Name string
			W, H int
			Err  string
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("PIL script output %q: %v", sc.Text(), err)
		}
		b, err := os.ReadFile(filepath.Join(dir, rec.Name))
		if err != nil {
			t.Fatal(err)
		}
		w, h, rgb, err := decodeRGB(b, rec.Name)
		if rec.Err != "" {
			if err == nil {
				t.Errorf("%s: PIL fails (%s), we decode %dx%d", rec.Name, rec.Err, w, h)
			}
			refused++
			continue
		}
		if err != nil {
			t.Errorf("%s: PIL decodes %dx%d, we fail: %v", rec.Name, rec.W, rec.H, err)
			continue
		}
		if w != rec.W || h != rec.H {
			t.Errorf("%s: %dx%d, PIL %dx%d", rec.Name, w, h, rec.W, rec.H)
			continue
		}
		want, err := os.ReadFile(filepath.Join(dir, rec.Name+".pil.rgb"))
		if err != nil {
			t.Fatal(err)
		}
		compared++
		mean, maxDiff := absDiff(rgb, want)
		worstMean, worstMax = max(worstMean, mean), max(worstMax, maxDiff)
		meanTol, maxTol, ok := inexact(rec.Name)
		switch {
		case !ok && maxDiff != 0:
			t.Errorf("%s: differs from PIL: mean |diff| %.3f, max %d", rec.Name, mean, maxDiff)
		case ok && (mean > meanTol || maxDiff > maxTol):
			t.Errorf("%s: mean |diff| %.3f, max %d from PIL: bounds are %.2f, %d", rec.Name, mean, maxDiff, meanTol, maxTol)
		case maxDiff == 0:
			exact++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if compared < 100 || refused == 0 {
		t.Fatalf("compared %d decodings and %d refusals with PIL: the script produced too few", compared, refused)
	}
	t.Logf("%d images compared with PIL (%d identical; worst mean |diff| %.3f, worst max %d), %d refused by both",
		compared, exact, worstMean, worstMax, refused)
}
