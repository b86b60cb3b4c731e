package data

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultCacheDir returns where downloads are kept: $XDG_CACHE_HOME/simclr,
// else ~/.cache/simclr (os.UserCacheDir's rule on Linux).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("data: no cache directory (set XDG_CACHE_HOME or HOME, or give CacheDir): %w", err)
	}
	return filepath.Join(d, "simclr"), nil
}

// Download fetches url into dst and checks its MD5 (hex). The data goes to
// a temporary file in dst's folder that is renamed into place only once
// verified, so dst is either absent or complete and correct, even if the
// process dies or two processes download at once. client nil means
// http.DefaultClient.
func Download(client *http.Client, url, dst, wantMD5 string) (err error) {
	if client == nil {
		client = http.DefaultClient
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("data: download cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.partial")
	if err != nil {
		return fmt.Errorf("data: download cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("data: downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("data: downloading %s: %s", url, resp.Status)
	}
	h := md5.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		return fmt.Errorf("data: downloading %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, wantMD5) {
		return fmt.Errorf("data: downloading %s: %w: got MD5 %s, want %s", url, ErrChecksum, got, wantMD5)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("data: writing %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("data: writing %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("data: writing %s: %w", dst, err)
	}
	return nil
}
