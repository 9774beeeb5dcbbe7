#!/bin/bash
# CPU and memory of relevo with many VRRP instances at 10 ms adverts (run as root).
#
#   benches/many_instances.sh [N]        # default N=200; BIN=path/to/relevo (default target/release/relevo)
#
# Two network namespaces joined by a veth pair; node A (priority 150) and node B (100) each run
# N instances (VRID 1..N, one /32 VIP each from 198.51.100.0/24 and up). After 5 s of
# settling, prints the CPU share of one core used by each daemon over 10 s (utime+stime from
# /proc/PID/stat) and the master's RSS. Namespaces and processes are removed on exit.
set -eu
N=${1:-200}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/relevo}
[ "$N" -ge 1 ] && [ "$N" -le 255 ] || { echo "N must be 1..255" >&2; exit 2; }
[ -x "$BIN" ] || { echo "$BIN not built: cargo build --release" >&2; exit 2; }
A=rlmany$$a B=rlmany$$b DIR=$(mktemp -d) P1= P2=
cleanup() {
    for p in $P1 $P2; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $P1 $P2; do wait "$p" 2>/dev/null || true; done
    ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add eth0 netns "$A" type veth peer name eth0 netns "$B"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$A" addr add 192.0.2.10/24 dev eth0; ip -n "$B" addr add 192.0.2.11/24 dev eth0
for node in A B; do
    prio=$([ $node = A ] && echo 150 || echo 100)
    {
        printf '[node]\nname = "%s"\ncontrol_socket = "%s/%s.sock"\nstate_dir = "%s/%s.state"\n' \
            "$node" "$DIR" "$node" "$DIR" "$node"
        for i in $(seq 1 "$N"); do
            printf '\n[[vrrp]]\nname = "i%d"\ninterface = "eth0"\nvrid = %d\npriority = %d\n' "$i" "$i" "$prio"
            printf 'advert_interval = "10ms"\nvips = ["198.51.100.%d/32"]\n' "$i"
        done
    } > "$DIR/$node.toml"
done
ip netns exec "$A" "$BIN" run -c "$DIR/A.toml" 2> "$DIR/A.log" & P1=$!
ip netns exec "$B" "$BIN" run -c "$DIR/B.toml" 2> "$DIR/B.log" & P2=$!
sleep 5
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
a0=$(ticks $P1); b0=$(ticks $P2); sleep 10; a1=$(ticks $P1); b1=$(ticks $P2)
hz=$(getconf CLK_TCK)
masters=$(ip -n "$A" -br addr show dev eth0 | grep -o '198\.51\.100\.[0-9]*/32' | wc -l)
echo "instances=$N masters_on_A=$masters"
echo "master CPU $(( (a1-a0)*100/hz/10 ))% of a core, backup CPU $(( (b1-b0)*100/hz/10 ))%, master RSS $(awk '/VmRSS/{print $2" "$3}' /proc/$P1/status)"
