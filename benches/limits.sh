#!/usr/bin/env bash
# Peak memory and outcome of every input that once hung eremu, crashed it or
# exhausted memory: the table of the README's "Limits" section.
# Usage, from the repository root: benches/limits.sh target/release/eremu
set -u
echo "| input | exit | wall | peak RSS | outcome |"
echo "|---|---|---|---|---|"
B=${1:-target/release/eremu}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
S=scenarios
row() { # name, command...
  local name=$1; shift
  local start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$T/rss" timeout 600 "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local rss=$(tail -1 "$T/rss")
  local msg=$(grep -m1 -E 'error' "$T/err" | cut -c1-110)
  printf '| %s | %s | %.1f s | %d MB | %s |\n' "$name" "$rc" "$(echo "$(date +%s.%N) - $start" | bc)" "$((rss/1024))" "${msg:-ran to the end}"
}
{ cat $S/failover-secondary.toml; printf '\n[bgp]\nasn = 65010\nbfd = { interval = "300ms", multiplier = 3 }\n'; } > $T/bfd.toml
row "failover-secondary + BFD 300 ms x 3" $B run $T/bfd.toml --no-capture --out $T/o -q
python3 - "$T" <<'PY'
import sys, re
t = sys.argv[1]
base = open('scenarios/oversubscribed.toml').read()
base = base[:base.index('[capture]')]
def w(name, text): open(f'{t}/{name}.toml', 'w').write(text)
w('flows5000', base.replace('duration = "10s"', 'duration = "50ms"') + ''.join(
  f'[[flows]]\nname = "f{i}"\nkind = "udp-cbr"\nfrom = "192.168.{i//250}.{i%250+1}"\nto = "10.1.0.4"\nrate = "100kbps"\nsize = 200\n' for i in range(5000)))
w('names', base.replace('name = "backup"', 'name = "x_y"').replace('name = "voice"', 'name = "x/y"'))
w('dur', base.replace('duration = "10s"', 'duration = "9999999999s"'))
w('rate', base.replace('rate = "1.5Gbps"', 'rate = "18000000Tbps"'))
w('rate1t', base.replace('duration = "10s"', 'duration = "20ms"').replace('rate = "1.5Gbps"', 'rate = "1000Gbps"').replace('size = 1400', 'size = 64'))
w('interval', base.replace('duration = "10s"', 'duration = "10ms"') + '[report]\ninterval = "1us"\n')
w('prepend', base + '[bgp]\nasn = 65010\nas_path_prepend = { primary = 4294967295 }\n')
w('connect0', base + '[bgp]\nasn = 65010\nconnect_retry = "0s"\n')
w('connect1ns', base + '[bgp]\nasn = 65010\nconnect_retry = "1ns"\n')
adv = ''.join(f'[[advertise]]\nside = "onprem"\nprefix = "{i}.0.0.0/8"\nvia = ["primary", "secondary"]\nsplit = 25\n' for i in range(128, 168))
w('advertise', base.replace('prefixes = ["192.168.0.0/16"]', 'prefixes = ["192.168.0.0/16", "128.0.0.0/1"]') + '[bgp]\nasn = 65010\n' + adv)
tcp = open('scenarios/tcp-over-vpn.toml').read()
w('tcpbuf', tcp.replace('buffer = "8MiB"', 'buffer = "1073741823B"'))
w('tcp64', tcp.replace('buffer = "8MiB"', 'buffer = "4MiB"').replace('duration = "6s"', 'duration = "2s"').replace('[[events]]', ''.join(
  f'[[flows]]\nname = "t{i}"\nkind = "tcp-bulk"\nfrom = "192.168.2.{i}"\nto = "10.1.2.{i}"\n\n' for i in range(2, 64)) + '[[events]]', 1))
# The most prefixes accepted (2^16 + 2^15 + 2^10 + 2^9 + 2^7 + 2^5 = 100,000),
# with the longest AS paths, over both links and the tunnel.
vpn = open('scenarios/failover-to-vpn.toml').read()
vpn = vpn[:vpn.index('[[events]]')]
w('maxprefix', vpn + '[bgp]\nasn = 65010\nas_path_prepend = { primary = 254, secondary = 254, vpn = 254 }\n' + ''.join(
  f'[[advertise]]\nside = "onprem"\nprefix = "192.168.0.0/16"\nvia = ["primary", "secondary", "vpn"]\nsplit = {n}\n' for n in (32, 31, 26, 25, 23, 21)))
