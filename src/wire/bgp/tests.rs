use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const MARKER_HEX: &str = "ffffffffffffffffffffffffffffffff";

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

/// Parses `bytes`, checks it gives `repr`, and that emitting gives `bytes` back.
fn round_trip(bytes: &[u8], repr: &Repr) {
    assert_eq!(Repr::parse(bytes).as_ref(), Ok(repr));
    assert_eq!(repr.buffer_len(), bytes.len());
    assert_eq!(repr.to_bytes(), bytes);
}

#[test]
fn keepalive_is_nineteen_bytes() {
    let bytes = hex(&format!("{MARKER_HEX} 0013 04"));
    assert_eq!(bytes.len(), 19);
    round_trip(&bytes, &Repr::Keepalive);
}

#[test]
fn open_two_octet_as() {
    // version 4, AS 65020 (0xfdfc), hold 180 (0xb4), id 10.0.0.1, one optional
    // parameter (type 2, 12 bytes) with MP IPv4/unicast and 4-octet AS 65020.
    let bytes = hex(&format!(
        "{MARKER_HEX} 002b 01  04 fdfc 00b4 0a000001 0e  02 0c  01 04 0001 00 01  41 04 0000fdfc"
    ));
    let open = OpenRepr::new(65020, 180, Ipv4Addr::new(10, 0, 0, 1));
    round_trip(&bytes, &Repr::Open(open.clone()));
    assert!(open.four_octet_as());
}

#[test]
fn open_four_octet_as_uses_as_trans() {
    // 4200000000 = 0xfa56ea00 does not fit: the 2-octet field carries
    // AS_TRANS 23456 (0x5ba0) and the capability the real ASN.
    let bytes = hex(&format!(
        "{MARKER_HEX} 002b 01  04 5ba0 005a c0a80001 0e  02 0c  01 04 0001 00 01  41 04 fa56ea00"
    ));
    let open = OpenRepr::new(4_200_000_000, 90, Ipv4Addr::new(192, 168, 0, 1));
    round_trip(&bytes, &Repr::Open(open));
}

#[test]
fn open_without_capabilities_and_with_unknown_ones() {
    let bare = OpenRepr {
        my_as: 12076,
        hold_time: 0,
        bgp_id: Ipv4Addr::new(1, 2, 3, 4),
        capabilities: vec![],
    };
    round_trip(
        &hex(&format!("{MARKER_HEX} 001d 01 04 2f2c 0000 01020304 00")),
        &Repr::Open(bare),
    );
    let unknown = OpenRepr {
        capabilities: vec![Capability::Unknown {
            code: 2,
            value: vec![],
        }],
        ..OpenRepr::new(12076, 180, Ipv4Addr::new(1, 2, 3, 4))
    };
    let bytes = Repr::Open(unknown.clone()).to_bytes();
    round_trip(&bytes, &Repr::Open(unknown));
}

fn sample_update() -> UpdateRepr {
    UpdateRepr {
        withdrawn: vec![net("10.9.0.0/16")],
        attributes: Some(PathAttributes {
            med: Some(0),
            ..PathAttributes::new(vec![12076], Ipv4Addr::new(10, 0, 0, 2))
        }),
        nlri: vec![net("10.1.0.0/16"), net("10.2.128.0/17")],
    }
}

#[test]
fn update_with_withdrawals_attributes_and_nlri() {
    let bytes = hex(&format!(
        "{MARKER_HEX} 003c 02
         0003 10 0a09
         001b 40 01 01 00
              40 02 06 02 01 00002f2c
              40 03 04 0a000002
              80 04 04 00000000
         10 0a01  11 0a0280"
    ));
    round_trip(&bytes, &Repr::Update(sample_update()));
}

