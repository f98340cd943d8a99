//! Wireshark agrees with our bytes: BGP over TCP port 179 and BFD over UDP
//! port 3784, written to a pcap and decoded by `tshark`. Skipped (with a
//! line saying so) when tshark is not installed; CI installs it.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use eremu::wire::bfd::{self, Diagnostic, State};
use eremu::wire::bgp::{NotificationRepr, OpenRepr, PathAttributes, Repr, UpdateRepr};
use eremu::wire::tcp_stream::{Endpoint, Side, TcpStream};
use ipnet::Ipv4Net;
use pcap_file::pcap::{PcapPacket, PcapWriter};

const CE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MSEE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 1);
const MSEE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 2);

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bfd_frame(from_ce: bool, p: &bfd::Repr) -> Vec<u8> {
    let (smac, dmac, sip, dip) = if from_ce {
        (CE_MAC, MSEE_MAC, CE_IP, MSEE_IP)
    } else {
        (MSEE_MAC, CE_MAC, MSEE_IP, CE_IP)
    };
    // RFC 5881: TTL 255, source port from 49152, destination 3784.
    let b = etherparse::PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip.octets(), dip.octets(), 255)
        .udp(bfd::SOURCE_PORT_MIN + from_ce as u16, bfd::PORT);
    let mut v = Vec::new();
    b.write(&mut v, &p.to_bytes()).unwrap();
    v
}

/// The frames of a short BGP session and a BFD bring-up, in order.
fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // BFD: Down, Init, Up, Up (3-way bring-up).
    let mut p = bfd::Repr {
        diag: Diagnostic::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 0x11,
        your_discriminator: 0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
    };
    out.push(bfd_frame(true, &p));
    let mut q = bfd::Repr {
        my_discriminator: 0x22,
        your_discriminator: 0x11,
        state: State::Init,
        ..p
    };
    out.push(bfd_frame(false, &q));
    p.state = State::Up;
    p.your_discriminator = 0x22;
    p.desired_min_tx_us = 300_000;
    p.poll = true;
    out.push(bfd_frame(true, &p));
    q.state = State::Up;
    q.final_ = true;
    out.push(bfd_frame(false, &q));

    // BGP: CE connects to the MSEE's port 179.
    let ce = Endpoint {
        mac: CE_MAC,
        ip: CE_IP,
        port: 51_234,
    };
    let msee = Endpoint {
        mac: MSEE_MAC,
        ip: MSEE_IP,
        port: eremu::wire::bgp::PORT,
    };
    let mut tcp = TcpStream::new(ce, msee, 0x1000_0000, 0x2000_0000);
    out.extend(tcp.handshake().unwrap());
    let send = |tcp: &mut TcpStream, side, m: Repr| {
        let mut v = tcp.data(side, &m.to_bytes()).unwrap();
        let other = if side == Side::Client {
            Side::Server
        } else {
            Side::Client
        };
        v.extend(tcp.ack(other).unwrap());
        v
    };
    out.extend(send(
        &mut tcp,
        Side::Client,
        Repr::Open(OpenRepr::new(65020, 9, CE_IP)),
    ));
    let msee_open = OpenRepr::new(12076, 180, Ipv4Addr::new(10, 255, 0, 1));
    out.extend(send(&mut tcp, Side::Server, Repr::Open(msee_open)));
    out.extend(send(&mut tcp, Side::Client, Repr::Keepalive));
    out.extend(send(&mut tcp, Side::Server, Repr::Keepalive));
    // 600 /24s: an UPDATE over 2,000 bytes, so it spans two TCP segments.
    let nlri: Vec<Ipv4Net> = (0..600u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
        .collect();
    let mut attrs = PathAttributes::new(vec![65020], CE_IP);
    attrs.med = Some(50);
    let update = UpdateRepr {
        withdrawn: vec![],
        attributes: Some(attrs),
        nlri,
    };
    out.extend(send(&mut tcp, Side::Client, Repr::Update(update)));
    let cease = NotificationRepr {
        code: 6,
        subcode: 1,
        data: vec![0, 1, 1, 0, 0, 0x0f, 0xa0],
    };
    out.extend(send(&mut tcp, Side::Server, Repr::Notification(cease)));
    out.push(tcp.fin(Side::Server).unwrap());
    out.push(tcp.fin(Side::Client).unwrap());
    out.extend(tcp.ack(Side::Server).unwrap());
    out
}