PY
row "5,000 UDP flows, 50 ms" $B run $T/flows5000.toml --no-capture --out $T/o -q
row "5,000 UDP flows, 50 ms, capture" $B run $T/flows5000.toml --out $T/o -q
row "flows x_y and x/y" $B run $T/names.toml --no-capture --out $T/o -q
row 'duration = "9999999999s"' $B run $T/dur.toml --no-capture --out $T/o -q
row 'rate = "18000000Tbps"' $B run $T/rate.toml --out $T/o -q
row '1 Tbps of 64-byte packets, 20 ms, capture' $B run $T/rate1t.toml --out $T/o -q
row 'report.interval = "1us", --duration 10s' $B bench $T/interval.toml --duration 10s --repeat 1
row 'as_path_prepend = 4294967295' $B run $T/prepend.toml --no-capture --out $T/o -q
row 'connect_retry = "0s"' $B run $T/connect0.toml --no-capture --out $T/o -q
row 'connect_retry = "1ns"' $B run $T/connect1ns.toml --no-capture --out $T/o -q
row '100,000 prefixes (the limit), 254 prepends, 10 s' $B run $T/maxprefix.toml --no-capture --out $T/o -q
row '40 x [[advertise]] of 131,072 prefixes' $B run $T/advertise.toml --no-capture --out $T/o -q
row 'TCP buffer = "1073741823B"' $B run $T/tcpbuf.toml --no-capture --out $T/o -q
row '64 TCP flows x 4 MiB (the total limit), 2 s' $B run $T/tcp64.toml --no-capture --out $T/o -q
# Replay: crafted captures.
python3 - "$T" <<'PY'
import sys, struct
t = sys.argv[1]
def pcap(name, recs):
    with open(f'{t}/{name}.pcap', 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 262144, 1))  # ns timestamps, Ethernet
        for ts, frame, orig in recs:
            f.write(struct.pack('<IIII', ts // 10**9, ts % 10**9, len(frame), orig))
            f.write(frame)
def udp(src_port, dst_port=5001, src=(192,168,1,10), dst=(10,1,0,4), n=64):
    ip_len = 20 + 8 + n
    ip = struct.pack('!BBHHHBBH4B4B', 0x45, 0, ip_len, 0, 0, 64, 17, 0, *src, *dst)
    s = sum(struct.unpack('!10H', ip)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
    ip = ip[:10] + struct.pack('!H', ~s & 0xffff) + ip[12:]
    u = struct.pack('!HHHH', src_port, dst_port, 8 + n, 0) + bytes(n)
    return bytes.fromhex('02000a010004' '02ce00000001' '0800') + ip + u
f = udp(1000)
pcap('origlen', [(0, f, 0xffffffff)])
pcap('day', [(0, f, len(f)), (86400 * 10**9, f, len(f))])
pcap('year', [(0, f, len(f)), (365 * 86400 * 10**9, f, len(f))])
pcap('tuples', [(i * 10_000, udp(1024 + i % 60000, 5001 + i // 60000), 0) for i in range(20000)])
PY
python3 - "$T" <<'PY'
import sys
t = sys.argv[1]
# orig_len must be at least the captured length for the tuples file
import struct
d = bytearray(open(f'{t}/tuples.pcap','rb').read()); o = 24
while o < len(d):
    incl = struct.unpack_from('<I', d, o + 8)[0]; struct.pack_into('<I', d, o + 12, incl); o += 16 + incl
open(f'{t}/tuples.pcap','wb').write(d)
PY
row 'replay: one record with orig_len 4 GiB' $B replay $T/origlen.pcap $S/circuit-200m.toml --out $T/o -q
row 'replay: a day between two packets' $B replay $T/day.pcap $S/circuit-200m.toml --out $T/o -q
row 'replay: a year between two packets' $B replay $T/year.pcap $S/circuit-200m.toml --out $T/o -q
row 'replay: 20,000 5-tuples' $B replay $T/tuples.pcap $S/circuit-200m.toml --out $T/o -q
row 'replay: 20,000 5-tuples, --max-flows 20000' $B replay $T/tuples.pcap $S/circuit-200m.toml --out $T/o -q --max-flows 20000
row 'replay --speed 0.000001x' $B replay $T/day.pcap $S/circuit-200m.toml --speed 0.000001x --out $T/o -q
# A 64 MB baseline.
mkdir -p $T/bl; $B baseline $S/circuit-200m.toml --out $T/bl >/dev/null 2>&1
python3 - "$T" <<'PY'
import sys, json
t = sys.argv[1]; p = f'{t}/bl/circuit-200m.json'
b = json.load(open(p)); m = b.get('metrics', {})
i = 0
while len(json.dumps(b)) < 64 << 20:
    for k in range(100000): m[f'padding.{i}.{k}'] = k
    i += 1
json.dump(b, open(p, 'w'))
PY
row 'check against a 64 MB baseline' $B check $S/circuit-200m.toml --baseline $T/bl
