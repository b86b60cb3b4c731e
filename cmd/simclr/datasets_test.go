package main

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the files under src to dst/prefix/..., keeping paths.
func copyTree(t *testing.T, src, dst string, keep func(rel string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if !keep(rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		q := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
			return err
		}
		return os.WriteFile(q, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tarTree packs the files under src into a plain tar.
func tarTree(t *testing.T, src, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// Evaluation commands score the val/ split of a train/ + val/ folder, and
// refuse a folder without a test split rather than score the images they
// train on.
func TestEvalSplits(t *testing.T) {
	dir, imgs, ckpt := fixture(t)
	split := filepath.Join(dir, "split")
	copyTree(t, imgs, filepath.Join(split, "train"), func(rel string) bool { return !strings.HasPrefix(filepath.Base(rel), "0") })
	copyTree(t, imgs, filepath.Join(split, "val"), func(rel string) bool { return strings.HasPrefix(filepath.Base(rel), "0") })
	run := func(args ...string) (string, error) {
		t.Helper()
		out, err := execute(append([]string{"--backend", "purego", "--threads", "1"}, args...), knnCmd, linearEvalCmd, embedCmd)
		return string(out), err
	}
	var rep evalResult
	out, err := run("knn", "--checkpoint", ckpt, "--data", split, "--k", "3", "--json", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if rep.Dataset.Train != 18 || rep.Dataset.Test != 2 {
		t.Errorf("knn on train/ + val/: %d training and %d test images, want 18 and 2", rep.Dataset.Train, rep.Dataset.Test)
	}
	for _, cmd := range []string{"knn", "linear-eval"} {
		_, err := run(cmd, "--checkpoint", ckpt, "--data", imgs, "--quiet")
		if err == nil || !strings.Contains(err.Error(), "--test-data") || !strings.Contains(err.Error(), "--val") {
			t.Errorf("%s on a folder without a test split: %v", cmd, err)
		}
	}
	// A separate test folder without splits is used whole.
	out, err = run("knn", "--checkpoint", ckpt, "--data", filepath.Join(split, "train"), "--test-data", filepath.Join(split, "val"), "--k", "3", "--json", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Dataset.Test != 2 {
		t.Errorf("--test-data: %q %v", out, err)
	}
	// Unlabeled: a photo folder with images at several depths embeds.
	photos := filepath.Join(dir, "photos")
	copyTree(t, imgs, photos, func(string) bool { return true })
	copyTree(t, filepath.Join(imgs, "dark"), photos, func(rel string) bool { return rel == "1.png" })
	if _, err := run("embed", "--checkpoint", ckpt, "--data", photos, "--out", filepath.Join(dir, "e", "x"), "--quiet"); err == nil || !strings.Contains(err.Error(), "--unlabeled") {
		t.Errorf("mixed folder without --unlabeled: %v", err)
	}
	if _, err := run("embed", "--checkpoint", ckpt, "--data", photos, "--unlabeled", "--out", filepath.Join(dir, "e", "x"), "--quiet"); err != nil {
		t.Fatal(err)
	}
	_, l, names := readEmbedding(t, filepath.Join(dir, "e", "x"))
	if len(names) != 21 || l.Int64[0] != -1 {
		t.Errorf("--unlabeled embedded %d images, label %d", len(names), l.Int64[0])
	}
}

// Pretraining from a plain .tar reads it in place and gives the losses of
// the unpacked folder.
func TestPretrainTarMatchesFolder(t *testing.T) {
	dir, imgs, _ := fixture(t)
	tarPath := filepath.Join(dir, "images.tar")
	tarTree(t, imgs, tarPath)
	var ref string
	for _, src := range []string{imgs, tarPath} {
		out := filepath.Join(dir, "run-"+filepath.Ext(src))
		args := []string{"pretrain", "--data", src, "--out", out, "--depth", "18", "--width", "2", "--image-size", "8",
			"--batch", "4", "--steps", "3", "--proj-hidden", "8", "--proj-out", "8", "--temperature", "0.5",
			"--lr", "0.5", "--workers", "2", "--backend", "purego", "--threads", "1", "--quiet"}
		if _, err := execute(args, pretrainCmd); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var lossLines []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			if l, ok := rec["loss"]; ok {
				lossLines = append(lossLines, jsonString(l))
			}
		}
		got := strings.Join(lossLines, ",")
		if len(lossLines) != 3 {
			t.Fatalf("%s: %d loss rows", src, len(lossLines))
		}
		if ref == "" {
			ref = got
		} else if got != ref {
			t.Errorf("losses from the tar %s differ from the folder's %s", got, ref)
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
