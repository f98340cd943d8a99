//! Live mode end to end: three network namespaces (`onprem`, `azure`, and
//! the one eremu runs in) joined by veth pairs, addresses only inside them,
//! real ping and iperf3 through the modeled circuit. The veths keep their
//! default offloads (transmit checksum offload, TSO/GSO/GRO), so the test
//! also proves that eremu completes checksums and cuts super-frames.
//!
//! Needs root, iproute2, ping and iperf3. Without them the test says so on
//! stderr (`SKIPPED: ...`) and passes, unless `EREMU_REQUIRE_LIVE=1` (set by
//! `.ci/run`, which runs as root and installs them), where it fails.
//!
//! One test function runs the steps in order: they share the namespaces and
//! must not load the machine at the same time. Every load is bounded in time
//! (`timeout` with a kill after it, `-t`, `-c`, `--connect-timeout`), and the
//! namespaces are removed by a guard even when a step fails.
//!
//! What is asserted, and how the test stays sound on a loaded machine:
//! - Invariants of the model, read from eremu's own report (a policer never
//!   passes more than its rate and bucket; a shaped circuit is never
//!   policed; latencies are the modeled ones in virtual time) hold however
//!   slow the host is: they are asserted on every attempt.
//! - What depends on the host keeping up in real time (iperf3's goodput,
//!   whether the sender reached its rate, ping answering in time) is
//!   checked per attempt; a step passes when one of up to three attempts
//!   passes, and every attempt's outcome is printed. No assertion is on
//!   wall-clock time.
//! - eremu runs until it is stopped with SIGINT once the traffic is done,
//!   so that a slow client never outlives the circuit it talks through.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const EREMU: &str = env!("CARGO_BIN_EXE_eremu");

/// The namespaces of one test run; removed on drop.
struct Namespaces {
    onprem: String,
    azure: String,
    mid: String,
}

fn sh(args: &[&str]) -> Result<Output, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

impl Namespaces {
    /// onprem (192.168.1.10/16, op0) -- er-op [eremu in mid] er-az -- azure
    /// (10.1.0.4/16, az0); each side routes the other's prefix on-link, so
    /// ARP crosses eremu.
    fn create() -> Result<Namespaces, String> {
        let id = std::process::id();
        let ns = Namespaces {
            onprem: format!("eremu-op-{id}"),
            azure: format!("eremu-az-{id}"),
            mid: format!("eremu-mid-{id}"),
        };
        for n in [&ns.onprem, &ns.azure, &ns.mid] {
            sh(&["ip", "netns", "add", n])?;
        }
        let (op, az, mid) = (&ns.onprem[..], &ns.azure[..], &ns.mid[..]);
        let steps: Vec<Vec<&str>> = vec![
            vec![
                "ip", "link", "add", "op0", "netns", op, "type", "veth", "peer", "name", "er-op",
                "netns", mid,
            ],
            vec![
                "ip", "link", "add", "az0", "netns", az, "type", "veth", "peer", "name", "er-az",
                "netns", mid,
            ],
            vec![
                "ip",
                "-n",
                op,
                "addr",
                "add",
                "192.168.1.10/16",
                "dev",
                "op0",
            ],
            vec!["ip", "-n", az, "addr", "add", "10.1.0.4/16", "dev", "az0"],
            vec!["ip", "-n", op, "link", "set", "lo", "up"],
            vec!["ip", "-n", az, "link", "set", "lo", "up"],
            vec!["ip", "-n", op, "link", "set", "op0", "up"],
            vec!["ip", "-n", az, "link", "set", "az0", "up"],
            vec!["ip", "-n", mid, "link", "set", "er-op", "up"],
            vec!["ip", "-n", mid, "link", "set", "er-az", "up"],
            vec!["ip", "-n", op, "route", "add", "10.1.0.0/16", "dev", "op0"],
            vec![
                "ip",
                "-n",
                az,
                "route",
                "add",
                "192.168.0.0/16",
                "dev",
                "az0",
            ],
            // IPv6 too, so that neighbor discovery must cross eremu.
            vec![
                "ip",
                "-n",
                op,
                "addr",
                "add",
                "fd00:1::10/64",
                "dev",
                "op0",
                "nodad",
            ],
            vec![
                "ip",
                "-n",
                az,
                "addr",
                "add",
                "fd00:2::4/64",
                "dev",
                "az0",
                "nodad",
            ],
            vec![
                "ip",
                "-n",
                op,
                "-6",
                "route",
                "add",
                "fd00:2::/64",
                "dev",
                "op0",
            ],
            vec![
                "ip",
                "-n",
                az,
                "-6",
                "route",
                "add",
                "fd00:1::/64",
                "dev",
                "az0",
            ],
        ];
        for s in steps {
            sh(&s)?;
        }
        Ok(ns)
    }

