# Two "hosts" on one machine for MPI tests: network namespaces joined by a
# veth pair, each with its own address and host name, and mpirun started
# in the first with a launch agent (in place of ssh) that enters the
# namespace named by the host. Open MPI then runs exactly as across two
# machines: TCP only (no shared memory), on the veth's subnet only.
# Source it from bash as root; call netns_up, then "${NETNS_MPIRUN[@]}" ARGS...;
# netns_down (set it in an EXIT trap) removes everything, processes
# included. Nothing is routed outside the namespaces.

# netns_up DIR: creates the namespaces and writes DIR/agent and DIR/hosts.
# Names carry a random suffix so that runs side by side do not clash.
netns_up() {
	local dir=$1 id
	id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	NETNS_A=simclr-$id-a NETNS_B=simclr-$id-b
	NETNS_VETH_A=smh${id}a NETNS_VETH_B=smh${id}b # at most 15 characters
	NETNS_NET=10.77.0.0/24 NETNS_ADDR_A=10.77.0.1 NETNS_ADDR_B=10.77.0.2
	ip netns add "$NETNS_A" || return
	ip netns add "$NETNS_B" || return
	ip link add "$NETNS_VETH_A" netns "$NETNS_A" type veth peer name "$NETNS_VETH_B" netns "$NETNS_B" || return
	ip -n "$NETNS_A" addr add "$NETNS_ADDR_A/24" dev "$NETNS_VETH_A"
	ip -n "$NETNS_B" addr add "$NETNS_ADDR_B/24" dev "$NETNS_VETH_B"
	for ns in "$NETNS_A" "$NETNS_B"; do ip -n "$ns" link set lo up; done
	ip -n "$NETNS_A" link set "$NETNS_VETH_A" up
	ip -n "$NETNS_B" link set "$NETNS_VETH_B" up
	# mpirun's remote shell: HOST COMMAND... runs COMMAND (a shell line,
	# as ssh takes it) in the namespace HOST, under the host name HOST.
	cat >"$dir/agent" <<'AGENT'
#!/bin/sh
ns=$1
shift
exec ip netns exec "$ns" unshare --uts /bin/sh -c "hostname $ns && exec $*"
AGENT
	chmod +x "$dir/agent"
	printf '%s slots=1\n%s slots=1\n' "$NETNS_A" "$NETNS_B" >"$dir/hosts"

# netns_down removes the namespaces (the veth pair goes with them) after
# killing what still runs in them: an Open MPI daemon cut off from mpirun
# outlives the job.
netns_down() {
	local ns pids
	for ns in "${NETNS_A:-}" "${NETNS_B:-}"; do
		[ -n "$ns" ] || continue
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
		fi
		ip netns del "$ns" 2>/dev/null || true
	done
}

	# NETNS_MPIRUN: mpirun in the first namespace, one rank in each, TCP
	# over the veth only. The control connections of Open MPI's runtime
	# send TCP keepalives after 2 s of silence, every 1 s, and give a host
	# up after 2 unanswered: a cut link then ends the job in about 4 s (see
	# docs/distributed.md, Failures).
	NETNS_MPIRUN=(ip netns exec "$NETNS_A" mpirun --allow-run-as-root --oversubscribe
		--hostfile "$dir/hosts" -np 2 --map-by node
		--mca plm_rsh_agent "$dir/agent" --mca plm_rsh_no_tree_spawn 1
		--mca btl tcp,self --mca btl_tcp_if_include "$NETNS_NET" --mca oob_tcp_if_include "$NETNS_NET"
		--mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 2)
}

# netns_rx_bytes NS DEV: bytes DEV has received in namespace NS.
netns_rx_bytes() {
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_bytes"
}
