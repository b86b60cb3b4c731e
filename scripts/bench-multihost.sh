#!/usr/bin/env bash
# Communication cost of a data-parallel step between two hosts, simulated
# by two network namespaces (scripts/netns.sh) whose veth link is shaped
# with tc's token bucket (tbf) to each rate given. For each rate and
# ResNet depth it runs `simclr bench step` with one rank per namespace and
# prints one row: the gradient size, the gradient all-reduce started
# together (and the bandwidth it achieves), the latency of a one-value
# all-reduce, the step's time in collectives and its compute; first rows
# of one process alone with one rank's share of the batch.
# Needs root and Open MPI. docs/distributed.md models scaling from these.
# Usage: scripts/bench-multihost.sh [rate ...]   (default: none 10gbit 1gbit;
# "none" leaves the veth unshaped). Environment: DEPTHS (default "18 50"),
# WIDTH (64), BATCH (global, 8), STEPS (3), REPEAT (2).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-multihost: needs root to create network namespaces" >&2
	exit 1
fi
rates=("$@")
((${#rates[@]})) || rates=(none 10gbit 1gbit)
depths=${DEPTHS:-18 50} width=${WIDTH:-64} batch=${BATCH:-8} steps=${STEPS:-3} repeat=${REPEAT:-2}
GO=${GO:-go}
tmp=$(mktemp -d)
# shellcheck source=scripts/netns.sh
. scripts/netns.sh
trap 'netns_down; rm -rf "$tmp"' EXIT
netns_up "$tmp"
$GO build -tags mpi -o "$tmp/simclr" ./cmd/simclr

# shape RATE: a token bucket of RATE on both ends' egress (none: no qdisc).
shape() {
	local ns dev burst
	for end in A B; do
		ns=NETNS_$end dev=NETNS_VETH_$end
		ip -n "${!ns}" link set "${!dev}" up
		tc -n "${!ns}" qdisc del dev "${!dev}" root 2>/dev/null || true
		[ "$1" = none ] && continue
		# The bucket holds 2 ms at the rate, at least 64 KiB (one
		# segmentation-offload packet).
		burst=$(($(rate_bps "$1") / 8 / 500))
		burst=$((burst < 65536 ? 65536 : burst))
		tc -n "${!ns}" qdisc add dev "${!dev}" root tbf rate "$1" burst "$burst" latency 50ms
	done
}

# rate_bps RATE: 10gbit, 500mbit -> bits per second.
rate_bps() {
	case $1 in
	*gbit) echo $((${1%gbit} * 1000000000)) ;;
	*mbit) echo $((${1%mbit} * 1000000)) ;;
	*) echo "bench-multihost: rate $1: want NNgbit or NNmbit" >&2 && return 1 ;;
	esac
}

# One row from bench step's JSON. Achieved bandwidth: what each host sends
# in a ring all-reduce, 2(K-1)/K times the message (K = 2: the message
# once), over the time.
cat >"$tmp/row.py" <<'PY'
import json, sys
rate, depth = sys.argv[1], sys.argv[2]
r = json.loads(sys.stdin.readline())
if "processes" not in r:  # one process with one rank's share of the batch
    print(f"| {rate} | {depth} | | | | | {r['median_step_s']:.3f} | | | {r['median_step_s']:.3f} |")
    sys.exit()
k = r["processes"]
sent = 2 * (k - 1) / k * r["grad_mb"] * 1024 * 1024 * 8
gbps = sent / r["grad_allreduce_alone_s"] / 1e9
compute = r["median_step_s"] - r["median_comm_s"]
print(f"| {rate} | {depth} | {r['grad_mb']:.1f} | {r['grad_allreduce_alone_s']:.3f} | {gbps:.2f} | "
      f"{r['allreduce_1_value_s'] * 1e6:.0f} | {r['median_step_s']:.3f} | {r['median_comm_s']:.3f} | "
      f"{r['median_grad_allreduce_s']:.3f} | {compute:.3f} |")
PY
printf '| link | ResNet | gradients MiB | grad all-reduce alone s | achieved Gbit/s | 1-value all-reduce µs | step s | in collectives s | of which gradients s | compute s |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
# The compute a rank does, without communication: one process, one
# thread, with one rank's share of the batch.
for depth in $depths; do
	for _ in $(seq "$repeat"); do
		"$tmp/simclr" bench step --depth "$depth" --width "$width" --batch $((batch / 2)) --steps "$steps" \
			--warmup 1 --threads 1 --json 2>"$tmp/log" >"$tmp/out" || {
			cat "$tmp/log"
			exit 1
		}
		python3 "$tmp/row.py" "1 process, batch $((batch / 2))" "$depth" <"$tmp/out"
	done
done
for rate in "${rates[@]}"; do
	shape "$rate"
	for depth in $depths; do
		for _ in $(seq "$repeat"); do
			timeout 600 "${NETNS_MPIRUN[@]}" "$tmp/simclr" bench step --depth "$depth" --width "$width" \
				--batch "$batch" --steps "$steps" --warmup 1 --threads 1 --json 2>"$tmp/log" >"$tmp/out" || {
				cat "$tmp/log"
				exit 1
			}
			python3 "$tmp/row.py" "$rate" "$depth" <"$tmp/out"
		done
	done
done
