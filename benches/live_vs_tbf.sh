#!/usr/bin/env bash
# Live mode beside the kernel's tbf shaper on the same veth setup.
#
#   onprem (192.168.1.10/16) op0 --- er-op [ mid ] er-az --- az0 (10.1.0.4/16) azure
#
# mid is either a Linux bridge with `tc qdisc tbf` on each egress (the
# kernel's shaper; this kernel has no netem), or eremu live bridging the two
# veths through a circuit of the same rate with zero link latency. For each
# rate: ping RTT (what the middle adds), iperf3 TCP goodput, and for rates up
# to 500 Mbit/s iperf3 UDP at 1.5x the rate (loss). Offloads stay at their
# defaults (eremu completes checksums and cuts TSO super-frames itself).
#
# Usage (as root, from the repository root): benches/live_vs_tbf.sh [RATE_MBIT ...]
# Default rates: 200 1000 2000. Needs iproute2, iperf3, ping.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=$PWD/target/release/eremu
if [ $# -gt 0 ]; then rates=("$@"); else rates=(200 1000 2000); fi
tmp=$(mktemp -d)
op=lvt-op; az=lvt-az; mid=lvt-mid

cleanup() {
  for n in $op $az $mid; do ip netns del $n 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
for n in $op $az $mid; do ip netns del $n 2>/dev/null || true; done

for n in $op $az $mid; do ip netns add $n; ip -n $n link set lo up; done
ip link add op0 netns $op type veth peer name er-op netns $mid
ip link add az0 netns $az type veth peer name er-az netns $mid
ip -n $op addr add 192.168.1.10/16 dev op0
ip -n $az addr add 10.1.0.4/16 dev az0
ip -n $op link set op0 up; ip -n $az link set az0 up
ip -n $mid link set er-op up; ip -n $mid link set er-az up
ip -n $op route add 10.1.0.0/16 dev op0
ip -n $az route add 192.168.0.0/16 dev az0

in_op() { ip netns exec $op "$@"; }
in_az() { ip netns exec $az "$@"; }
in_mid() { ip netns exec $mid "$@"; }

ping_avg() { in_op ping -c 21 -i 0.05 10.1.0.4 | awk -F'time=' '/time=/{print $2+0}' | tail -n 20 | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
tcp_mbit() {
  in_az timeout 20 iperf3 -s -1 >/dev/null 2>&1 & sleep 0.3
  in_op timeout 20 iperf3 -c 10.1.0.4 -t 5 -J | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6,1))'
  wait
}
udp_loss() {
  in_az timeout 20 iperf3 -s -1 >/dev/null 2>&1 & sleep 0.3
  in_op timeout 20 iperf3 -c 10.1.0.4 -u -b "$1"M -l 1400 -t 4 -J | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print(round(e["lost_percent"],2))'
  wait
}

scenario() {
  cat > "$tmp/live-$1.toml" <<TOML
name = "live-$1m"
duration = "60s"
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "$1Mbps"
custom = true
port_speed = "10Gbps"
mode = "active-passive"
[circuit.primary]
latency = "0s"
queue = "1MiB"
[circuit.secondary]
latency = "0s"
queue = "1MiB"
[gateway]
sku = "ErGwScale"
fastpath = true
TOML
}

echo "| middle | rate | ping RTT median (ms) | iperf3 TCP (Mbit/s) | iperf3 UDP at 1.5x: lost % |"
echo "|---|---|---|---|---|"

# The kernel: a bridge, no shaping, then tbf on both egresses.
in_mid ip link add br0 type bridge
in_mid ip link set er-op master br0; in_mid ip link set er-az master br0; in_mid ip link set br0 up
echo "| linux bridge | none | $(ping_avg) | $(tcp_mbit) | - |"
for r in "${rates[@]}"; do
  for dev in er-op er-az; do in_mid tc qdisc replace dev $dev root tbf rate ${r}mbit burst 256kb latency 50ms; done
  udp=-; [ "$r" -le 500 ] && udp=$(udp_loss $((r * 3 / 2)))
  echo "| linux bridge + tbf | ${r} Mbit/s | $(ping_avg) | $(tcp_mbit) | $udp |"
  for dev in er-op er-az; do in_mid tc qdisc del dev $dev root; done
done
in_mid ip link del br0

# eremu live: a circuit of the same rate, zero link latency.
for r in "${rates[@]}"; do
  scenario "$r"
  in_mid "$bin" live "$tmp/live-$r.toml" --onprem er-op --azure er-az --duration 40s --no-capture --quiet --out "$tmp/out-$r" &
  pid=$!; sleep 1
  udp=-; [ "$r" -le 500 ] && udp=$(udp_loss $((r * 3 / 2)))
  echo "| eremu live | ${r} Mbit/s | $(ping_avg) | $(tcp_mbit) | $udp |"
  kill -INT $pid; wait $pid || true
  lag=$(python3 -c "import json; l=json.load(open('$tmp/out-$r/report.json'))['ingress']['lag_ns']; print('lag p50 %.3f ms, p99 %.3f ms, max %.3f ms' % (l['p50']/1e6, l['p99']/1e6, l['max']/1e6))")
  echo "|  | ($lag) | | | |"
done
