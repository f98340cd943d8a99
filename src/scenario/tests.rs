//! Bad input: every malformed or inconsistent scenario is refused with the
//! file, line and key, never a panic.

use super::*;

const GOOD: &str = include_str!("../../scenarios/failover-to-vpn.toml");

/// Replaces `from` (which must occur in GOOD) and returns the error text.
fn error_with(from: &str, to: &str) -> String {
    assert!(
        GOOD.contains(from),
        "test edits text that is not there: {from}"
    );
    let text = GOOD.replacen(from, to, 1);
    match parse("bad.toml", &text) {
        Ok(_) => panic!("accepted: {to}"),
        Err(e) => e.to_string(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn the_default_scenario_is_valid() {
    let cfg = parse("failover-to-vpn.toml", GOOD).unwrap();
    assert_eq!(cfg.name, "failover-to-vpn");
    assert_eq!(cfg.flows[0].dscp, 18); // AF21
    assert_eq!(cfg.flows[0].direction, Direction::In);
    assert_eq!(cfg.events.len(), 3);
    assert_eq!(
        cfg.vpn.unwrap().rate,
        crate::units::BitRate::from_mbps(1250)
    );
}

#[test]
fn bad_unit_names_file_line_and_key() {
    let e = error_with("rate = \"600Mbps\"", "rate = \"600 parsecs\"");
    let line = line_of(GOOD, "rate = \"600Mbps\"");
    assert!(e.starts_with(&format!("bad.toml:{line}:")), "{e}");
    assert!(e.contains("flows[0].rate"), "{e}");
    assert!(e.contains("parsecs"), "{e}");
}

#[test]
fn unknown_key_is_an_error() {
    let e = error_with("seed = 1", "seed = 1\ncolour = \"blue\"");
    assert!(e.contains("bad.toml:5:"), "{e}");
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn address_outside_prefixes() {
    let e = error_with("to = \"10.1.0.4\"", "to = \"172.16.0.4\"");
    assert!(e.contains("flows[0].to"), "{e}");
    assert!(e.contains("outside both"), "{e}");
}

#[test]
fn event_on_a_missing_link() {
    let e = error_with("link = \"secondary\"", "link = \"tertiary\"");
    assert!(e.contains("events[1].link"), "{e}");
    let no_vpn = GOOD.replace("[vpn]", "[unused]");
    assert!(parse("x.toml", &no_vpn).is_err());
}

#[test]
fn zero_duration() {
    let e = error_with("duration = \"10s\"", "duration = \"0s\"");
    assert!(e.contains("bad.toml:3:") && e.contains("duration"), "{e}");
}

#[test]
fn bandwidth_must_be_a_sku_unless_custom() {
    let e = error_with("bandwidth = \"1Gbps\"", "bandwidth = \"750Mbps\"");
    assert!(
        e.contains("circuit.bandwidth") && e.contains("custom = true"),
        "{e}"
    );
    let custom = GOOD.replacen(
        "bandwidth = \"1Gbps\"",
        "bandwidth = \"750Mbps\"\ncustom = true",
        1,
    );
    assert!(parse("x.toml", &custom).is_ok());
    let direct = GOOD
        .replacen(
            "bandwidth = \"1Gbps\"",
            "bandwidth = \"100Gbps\"\ndirect = true",
            1,
        )
        .replacen("port_speed = \"10Gbps\"", "port_speed = \"100Gbps\"", 1);
    assert!(parse("x.toml", &direct).is_ok());
}

#[test]
fn more_bad_values() {
    for (from, to, needle) in [
        ("sku = \"ErGw2Az\"", "sku = \"ErGw9\"", "gateway.sku"),
        (
            "gateway_sku = \"VpnGw2\"",
            "gateway_sku = \"VpnGw9\"",
            "vpn.gateway_sku",
        ),
        (
            "mode = \"active-active\"",
            "mode = \"sideways\"",
            "circuit.mode",
        ),
        (
            "kind = \"udp-cbr\"",
            "kind = \"tcp-magic\"",
            "flows[0].kind",
        ),
        ("size = 1400", "size = \"10..5\"", "flows[0].size"),
        ("size = 1400", "size = 20", "flows[0].size"),
        ("dscp = \"AF21\"", "dscp = \"AF99\"", "flows[0].dscp"),
        ("stop = \"10s\"", "stop = \"11s\"", "flows[0].stop"),
        ("at = \"8s\"", "at = \"10s\"", "events[2].at"),
        (
            "prefixes = [\"10.1.0.0/16\"]",
            "prefixes = [\"10.1.0.0/33\"]",
            "azure.prefixes[0]",
        ),
        (
            "prefixes = [\"10.1.0.0/16\"]",
            "prefixes = [\"192.168.5.0/24\"]",
            "azure.prefixes",
        ),
        (
            "latency = \"2ms\"",
            "latency = 2",
            "circuit.primary.latency",
        ),
        ("mtu = 1400", "mtu = 9000", "vpn.mtu"),
        ("fastpath = false", "fastpath = true", "gateway.sku"),
        (
            "action = \"link-down\"         #",
            "action = \"set-bandwidth\" #",
            "events[0].action",
        ),
    ] {
        let e = error_with(from, to);
        assert!(e.contains(needle), "{to}: {e}");
        assert!(e.starts_with("bad.toml:"), "{e}");
    }
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "\0\0\u{1}",
        "[[[",
        "name = ",
        "duration = \"1e99s\"",
        "name=\"x\"\nduration=\"1s\"\n[onprem]\nprefixes=[]",
    ] {
        assert!(parse("g.toml", text).is_err());
    }
    // Every truncation of a valid file is handled without a panic.
    for cut in (0..GOOD.len()).filter(|&i| GOOD.is_char_boundary(i)) {
        let _ = parse("cut.toml", &GOOD[..cut]);
    }
}

#[test]
fn missing_file() {
    let e = load(std::path::Path::new("/nonexistent/x.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/x.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn bad_vlan_key_and_spi_are_refused() {
    let with_circuit = |extra: &str| {
        GOOD.replacen(
            "mode = \"active-active\"",
            &format!("mode = \"active-active\"\n{extra}"),
            1,
        )
    };
    for (text, needle) in [
        (with_circuit("vlan = 4095"), "circuit.vlan"),
        (with_circuit("vlan = 0"), "circuit.vlan"),
        (with_circuit("s_tag = 5"), "circuit.s_tag"),
        (
            with_circuit("encapsulation = \"qinq\"\ns_tag = 9999"),
            "circuit.s_tag",
        ),
        (
            GOOD.replacen("mtu = 1400", "mtu = 1400\nspi_in = 255", 1),
            "vpn.spi_in",
        ),
        (
            GOOD.replacen("mtu = 1400", "mtu = 1400\nspi_out = 4294967296", 1),
            "vpn.spi_out",
        ),
        (
            GOOD.replacen("mtu = 1400", "mtu = 1400\nkey_in = \"0x0011\"", 1),
            "vpn.key_in",
        ),
        (
            GOOD.replacen(
                "mtu = 1400",
                &format!("mtu = 1400\nkey_out = \"{}\"", "zz".repeat(36)),
                1,
            ),
            "vpn.key_out",
        ),
        (
            GOOD.replacen("mtu = 1400", "mtu = 1400\npath_mtu = 100", 1),
            "vpn.path_mtu",
        ),
        (
            GOOD.replacen("[capture]", "[capture]\ntaps = [\"nowhere\"]", 1),
            "capture.taps[0]",
        ),
        (
            GOOD.replacen(
                "window = [\"5.995s\", \"6.02s\"]",
                "window = [\"5s\", \"1s\"]",
                1,
            ),
            "capture.window",
        ),
        (
            GOOD.replacen("[capture]", "[capture]\nflows = [\"nobody\"]", 1),
            "capture.flows[0]",
        ),
        (
            GOOD.replacen("[capture]", "[capture]\nsnaplen = 3", 1),
            "capture.snaplen",
        ),
    ] {
        let e = parse("bad.toml", &text).expect_err(needle).to_string();
        assert!(
            e.contains(needle) && e.starts_with("bad.toml:"),
            "{needle}: {e}"
        );
    }
    let good_key = GOOD.replacen(
        "mtu = 1400",
        &format!(
            "mtu = 1400\nspi_in = 4096\nkey_in = \"0x{}\"",
            "ab".repeat(36)
        ),
        1,
    );
    let cfg = parse("ok.toml", &good_key).unwrap();
    assert_eq!(cfg.vpn.unwrap().sa_in.spi, 4096);
    assert_eq!(cfg.vpn.unwrap().sa_in.key, [0xab; 36]);
}