#[test]
fn tshark_decodes_bgp_and_bfd_without_complaint() {
    if !tshark_available() {
        println!("skipped: tshark not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("protocols.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (i, f) in frames().iter().enumerate() {
        let ts = Duration::from_millis(10 * i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
    drop(w);
    if let Ok(keep) = std::env::var("EREMU_KEEP_PCAP") {
        std::fs::copy(&path, keep).unwrap();
    }

    // Nothing malformed, no TCP analysis flag, no expert warning or error,
    // and no note but the two that mark an orderly close (SYN/FIN notices
    // are "chat" level). Severities: note 0x400000, warning 0x600000.
    let bad = tshark(
        &path,
        &[
            "-Y",
            "_ws.malformed || tcp.analysis.flags || _ws.expert.severity >= 6291456 \
             || (_ws.expert.severity == 4194304 \
                 && !tcp.connection.fin_active && !tcp.connection.fin_passive)",
        ],
    );
    assert!(
        bad.trim().is_empty(),
        "tshark complains:\n{bad}\n{}",
        tshark(&path, &["-V", "-Y", "_ws.expert"])
    );

    let fields = |filter: &str, names: &[&str]| -> Vec<String> {
        let mut args = vec!["-Y", filter, "-T", "fields", "-E", "separator=;"];
        for n in names {
            args.extend(["-e", n]);
        }
        tshark(&path, &args).lines().map(str::to_string).collect()
    };
    assert_eq!(
        fields(
            "bfd",
            &[
                "bfd.sta",
                "bfd.flags.p",
                "bfd.flags.f",
                "bfd.detect_time_multiplier"
            ]
        ),
        ["0x01;0;0;3", "0x02;0;0;3", "0x03;1;0;3", "0x03;0;1;3"]
            .map(|s| s.to_string())
            .to_vec(),
    );
    assert_eq!(
        fields(
            "bfd",
            &["bfd.my_discriminator", "bfd.desired_min_tx_interval"]
        )[2],
        "0x00000011;300000"
    );
    // One BGP message per frame, in order; the UPDATE decoded after reassembly.
    assert_eq!(fields("bgp", &["bgp.type"]), ["1", "1", "4", "4", "2", "3"]);
    assert_eq!(
        fields(
            "bgp.type == 1",
            &["bgp.open.myas", "bgp.open.holdtime", "bgp.open.identifier"]
        ),
        ["65020;9;192.168.100.1", "12076;180;10.255.0.1"]
    );
    let update = fields(
        "bgp.type == 2",
        &[
            "bgp.nlri_prefix",
            "bgp.update.path_attribute.multi_exit_disc",
            "bgp.update.path_attribute.next_hop",
            "bgp.update.path_attribute.as_path_segment.as4",
        ],
    );
    let cols: Vec<&str> = update[0].split(';').collect();
    let prefixes: Vec<&str> = cols[0].split(',').collect();
    assert_eq!(prefixes.len(), 600);
    assert_eq!((prefixes[0], prefixes[599]), ("10.0.0.0", "10.2.87.0"));
    // The AS_PATH is read with 4-octet ASNs, as the OPENs announced.
    assert_eq!(&cols[1..], ["50", "192.168.100.1", "65020"]);
    assert_eq!(
        fields(
            "bgp.type == 3",
            &["bgp.notify.major_error", "bgp.notify.minor_error_cease"]
        ),
        ["6;1"]
    );
}