#[test]
fn update_local_pref_long_path_and_unknown_attribute() {
    let attrs = PathAttributes {
        origin: Origin::Incomplete,
        local_pref: Some(150),
        // 300 ASNs: two segments, and a value over 255 bytes (extended length).
        as_path: (1..=300).collect(),
        other: vec![RawAttribute {
            flags: 0xc0,
            type_code: 8,
            value: vec![0x2f, 0x2c, 0xc7, 0x3c],
        }],
        ..PathAttributes::new(vec![], Ipv4Addr::new(192, 0, 2, 1))
    };
    let repr = Repr::Update(UpdateRepr {
        withdrawn: vec![],
        attributes: Some(attrs),
        nlri: vec![
            net("0.0.0.0/0"),
            net("192.0.2.0/24"),
            net("198.51.100.7/32"),
        ],
    });
    let bytes = repr.to_bytes();
    // Extended length flag on AS_PATH: 2 segment headers + 1200 bytes of ASNs.
    let ap = bytes.windows(2).position(|w| w == [0x50, 0x02]).unwrap();
    assert_eq!(&bytes[ap + 2..ap + 4], &1204u16.to_be_bytes());
    round_trip(&bytes, &repr);
}

#[test]
fn withdraw_only_update() {
    let bytes = hex(&format!("{MARKER_HEX} 001c 02 0005 18 c00002 00 0000"));
    let repr = Repr::Update(UpdateRepr {
        withdrawn: vec![net("192.0.2.0/24"), net("0.0.0.0/0")],
        attributes: None,
        nlri: vec![],
    });
    round_trip(&bytes, &repr);
}

#[test]
fn notifications() {
    // Cease / Maximum Number of Prefixes Reached with the RFC 4486 data:
    // AFI 1, SAFI 1, limit 4000.
    let bytes = hex(&format!("{MARKER_HEX} 001c 03 06 01 0001 01 00000fa0"));
    let repr = Repr::Notification(NotificationRepr {
        code: 6,
        subcode: 1,
        data: vec![0, 1, 1, 0, 0, 0x0f, 0xa0],
    });
    round_trip(&bytes, &repr);
    let hold = Repr::Notification(NotificationRepr::new(4, 0));
    round_trip(&hex(&format!("{MARKER_HEX} 0015 03 04 00")), &hold);
    assert_eq!(
        NotificationRepr::new(6, 1).to_string(),
        "cease: maximum number of prefixes reached (6/1)"
    );
}

