#!/usr/bin/env bash
# How the engine's cost grows: wall time against simulated duration and
# against circuit bandwidth, one thread and all cores, no capture.
# Usage: benches/scaling.sh   (from the repository root; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/eremu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "## wall time against simulated duration (oversubscribed: 1.5 Gbps offered to 1 Gbps)"
for d in 1s 10s 60s; do
  echo "### duration $d"
  "$bin" bench scenarios/oversubscribed.toml --duration "$d" --repeat 1 | sed -n '2,5p'
done

echo "## wall time against circuit bandwidth (one inbound flow at 90 % of it, 1500-byte packets, 1 s)"
for gbps in 1 10 100; do
  rate=$((gbps * 900))
  cat > "$tmp/bw-$gbps.toml" <<TOML
name = "bw-$gbps"
duration = "1s"
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "${gbps}Gbps"
custom = true
port_speed = "100Gbps"
mode = "active-passive"
[gateway]
sku = "ErGwScale"
scale_units = 40
fastpath = true
[[flows]]
name = "bulk"
kind = "udp-cbr"
from = "192.168.1.10"
to = "10.1.0.4"
rate = "${rate}Mbps"
size = 1500
TOML
  echo "### ${gbps} Gbps"
  "$bin" bench "$tmp/bw-$gbps.toml" --repeat 1 | sed -n '2,5p'
done
