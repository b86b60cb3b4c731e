#!/usr/bin/env bash
# Data-parallel training across hosts, on one machine: two network
# namespaces joined by a veth pair stand for two hosts (scripts/netns.sh),
# and mpirun runs one rank in each, over TCP only. Checks:
#   1. 2 ranks across the link train as 1 process with the whole batch
#      (internal/mpitest: losses and parameters, and resume), and their
#      traffic went over the veth;
#   2. a link cut while `simclr pretrain` runs ends the job with an error
#      naming the rank and the collective it waited in, within the
#      collective watchdog's time, and the last checkpoint then resumes
#      on one process without mpirun.
# Needs root (network namespaces) and Open MPI; without root or
# `ip netns`, it says why and skips. About 30 s on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
	echo "test-multihost: skipped: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
if ! command -v mpirun >/dev/null || ! pkg-config --exists ompi-c 2>/dev/null; then
	echo "test-multihost: Open MPI is not installed (apt-get install -y libopenmpi-dev openmpi-bin)" >&2
	exit 1
fi
GO=${GO:-go}
tmp=$(mktemp -d)
# shellcheck source=scripts/netns.sh
. scripts/netns.sh
job=
cleanup() {
	if [ -n "$job" ]; then kill -KILL "$job" 2>/dev/null || true; fi
	netns_down
	rm -rf "$tmp"
}
trap cleanup EXIT
if ! netns_up "$tmp" 2>"$tmp/netns.err"; then
	skip "cannot create network namespaces here: $(cat "$tmp/netns.err")"
fi
echo "== hosts $NETNS_A ($NETNS_ADDR_A) and $NETNS_B ($NETNS_ADDR_B), joined by a veth pair"

echo "== building the mpi-tagged test binary and CLI"
$GO test -c -tags mpi -o "$tmp/mpitest.test" ./internal/mpitest
$GO build -tags mpi -o "$tmp/simclr" ./cmd/simclr

echo "== 2 ranks across the link train as 1 process"
rx0=$(netns_rx_bytes "$NETNS_B" "$NETNS_VETH_B")
timeout 180 "${NETNS_MPIRUN[@]}" "$tmp/mpitest.test" -test.v -test.run 'TwoProcessesTrainAsOne|Resume'
rx=$(($(netns_rx_bytes "$NETNS_B" "$NETNS_VETH_B") - rx0))
echo "$NETNS_B received $rx bytes over the veth"
# Each of the 4 steps sends the gradients (49,636 values) and the
# activations' statistics both ways: megabytes.
if [ "$rx" -lt 1000000 ]; then
	echo "test-multihost: only $rx bytes crossed the link; the ranks did not talk over it" >&2
	exit 1
fi

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
	echo "== Fashion-MNIST not installed (dataset-fashion-mnist): skipping the link cut"
	echo "test-multihost: ok"
	exit 0
fi

echo "== a link cut while simclr pretrain runs"
watchdog=20
args=(pretrain --data fashion-mnist --limit 2000 --depth 18 --width 4 --batch 32 --steps 40
	--checkpoint-every 5 --backend purego --threads 1 --workers 1 --out "$tmp/cut")
SIMCLR_COLLECTIVE_TIMEOUT=${watchdog}s timeout 120 "${NETNS_MPIRUN[@]}" -x SIMCLR_COLLECTIVE_TIMEOUT \
	"$tmp/simclr" "${args[@]}" --quiet >"$tmp/cut.log" 2>&1 &
job=$!
for _ in $(seq 1200); do
	[ -s "$tmp/cut/metrics.jsonl" ] && [ "$(wc -l <"$tmp/cut/metrics.jsonl")" -ge 12 ] && break
	sleep 0.1
done
ip -n "$NETNS_B" link set "$NETNS_VETH_B" down
start=$(date +%s%N)
set +e
wait "$job"
rc=$?
set -e
job=
took=$((($(date +%s%N) - start) / 1000000))
echo "job ended with status $rc ${took} ms after the cut (watchdog ${watchdog}s)"
if [ "$rc" = 0 ] || [ "$rc" = 124 ] || [ "$took" -ge $((watchdog * 1000)) ]; then
	cat "$tmp/cut.log"
	echo "test-multihost: link cut: exit status $rc after ${took} ms; want an error within ${watchdog}s" >&2
	exit 1
fi
if ! grep -E 'rank [0-9]+ of 2: (SIGTERM came after [0-9.]+s waiting in )?MPI_[A-Za-z]+ of [0-9]+ values' "$tmp/cut.log"; then
	cat "$tmp/cut.log"
	echo "test-multihost: link cut: no error names the rank and the collective" >&2
	exit 1
fi
grep -A3 'lost communication' "$tmp/cut.log" || true

echo "== the last checkpoint resumes on one process"
ck=$(grep -c . "$tmp/cut/metrics.jsonl")
timeout 120 "$tmp/simclr" "${args[@]}" --resume >"$tmp/resume.log" 2>&1 || {
	cat "$tmp/resume.log"
	echo "test-multihost: resuming on one process failed" >&2
	exit 1
}
from=$(grep -o 'resumed from .* at step [0-9]*' "$tmp/resume.log" | grep -o '[0-9]*$' || true)
last=$(tail -1 "$tmp/cut/metrics.jsonl" | grep -o '"step":[0-9]*' | cut -d: -f2)
echo "$ck steps logged before the cut; one process resumed at step ${from:-?} and ran to step $last"
if [ -z "$from" ] || [ "$from" -lt 5 ] || [ "$from" -gt "$ck" ] || [ "$last" != 39 ]; then
	cat "$tmp/resume.log"
	echo "test-multihost: want a resume from a checkpoint of the cut run (step 5 to $ck) that ends at step 39" >&2
	exit 1
fi
echo "test-multihost: ok"