#[test]
fn malformed_headers() {
    let ka = Repr::Keepalive.to_bytes();
    assert_eq!(Repr::parse(&ka[..18]), Err(WireError::Truncated("header")));
    assert_eq!(Repr::parse(&[]), Err(WireError::Truncated("header")));
    let mut bad = ka.clone();
    bad[3] = 0xfe;
    assert_eq!(Repr::parse(&bad), Err(WireError::BadMarker));
    assert_eq!(bad.len(), 19);
    let mut bad = ka.clone();
    bad[17] = 18;
    assert_eq!(Repr::parse(&bad), Err(WireError::BadLength(18)));
    let mut bad = ka.clone();
    bad[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(Repr::parse(&bad), Err(WireError::BadLength(4097)));
    let mut bad = ka.clone();
    bad[18] = 5;
    assert_eq!(Repr::parse(&bad), Err(WireError::BadType(5)));
    // Keepalive with a body, and a buffer longer than the length field.
    let mut bad = ka.clone();
    bad.push(0);
    assert_eq!(Repr::parse(&bad), Err(WireError::BadLength(19)));
    bad[17] = 20;
    assert_eq!(Repr::parse(&bad), Err(WireError::BadLength(20)));
    // Length field larger than the buffer.
    bad[17] = 40;
    assert_eq!(Repr::parse(&bad), Err(WireError::Truncated("message")));
    assert_eq!(
        Repr::parse(&hex(&format!("{MARKER_HEX} 0014 03 06"))),
        Err(WireError::BadLength(20))
    );
    assert_eq!(
        WireError::BadMarker.notification(),
        NotificationRepr::new(1, 1)
    );
}

#[test]
fn malformed_open() {
    let with = |body: &str| {
        let b = hex(body);
        let mut v = hex(MARKER_HEX);
        v.extend_from_slice(&((19 + b.len()) as u16).to_be_bytes());
        v.push(1);
        v.extend_from_slice(&b);
        Repr::parse(&v)
    };
    assert_eq!(
        with("03 fdfc 00b4 0a000001 00"),
        Err(WireError::UnsupportedVersion(3))
    );
    assert_eq!(
        with("04 fdfc 00b4 0a000001 03 01 01 00"),
        Err(WireError::UnsupportedOptionalParameter(1))
    );
    // Parameter length overruns the message, capability overruns its parameter.
    assert!(matches!(
        with("04 fdfc 00b4 0a000001 05 02 04 01 04"),
        Err(WireError::Truncated(_))
    ));
    assert!(matches!(
        with("04 fdfc 00b4 0a000001 04 02 02 41 04"),
        Err(WireError::Truncated(_))
    ));
    assert!(matches!(with("04 fdfc"), Err(WireError::Truncated(_))));
}

/// An UPDATE message around `body`.
fn update_with(body: &str) -> Result<Repr, WireError> {
    let b = hex(body);
    let mut v = hex(MARKER_HEX);
    v.extend_from_slice(&((19 + b.len()) as u16).to_be_bytes());
    v.push(2);
    v.extend_from_slice(&b);
    Repr::parse(&v)
}

#[test]
fn malformed_update() {
    const GOOD: &str = "40 01 01 00  40 02 06 02 01 00002f2c  40 03 04 0a000002";
    assert!(update_with(&format!("0000 0014 {GOOD} 08 0a")).is_ok());
    // Attribute length says 10 bytes, 5 follow.
    assert!(matches!(
        update_with("0000 0005 40 01 0a 00 00"),
        Err(WireError::Truncated(_))
    ));
    // Withdrawn length overruns the message.
    assert!(matches!(
        update_with("0009 0000"),
        Err(WireError::Truncated(_))
    ));
    assert_eq!(
        update_with("0000 0000 08 0a"),
        Err(WireError::MissingWellKnownAttribute(1))
    );
    assert_eq!(
        update_with(&format!("0000 0014 {GOOD} 21 0a000000 00")),
        Err(WireError::InvalidNetwork(33))
    );
    assert!(matches!(
        update_with(&format!("0000 0014 {GOOD} 18 0a00")),
        Err(WireError::Truncated(_))
    ));
    assert_eq!(
        update_with("0000 0004 40 01 01 07"),
        Err(WireError::InvalidOrigin(7))
    );
    assert_eq!(
        update_with("0000 0004 80 01 01 00"),
        Err(WireError::AttributeFlags(1))
    );
    assert_eq!(
        update_with("0000 0008 40 01 01 00 40 01 01 00"),
        Err(WireError::MalformedAttributeList("attribute repeated"))
    );
    assert_eq!(
        update_with("0000 0009 40 02 06 01 01 00002f2c"),
        Err(WireError::MalformedAsPath(AsPathError::AsSet))
    );
    assert_eq!(
        update_with("0000 0009 40 02 06 02 02 00002f2c"),
        Err(WireError::MalformedAsPath(AsPathError::Overrun))
    );
    assert_eq!(
        update_with("0000 0007 40 03 04 00000000"),
        Err(WireError::InvalidNextHop)
    );
    assert_eq!(
        update_with("0000 0006 40 03 03 0a0000"),
        Err(WireError::AttributeLength(3))
    );
    assert_eq!(
        update_with("0000 0004 40 09 01 00"),
        Err(WireError::UnrecognizedWellKnownAttribute(9))
    );
    assert_eq!(
        update_with("0000 0004 40 02 00 00").map_err(|e| {
            let n = e.notification();
            (n.code, n.subcode)
        }),
        Err((3, 1))
    );
}

#[test]
fn pack_splits_large_updates_under_the_limit() {
    let prefixes: Vec<Ipv4Net> = (0..3000u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
        .collect();
    let attrs = PathAttributes::new(vec![65020, 65020], Ipv4Addr::new(10, 0, 0, 1));
    let updates = UpdateRepr::pack(&prefixes[..1500], Some(&attrs), &prefixes[1500..]);
    assert!(updates.len() > 1);
    let (mut w, mut n) = (vec![], vec![]);
    for u in &updates {
        let r = Repr::Update(u.clone());
        assert!(r.buffer_len() <= MAX_MESSAGE_LEN);
        assert_eq!(Repr::parse(&r.to_bytes()), Ok(r));
        assert_eq!(u.attributes.is_some(), !u.nlri.is_empty());
        w.extend_from_slice(&u.withdrawn);
        n.extend_from_slice(&u.nlri);
    }
    assert_eq!(w, &prefixes[..1500]);
    assert_eq!(n, &prefixes[1500..]);
    assert!(UpdateRepr::pack(&[], Some(&attrs), &[]).is_empty());
}

#[test]
fn deframer_handles_any_segmentation() {
    let msgs = vec![
        Repr::Open(OpenRepr::new(65020, 9, Ipv4Addr::new(10, 0, 0, 1))),
        Repr::Keepalive,
        Repr::Update(sample_update()),
        Repr::Notification(NotificationRepr::new(4, 0)),
    ];
    let stream: Vec<u8> = msgs.iter().flat_map(|m| m.to_bytes()).collect();
    for cut in 0..=stream.len() {
        let mut d = Deframer::new();
        let mut got = vec![];
        for chunk in [&stream[..cut], &stream[cut..]] {
            // Byte by byte on one side of the cut, all at once on the other.
            if cut % 2 == 0 {
                for b in chunk {
                    d.push(std::slice::from_ref(b));
                    while let Some(m) = d.next_message() {
                        got.push(m.unwrap());
                    }
                }
            } else {
                d.push(chunk);
                while let Some(m) = d.next_message() {
                    got.push(m.unwrap());
                }
            }
        }
        assert_eq!(got, msgs, "cut at {cut}");
        assert_eq!(d.pending(), 0);
    }
}

#[test]
fn deframer_stops_after_an_error() {
    let mut d = Deframer::new();
    let mut bad = Repr::Keepalive.to_bytes();
    bad[0] = 0;
    d.push(&bad);
    d.push(&Repr::Keepalive.to_bytes());
    assert_eq!(d.next_message(), Some(Err(WireError::BadMarker)));
    assert_eq!(d.next_message(), None);
    d.push(&Repr::Keepalive.to_bytes());
    assert_eq!(d.next_message(), None);
}

fn arb_net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn arb_attrs() -> impl Strategy<Value = PathAttributes> {
    (
        0u8..3,
        prop::collection::vec(any::<u32>(), 0..300),
        1u32..0xdfff_ffff,
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        prop::collection::vec(
            (6u8..=255, prop::collection::vec(any::<u8>(), 0..300)),
            0..3,
        ),
    )
        .prop_map(|(o, as_path, nh, med, local_pref, other)| {
            let mut seen = std::collections::HashSet::new();
            PathAttributes {
                origin: [Origin::Igp, Origin::Egp, Origin::Incomplete][o as usize],
                as_path,
                next_hop: Ipv4Addr::from(nh),
                med,
                local_pref,
                other: other
                    .into_iter()
                    .filter(|(t, _)| seen.insert(*t))
                    .map(|(type_code, value)| RawAttribute {
                        flags: 0xc0,
                        type_code,
                        value,
                    })
                    .collect(),
            }
        })
}

fn arb_repr() -> impl Strategy<Value = Repr> {
    prop_oneof![
        Just(Repr::Keepalive),
        (any::<u32>(), any::<u16>(), any::<u32>())
            .prop_map(|(a, h, id)| Repr::Open(OpenRepr::new(a, h, Ipv4Addr::from(id)))),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(
                |(code, subcode, data)| Repr::Notification(NotificationRepr {
                    code,
                    subcode,
                    data
                })
            ),
        (
            prop::collection::vec(arb_net(), 0..50),
            arb_attrs(),
            prop::collection::vec(arb_net(), 0..50)
        )
            .prop_map(|(withdrawn, attrs, nlri)| Repr::Update(UpdateRepr {
                withdrawn,
                attributes: (!nlri.is_empty()).then_some(attrs),
                nlri,
            })),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Repr::parse(&bytes);
        let mut d = Deframer::new();
        d.push(&bytes);
        while d.next_message().is_some() {}
    }

    /// Random bodies behind a valid header reach the per-type parsers.
    #[test]
    fn parse_body_never_panics(t in 1u8..=4, body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        v.push(t);
        v.extend_from_slice(&body);
        if let Ok(r) = Repr::parse(&v) {
            // Whatever parses re-parses to itself after emission.
            prop_assert_eq!(Repr::parse(&r.to_bytes()), Ok(r));
        }
    }

    #[test]
    fn emit_parse_round_trip(r in arb_repr()) {
        let bytes = r.to_bytes();
        prop_assert_eq!(bytes.len(), r.buffer_len());
        if bytes.len() <= MAX_MESSAGE_LEN {
            prop_assert_eq!(Repr::parse(&bytes), Ok(r));
        }
    }
}
