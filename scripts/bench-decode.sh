#!/usr/bin/env bash
# Image decoding throughput on one core, in the same run: ours with cgo
# (libjpeg-turbo), ours without cgo (Go's image/jpeg) and PIL
# (Image.open + convert("RGB") from bytes in memory), alternated ROUNDS
# times on each folder of images given; each measurement lasts SECONDS.
# Rates are images per CPU second of the process (Go with GOMAXPROCS=1,
# PIL single-threaded), so they hold per core on a busy machine too. PIL
# runs twice: as configured by default, which returns each image's memory
# to the system, and with PILLOW_BLOCKS_MAX=64, which keeps freed blocks for
# reuse.
# scripts/decode-bench-sets.py makes the folders used in BENCHMARKS.md.
#
# Usage: scripts/bench-decode.sh [-r ROUNDS] [-t SECONDS] DIR...
set -euo pipefail

rounds=3
seconds=3
while getopts r:t: opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	t) seconds=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if (($# == 0)); then
	echo "usage: $0 [-r ROUNDS] [-t SECONDS] DIR..." >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
python=python3
python3 -c "import PIL" 2>/dev/null || python=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go test -c -o "$tmp/cgo.test" ./data && CGO_ENABLED=0 go test -c -o "$tmp/purego.test" ./data)

cat >"$tmp/pil.py" <<'PY'
import io, os, sys, time
from PIL import Image
d, seconds = sys.argv[1], float(sys.argv[2])
files = [open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))]
n, start, cpu = 0, time.perf_counter(), time.process_time()
while time.perf_counter() - start < seconds:
    for b in files:
        Image.open(io.BytesIO(b)).convert("RGB")
    n += len(files)
print(f"{n / (time.process_time() - cpu):.0f}")
PY

# go_rate BINARY DIR prints the images per CPU second of BenchmarkDecodeDir
# on one core.
go_rate() {
	(cd "$root/data" && SIMCLR_DECODE_BENCH_DIR=$2 GOMAXPROCS=1 "$1" -test.run '^$' \
		-test.bench '^BenchmarkDecodeDir$' -test.benchtime "${seconds}s" -test.cpu 1) |
		awk '{for (i = 2; i <= NF; i++) if ($i == "images/cpu-s") printf "%.0f\n", $(i-1)}'
}

for dir in "$@"; do
	dir=$(cd "$dir" && pwd)
	for ((r = 1; r <= rounds; r++)); do
		libjpeg=$(go_rate "$tmp/cgo.test" "$dir")
		purego=$(go_rate "$tmp/purego.test" "$dir")
		pil=$("$python" "$tmp/pil.py" "$dir" "$seconds")
		pilcache=$(PILLOW_BLOCKS_MAX=64 "$python" "$tmp/pil.py" "$dir" "$seconds")
		printf '%s round %d: images per CPU second: ours (libjpeg-turbo) %s, ours (pure Go) %s, PIL %s, PIL keeping freed blocks %s\n' \
			"$(basename "$dir")" "$r" "$libjpeg" "$purego" "$pil" "$pilcache"
	done
done
