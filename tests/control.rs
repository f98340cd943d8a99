//! The control plane end to end: BGP and BFD over the modeled links decide
//! where traffic goes, and failover times follow from the protocols' timers.

mod common;

use common::{have_tshark, install_esp_sa, load, text, tshark};
use eremu::scenario;
use eremu::{simulate, Report};

/// Time of the first timeline entry at or after `after` containing `needle`.
fn when(r: &Report, needle: &str, after: u64) -> u64 {
    r.timeline
        .iter()
        .find(|e| e.time_ns >= after && e.event.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` after {after} in {:#?}", r.timeline))
        .time_ns
}

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

#[test]
fn bfd_detects_a_silent_failure_within_its_detection_time() {
    let r = simulate(&load("silent-failure-bfd"));
    let f = &r.failovers[0];
    assert_eq!(
        (f.at_ns, f.path.as_str(), f.event.as_str()),
        (3 * S, "primary", "silent failure")
    );
    // The MSEE sends BFD every 225 to 300 ms (300 ms less up to 25 % jitter),
    // so the CE last heard it at most 300 ms before the failure; it declares
    // the session down 3 x 300 ms after that last packet: detection comes
    // between (3 - 1) x 300 and 3 x 300 ms after the failure.
    let detect = f.detect_ns.unwrap();
    assert!(detect > 600 * MS && detect <= 900 * MS, "{detect}");
    // BFD down takes BGP down at once, which withdraws the primary's routes:
    // the next packet (every 56 us at 200 Mbps of 1400 bytes) goes via the
    // secondary and arrives 2.5 ms plus 1,153.6 ns of serialization later.
    let app = &f.flows["app"];
    assert_eq!(app.path_after.as_deref(), Some("secondary"));
    let extra = app.converge_ns.unwrap() - detect;
    assert!((2_501_153..=2_501_153 + 56_000).contains(&extra), "{extra}");
    // What was lost: every packet that reached the black hole, i.e. sent from
    // 2 ms before the failure (already on the wire) until the switch.
    let flow = &r.flows["app"];
    assert_eq!(app.lost_packets, flow.drops["black-hole"]);
    let pps = 200e6 / (1400.0 * 8.0);
    let expected = ((detect as f64 + 2e6) / 1e9 * pps).round() as i64;
    assert!(
        (app.lost_packets as i64 - expected).abs() <= 2,
        "{} vs {expected}",
        app.lost_packets
    );
    // The outage the flow saw is the same interval.
    assert_eq!(flow.outages.len(), 1);
    assert_eq!(flow.outages[0].lost_packets, app.lost_packets);
}

#[test]
fn nothing_is_delivered_over_a_path_whose_routes_are_withdrawn() {
    let r = simulate(&load("silent-failure-bfd"));
    // The app flow sends every 56 us from 2 s. Via the primary arrive the
    // packets sent before 2.998 s (later ones meet the black hole at 3 s) and
    // those sent once the CE has learned the primary's routes again, until
    // 2 ms before the end. Nothing else may arrive on the primary.
    let gap = 1400.0 * 8.0 / 200e6;
    let count =
        |from: f64, to: f64| ((to - 2.0) / gap).ceil() as i64 - ((from - 2.0) / gap).ceil() as i64;
    let restored = when(&r, "CE: 1 routes learned, 0 withdrawn via primary", 6 * S) as f64 / 1e9;
    let expected = count(2.0, 2.998) + count(restored, 12.0 - 0.002);
    // The reply flow (outbound) also crosses the primary when routed there;
    // the app flow alone is inbound.
    let delivered = r.links["primary"]["in"].hop.delivered_packets as i64;
    assert!(
        (delivered - expected).abs() <= 1,
        "{delivered} vs {expected}"
    );
    // And the whole time between detection and restoration, the secondary
    // carried every app packet.
    assert!(r.links["secondary"]["in"].hop.delivered_packets > 0);
}

#[test]
fn without_bfd_the_hold_timer_decides() {
    let r = simulate(&load("silent-failure-no-bfd"));
    let f = &r.failovers[0];
    // The CE last heard the MSEE when the routes arrived (keepalives come
    // every 60 s, the first after 60 s); the session dies 180 s after that.
    let last = when(&r, "CE: 1 routes learned, 0 withdrawn via primary", 0);
    assert_eq!(f.detect_ns, Some(last + 180 * S - 10 * S));
    assert!(r
        .timeline
        .iter()
        .any(|e| e.event.contains("hold timer expired")));
    let app = &f.flows["app"];
    assert_eq!(app.path_after.as_deref(), Some("secondary"));
    assert!(app.converge_ns.unwrap() > 170 * S);
}

#[test]
fn both_msees_down_falls_back_to_the_vpn() {
    let r = simulate(&load("both-down-vpn"));
    let primary = r.failovers.iter().find(|f| f.path == "primary").unwrap();
    let backup = &primary.flows["backup"];
    assert_eq!(backup.path_after.as_deref(), Some("vpn"));
    // The CE moves it after BFD; the tunnel adds 12 ms +/- 1 ms of delay.
    let extra = backup.converge_ns.unwrap() - primary.detect_ns.unwrap();
    assert!((11 * MS..=13 * MS + 100_000).contains(&extra), "{extra}");
    // Azure stops using a failed MSEE at once (see README): voice, outbound,
    // reaches the VPN after the tunnel's delay alone.
    let voice = &primary.flows["voice"];
    assert_eq!(voice.path_after.as_deref(), Some("vpn"));
    assert!(voice.converge_ns.unwrap() < 14 * MS, "{voice:?}");
    assert!(r.conservation_errors().is_empty());
}

#[test]
fn a_more_specific_prefix_over_the_vpn_wins() {
    let r = simulate(&load("more-specific-over-vpn"));
    // 10.1.1.0/24 is advertised over the VPN only: longest prefix first.
    let vpn = r.links["vpn"]["in"].hop.delivered_packets;
    assert_eq!(vpn, r.flows["sensitive"].received_packets);
    // Everything else prefers ExpressRoute (local preference 150 over 100).
    let er = r.links["primary"]["in"].hop.delivered_packets
        + r.links["secondary"]["in"].hop.delivered_packets;
    assert_eq!(er, r.flows["bulk"].received_packets);
    assert!(r.flows["sensitive"].latency_ns.min >= 10 * MS);
}

#[test]
fn too_many_prefixes_tear_the_session_down() {
    let r = simulate(&load("route-limit-exceeded"));
    assert!(
        r.timeline
            .iter()
            .any(|e| e.event.contains("more than 4000 prefixes")),
        "{:#?}",
        r.timeline
    );
    // Azure learns no route to on-premises over ExpressRoute: replies take the VPN.
    let reply = &r.flows["reply"];
    assert_eq!(
        r.links["vpn"]["out"].hop.delivered_packets,
        reply.received_packets
    );
    assert!(reply.received_packets > 0);
    // Premium raises the limit to 10,000: the sessions stay up and replies
    // use ExpressRoute.
    let premium = text("route-limit-exceeded").replace("premium = false", "premium = true");
    let r = simulate(&scenario::parse("premium.toml", &premium).unwrap());
    assert_eq!(r.links["vpn"]["out"].hop.tx_packets, 0);
    assert!(!r.timeline.iter().any(|e| e.event.contains("prefixes")));
}

#[test]
fn outputs_do_not_depend_on_threads_with_a_control_plane() {
    let cfg = load("both-down-vpn");
    let a = eremu::simulate_with(&cfg, 1);
    let b = eremu::simulate_with(&cfg, 2);
    assert_eq!(a.to_json(true), b.to_json(true));
}

#[test]
fn tshark_decodes_bgp_and_bfd_in_the_captures() {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The sessions coming up (window from 0) and the failure.
    let sf = text("silent-failure-bfd")
        .replace("window = [\"2.9s\", \"4s\"]", "window = [\"0s\", \"4s\"]");
    let route_limit = text("route-limit-exceeded");
    for (name, t) in [("sf", sf), ("rl", route_limit)] {
        let cfg = scenario::parse("t.toml", &t).unwrap();
        let out = dir.path().join(name);
        eremu::run(&cfg, &out, true, 1).unwrap();
        let file = out.join("capture.pcapng");
        let bad = tshark(
            dir.path(),
            &file,
            &[
                "-Y",
                "(bgp || bfd || tcp) && (_ws.malformed || _ws.expert.severity >= 0x00600000)",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "_ws.expert.message",
            ],
        );
        assert!(bad.trim().is_empty(), "{name}: {bad}");
        let types = tshark(
            dir.path(),
            &file,
            &["-Y", "bgp", "-T", "fields", "-e", "bgp.type"],
        );
        for t in ["1", "2", "4"] {
            assert!(
                types.lines().any(|l| l.split(',').any(|x| x == t)),
                "{name}: no BGP type {t}: {types}"
            );
        }
        // 802.1Q-tagged like the data on the same link.
        let vlans = tshark(
            dir.path(),
            &file,
            &["-Y", "bgp || bfd", "-T", "fields", "-e", "vlan.id"],
        );
        assert!(vlans.lines().all(|l| l == "100"), "{name}: {vlans}");
        if name == "sf" {
            let states = tshark(
                dir.path(),
                &file,
                &["-Y", "bfd", "-T", "fields", "-e", "bfd.sta"],
            );
            assert!(states.lines().any(|l| l == "0x03"), "no BFD Up: {states}");
            assert!(states.lines().any(|l| l == "0x01"), "no BFD Down: {states}");
        } else {
            // NOTIFICATION: Cease (6), maximum number of prefixes reached (1).
            let n = tshark(
                dir.path(),
                &file,
                &[
                    "-Y",
                    "bgp.type == 3",
                    "-T",
                    "fields",
                    "-e",
                    "bgp.notify.major_error",
                    "-e",
                    "bgp.notify.minor_error_cease",
                ],
            );
            assert!(n.lines().any(|l| l == "6\t1"), "{n}");
        }
    }
}

#[test]
fn bgp_to_the_vpn_gateway_runs_inside_the_tunnel() {
    if !have_tshark() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = text("both-down-vpn").replace(
        "window = [\"2.95s\", \"4.2s\"]",
        "window = [\"0s\", \"0.2s\"]",
    );
    let cfg = scenario::parse("t.toml", &t).unwrap();
    let out = dir.path().join("out");
    eremu::run(&cfg, &out, true, 1).unwrap();
    // Decrypt with the written SA file, as a user would.
    install_esp_sa(dir.path(), &out);
    let file = out.join("capture.pcapng");
    let run = |args: &[&str]| tshark(dir.path(), &file, args);
    let bgp = run(&[
        "-Y",
        "frame.interface_name == \"vpn-internet\" && bgp",
        "-T",
        "fields",
        "-e",
        "esp.spi",
        "-e",
        "bgp.type",
    ]);
    // OPEN, KEEPALIVE and UPDATE both ways, inside ESP of both SAs.
    for (spi, t) in [
        ("0x00001001", "1"),
        ("0x00002001", "1"),
        ("0x00001001", "2"),
        ("0x00002001", "4"),
    ] {
        assert!(
            bgp.lines().any(|l| l.starts_with(spi)
                && l.split('\t')
                    .nth(1)
                    .is_some_and(|x| x.split(',').any(|y| y == t))),
            "{spi} {t}: {bgp}"
        );
    }
    // Sequence numbers of data and control in one SA arrive in order: no
    // warnings, no TCP analysis complaints inside the tunnel.
    let bad = run(&[
        "-Y",
        "_ws.malformed || _ws.expert.severity >= 0x00600000",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
    ]);
    assert!(bad.trim().is_empty(), "{bad}");
}

#[test]
fn a_bgp_reset_moves_traffic_away_and_back() {
    // The operator resets the CE's session to the primary MSEE at 3 s: the CE
    // sends a NOTIFICATION (Cease) and withdraws the primary's routes at once,
    // the session comes back after ConnectRetry (5 s) and a handshake.
    let t = text("silent-failure-bfd")
        .replace(
            "action = \"fail\"\nmode = \"silent\"",
            "action = \"bgp-reset\"",
        )
        .replace(
            "[[events]]\nat = \"6s\"\naction = \"link-up\"\nlink = \"primary\"\n",
            "",
        );
    let r = simulate(&scenario::parse("reset.toml", &t).unwrap_or_else(|e| panic!("{e}")));
    let f = &r.failovers[0];
    assert_eq!((f.event.as_str(), f.detect_ns), ("BGP reset", Some(0)));
    let app = &f.flows["app"];
    assert_eq!(app.path_after.as_deref(), Some("secondary"));
    // The next packet after the reset goes via the secondary: 2.5 ms away.
    assert!(app.converge_ns.unwrap() < 2_600_000, "{app:?}");
    assert_eq!(app.lost_packets, 0);
    assert!(r
        .timeline
        .iter()
        .any(|e| e.event.contains("bgp CE primary: Established -> Idle")));
    let back = when(&r, "flow app: first packet delivered via primary", 3 * S);
    assert!(back > 8 * S && back < 9 * S, "{back}");
}

#[test]
fn a_recovered_msee_takes_traffic_back() {
    let t = text("both-down-vpn").replace("duration = \"6s\"", "duration = \"12s\"")
        + "\n[[events]]\nat = \"5s\"\naction = \"msee-up\"\nlink = \"primary\"\n";
    let r = simulate(&scenario::parse("up.toml", &t).unwrap_or_else(|e| panic!("{e}")));
    // The restarted MSEE's session comes back; the CE's waits for its
    // ConnectRetry after the BFD failure (3.88 s + 5 s), then routes return.
    let back = when(&r, "flow backup: first packet delivered via primary", 5 * S);
    assert!(back > 8 * S && back < 10 * S, "{back}");
    assert!(r.conservation_errors().is_empty());
}