    /// `args` in namespace `ns`, killed if still running after 60 s
    /// (SIGTERM, then SIGKILL 5 s later).
    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "60", "ip", "netns", "exec", ns])
            .args(args);
        c
    }

    /// Starts eremu live in the middle namespace for at most `duration`
    /// (a backstop: [`stop`] ends it), once it has opened both interfaces.
    fn eremu(&self, scenario: &Path, out: &Path, duration: &str) -> Child {
        let mut eremu = self.exec(
            &self.mid,
            &[
                EREMU,
                "live",
                scenario.to_str().unwrap(),
                "--onprem",
                "er-op",
                "--azure",
                "er-az",
                "--duration",
                duration,
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ],
        );
        eremu.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = eremu.spawn().expect("eremu starts");
        // Ready when its two packet sockets exist in the namespace.
        self.wait_for(&self.mid, &["cat", "/proc/net/packet"], |t| {
            t.lines().count() > 2
        });
        child
    }

    /// Polls `args` in `ns` (every 50 ms, for at most 20 s) until `ready`
    /// holds for its output; a step that then finds nothing ready fails in
    /// its own checks.
    fn wait_for(&self, ns: &str, args: &[&str], ready: impl Fn(&str) -> bool) {
        for _ in 0..400 {
            let out = self.exec(ns, args).output();
            if out.is_ok_and(|o| ready(&String::from_utf8_lossy(&o.stdout))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.onprem, &self.azure, &self.mid] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn skip_or_fail(why: &str) {
    if std::env::var("EREMU_REQUIRE_LIVE").as_deref() == Ok("1") {
        panic!("live test required (EREMU_REQUIRE_LIVE=1) but {why}");
    }
    eprintln!("SKIPPED: live mode test: {why}");
}

fn scenario(dir: &Path, name: &str, events: &str) -> PathBuf {
    scenario_on(dir, name, "10Gbps", events)
}

/// A 200 Mbps circuit on ports of `port` speed; 2 ms one way on the primary.
fn scenario_on(dir: &Path, name: &str, port: &str, events: &str) -> PathBuf {
    let text = format!(
        r#"name = "{name}"
duration = "30s"
[onprem]
prefixes = ["192.168.0.0/16", "fd00:1::/64"]
[azure]
prefixes = ["10.1.0.0/16", "fd00:2::/64"]
[circuit]
bandwidth = "200Mbps"
port_speed = "{port}"
mode = "active-passive"
[circuit.primary]
latency = "2ms"
queue = "1MiB"
[circuit.secondary]
latency = "3ms"
queue = "1MiB"
[gateway]
sku = "ErGw3Az"
{events}"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends `signal` to `child` (a `timeout` process, which forwards it).
fn signal(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
}

/// Stops eremu with SIGINT, as Ctrl-C does, and checks that it ended well
/// with complete outputs; returns its report.
fn stop(eremu: Child, out: &Path) -> serde_json::Value {
    signal(&eremu, "INT");
    let done = eremu.wait_with_output().expect("eremu ends");
    assert!(
        done.status.success(),
        "eremu live failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.join("capture.pcapng").exists(), "capture written");
    assert!(!out.join("capture.pcapng.partial").exists());
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    let r: serde_json::Value = serde_json::from_str(&text).expect("report.json parses");
    assert!(
        r["duration_ns"].as_u64().unwrap() < 60_000_000_000,
        "stopped before its backstop"
    );
    r
}

/// iperf3's JSON, or why there is none (failed, killed, hung).
fn iperf_json(out: &Output) -> Result<serde_json::Value, String> {
    if !out.status.success() {
        return Err(format!(
            "iperf3 ended with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("iperf3 -J output: {e}"))
}

/// Runs the iperf3 client `client` (arguments after `iperf3 -c 10.1.0.4
/// --connect-timeout 5000 -J`) from on-premises to a one-off server in
/// Azure, through eremu live on `scenario`; stops eremu once the client is
/// done. Returns iperf3's JSON (or why there is none) and eremu's report.
fn iperf_through(
    ns: &Namespaces,
    scenario: &Path,
    out: &Path,
    client: &[&str],
) -> (Result<serde_json::Value, String>, serde_json::Value) {
    let eremu = ns.eremu(scenario, out, "50s");
    let mut server = ns.exec(&ns.azure, &["iperf3", "-s", "-1"]);
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let server = server.spawn().expect("iperf3 -s starts");
    ns.wait_for(&ns.azure, &["ss", "-Hltn", "sport = :5201"], |t| {
        !t.trim().is_empty()
    });
    // The client's own limit: its run plus a generous 20 s, then killed.
    let mut args = vec!["timeout", "-k", "5", "30", "iperf3", "-c", "10.1.0.4"];
    args.extend(["--connect-timeout", "5000", "-J"]);
    args.extend(client);
    let run = ns.exec(&ns.onprem, &args).output().unwrap();
    // A one-off server ends with its client; one whose client never came
    // is told to.
    signal(&server, "TERM");
    let _ = server.wait_with_output();
    (iperf_json(&run), stop(eremu, out))
}

/// Runs `attempt` (given its number) up to three times until it passes;
/// prints every attempt's outcome and fails with all of them.
fn attempts(what: &str, mut attempt: impl FnMut(usize) -> Result<(), String>) {
    let mut failed = Vec::new();
    for n in 1..=3 {
        match attempt(n) {
            Ok(()) => {
                eprintln!("{what}: attempt {n} passed");
                return;
            }
            Err(e) => {
                eprintln!("{what}: attempt {n} failed: {e}");
                failed.push(format!("attempt {n}: {e}"));
            }
        }
    }
    panic!("{what}: all attempts failed:\n{}", failed.join("\n"));
}

/// `Err(message)` unless `ok`.
fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The report's flows of real traffic whose names start with `prefix`.
fn flows<'a>(r: &'a serde_json::Value, prefix: &str) -> Vec<&'a serde_json::Value> {
    let all = r["flows"].as_object().into_iter().flatten();
    all.filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, f)| f)
        .collect()
}

#[test]
fn real_traffic_crosses_the_modeled_circuit() {
    if !nix_root() {
        return skip_or_fail("not running as root");
    }
    for tool in ["ip", "ss", "ping", "iperf3", "timeout"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            return skip_or_fail(&format!("`{tool}` is not installed"));
        }
    }
    let ns = match Namespaces::create() {
        Ok(ns) => ns,
        Err(e) => return skip_or_fail(&format!("cannot make network namespaces: {e}")),
    };
    let tmp = tempfile::tempdir().unwrap();
    let plain = scenario(tmp.path(), "live-200m", "");

    // 1. ping, IPv4 then IPv6 (neighbor discovery must cross eremu too).
    attempts("ping", |n| {
        let out = tmp.path().join(format!("ping-{n}"));
        let eremu = ns.eremu(&plain, &out, "50s");
        let ping = ns
            .exec(
                &ns.onprem,
                &["ping", "-c", "10", "-i", "0.1", "-W", "2", "10.1.0.4"],
            )
            .output()
            .unwrap();
        let ping6 = ns
            .exec(
                &ns.onprem,
                &["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:2::4"],
            )
            .output()
            .unwrap();
        let r = stop(eremu, &out);
        let text = String::from_utf8_lossy(&ping.stdout).to_string();
        // "64 bytes from 10.1.0.4: icmp_seq=2 ttl=64 time=4.40 ms"
        let rtt: Vec<f64> = text
            .lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|v| v.trim_end_matches(" ms").parse().ok())
            .collect();
        // eremu never writes a frame before the virtual time the model
        // delivered it: no answer beats the modeled 2 ms each way, however
        // loaded the machine.
        assert!(
            rtt.iter().all(|&t| t >= 4.0),
            "an RTT below the modeled 4 ms: {text}"
        );
        // In virtual time the model's latency is exact: 2 ms of the
        // primary plus serialization of a ping frame at 10 Gbit/s (under
        // 0.1 us) and the gateway's per-packet work (well under 10 us).
        for prefix in [
            "icmp 192.168.1.10 > 10.1.0.4",
            "icmp 10.1.0.4 > 192.168.1.10",
        ] {
            for f in flows(&r, prefix) {
                let l = &f["latency_ns"];
                assert!(
                    u(&l["min"]) >= 2_000_000 && u(&l["max"]) < 2_010_000,
                    "{prefix}: {l}"
                );
            }
        }
        check(ping.status.success() && rtt.len() == 10, || {
            format!("10 answers to ping: {text}")
        })?;
        check(ping6.status.success(), || {
            format!("ping -6: {}", String::from_utf8_lossy(&ping6.stdout))
        })?;
        let frames = &r["ingress"]["frames"];
        check(
            u(&frames["bridged-nd"]) >= 2 && u(&frames["bridged-arp"]) >= 2,
            || format!("ARP and ND crossed: {frames}"),
        )?;
        // Ten IPv4 and three IPv6 echoes each way, all answered.
        let links = &r["links"]["primary"];
        let (i, o) = (&links["in"], &links["out"]);
        check(
            u(&i["delivered_packets"]) == 13 && u(&o["delivered_packets"]) == 13,
            || format!("13 echoes each way: in {i}, out {o}"),
        )
    });

    // 2. TCP through a 200 Mbps circuit whose CE shapes to the circuit rate
    //    (200 Mbps ports, as Microsoft advises: the MSEE's policer then never
    //    drops). A full frame takes IPv4 1500 + Ethernet 14 + 802.1Q 4 + FCS 4
    //    + preamble and gap 20 = 1542 bytes of the port for 1448 bytes of
    //    payload (MSS 1460 less 12 of timestamps): the most TCP can carry is
    //    200 x 1448 / 1542 = 187.8 Mbit/s. An idle 2-core host reaches it
    //    within 5 % (the README's live-mode table); a loaded one, where the
    //    sender, eremu and the receiver share the cores, falls short. The
    //    attempt asks for half of it: TCP flows through at a usable rate.
    let shaped = scenario_on(tmp.path(), "live-200m-shaped", "200Mbps", "");
    let ceiling = 200.0 * 1448.0 / 1542.0;
    attempts("tcp", |n| {
        let out = tmp.path().join(format!("tcp-{n}"));
        let (j, r) = iperf_through(&ns, &shaped, &out, &["-t", "6"]);
        let primary = &r["links"]["primary"]["in"];
        assert_eq!(u(&primary["drops"]["policer"]), 0, "shaped: {primary}");
        // No flow, in virtual time, beats the port: at most 1500 of every
        // 1542 bytes are IP.
        for f in flows(&r, "tcp 192.168.1.10:") {
            let bps = u(&f["throughput_bps"]) as f64 / 1e6;
            assert!(bps <= 200.0 * 1500.0 / 1542.0 * 1.001, "{bps} Mbit/s");
        }
        let j = j?;
        let got = j["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e6;
        eprintln!("tcp: attempt {n}: {got:.1} Mbit/s of the {ceiling:.1} the model allows");
        // The veths' offloads are on: super-frames were cut, checksums
        // completed.
        let counters = &r["ingress"]["counters"];
        check(
            u(&counters["super-frames-segmented"]) > 0 && u(&counters["checksums-completed"]) > 0,
            || format!("offloads handled: {counters}"),
        )?;
        check(got >= 0.5 * ceiling, || {
            format!("TCP goodput {got:.1} Mbit/s is below half of {ceiling:.1}")
        })
    });

    // 3. UDP at 1.5x the cap: 1400-byte datagrams are 1400 + 8 + 20 = 1428
    //    bytes of IP and 1428 + 14 + 4 + 4 = 1450 bytes the policer counts.
    //    Whatever the arrival pattern, a token bucket passes at most its
    //    depth plus its rate over the time the flow sent: 200 Mbit/s x T +
    //    5 ms of it (125,000 bytes). That bound is exact, so it is asserted
    //    on every attempt. Arrivals as iperf3 paced them (bursts of 1 ms,
    //    27 datagrams, well within the bucket's 86 frames) lose exactly the
    //    excess: 1 - 200 / (offered x 1450 / 1428), 0.356 at 300 Mbit/s.
    //    More is lost when eremu's receive thread falls behind on a loaded
    //    host: it reads what waited in the socket at once and stamps it with
    //    one time, a burst the bucket cannot hold (0.42 measured with two
    //    builds beside it). The attempt allows 0.10 above the exact share
    //    for that, and 0.03 below it for the rounding of rates.
    attempts("udp", |n| {
        let out = tmp.path().join(format!("udp-{n}"));
        let client = ["-u", "-b", "300M", "-l", "1400", "-t", "4"];
        let (j, r) = iperf_through(&ns, &plain, &out, &client);
        let udp = flows(&r, "udp 192.168.1.10:");
        let f = *udp.first().ok_or("no UDP flow in the report")?;
        let (sent, rx) = (u(&f["sent_packets"]), u(&f["received_packets"]));
        let offered = u(&f["offered_bps"]) as f64;
        // The flow's offered rate is over its first to last frame.
        let active_s = u(&f["sent_bytes"]) as f64 * 8.0 / offered.max(1.0);
        let allowed = 200e6 * active_s / 8.0 + 125_000.0;
        assert!(
            rx as f64 * 1450.0 <= allowed * 1.001,
            "the policer passed {rx} frames of 1450 bytes in {active_s:.3} s: {f}"
        );
        let _ = j?;
        check(offered >= 280e6, || {
            format!("the sender offered only {:.1} Mbit/s", offered / 1e6)
        })?;
        let expected = 1.0 - 200e6 / (offered * 1450.0 / 1428.0);
        let dropped = 1.0 - rx as f64 / sent.max(1) as f64;
        eprintln!("udp: attempt {n}: dropped {dropped:.3}, the model's share {expected:.3}");
        check((-0.03..=0.10).contains(&(dropped - expected)), || {
            format!("dropped {dropped:.3}, not within -0.03..+0.10 of {expected:.3}")
        })
    });

    // 4. The primary loses carrier 3 s into the run, during an iperf3 TCP
    //    run: traffic moves to the secondary and the transfer goes on.
    let failover = scenario(
        tmp.path(),
        "live-failover",
        "[[events]]\nat = \"3s\"\naction = \"link-down\"\nlink = \"primary\"\n",
    );
    attempts("failover", |n| {
        let out = tmp.path().join(format!("failover-{n}"));
        let (j, r) = iperf_through(&ns, &failover, &out, &["-t", "6"]);
        // eremu ran past 3 s (iperf3 alone ran 6 s): the event happened.
        assert!(
            !r["failovers"].as_array().unwrap().is_empty(),
            "the failover is reported"
        );
        let j = j?;
        let delivered = |link: &str| u(&r["links"][link]["in"]["delivered_packets"]);
        let (primary, secondary) = (delivered("primary"), delivered("secondary"));
        check(primary > 1000 && secondary > 1000, || {
            format!("primary {primary}, secondary {secondary}")
        })?;
        let last = j["intervals"]
            .as_array()
            .and_then(|i| i.last())
            .and_then(|i| i["sum"]["bits_per_second"].as_f64())
            .unwrap_or(0.0);
        check(last > 50e6, || {
            format!("TCP carries on after the failover: {last} bit/s in the last second")
        })
    });
    drop(ns);
}

fn nix_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
