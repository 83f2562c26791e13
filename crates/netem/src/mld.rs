//! Just enough IPv6 to snoop Multicast Listener Discovery (RFC 2710 MLDv1,
//! RFC 3810 MLDv2): whether a frame's payload is an MLD message, and which
//! groups a report joins or leaves.
//!
//! Guests send these, so every length is checked and the ICMPv6 checksum is
//! verified: a corrupted report must not change who receives a group. Only
//! a Hop-by-Hop header may precede the ICMPv6 header (RFC 3810 puts the
//! Router Alert option there); other extension headers mean "not MLD".

use crate::wire::Mac;

/// IPv6 next-header values.
const HOP_BY_HOP: u8 = 0;
const ICMPV6: u8 = 58;
/// ICMPv6 types of MLD.
const QUERY: u8 = 130;
const REPORT_V1: u8 = 131;
const DONE_V1: u8 = 132;
const REPORT_V2: u8 = 143;
/// Bytes of the fixed IPv6 header.
const IPV6_HEADER: usize = 40;

/// One MLD message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MldMessage<'a> {
    /// A listener query: a multicast router (or querier) is behind the port.
    Query,
    /// A report or done: changes to the sender's memberships.
    Membership(Changes<'a>),
}

/// The membership changes of one report, as (group MAC, joined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Changes<'a> {
    /// MLDv1: one group joined (report) or left (done).
    V1 { group: Mac, joined: bool },
    /// MLDv2: the records left to read, and how many.
    V2 { records: &'a [u8], left: u16 },
}

impl Iterator for Changes<'_> {
    type Item = (Mac, bool);

    fn next(&mut self) -> Option<(Mac, bool)> {
        loop {
            match self {
                Changes::V1 { group, joined } => {
                    let change = (*group, *joined);
                    // Emptied: an MLDv2 list with nothing left.
                    *self = Changes::V2 { records: &[], left: 0 };
                    return Some(change);
                }
                Changes::V2 { records, left } => {
                    if *left == 0 || records.len() < 20 {
                        return None;
                    }
                    let kind = records[0];
                    let aux_words = usize::from(records[1]);
                    let sources = usize::from(u16::from_be_bytes([records[2], records[3]]));
                    let len = 20 + 16 * sources + 4 * aux_words;
                    let group = group_mac(&records[4..20]);
                    *records = records.get(len..).unwrap_or(&[]);
                    *left -= 1;
                    // Without source filtering, any record that admits some
                    // source is a join; "include nothing" is a leave. Block
                    // (6) narrows the sources of a group still joined.
                    let joined = match kind {
                        1 | 3 => sources > 0,
                        2 | 4 | 5 => true,
                        _ => continue,
                    };
                    return Some((group, joined));
                }
            }
        }
    }
}

/// The Ethernet group address of an IPv6 multicast address (RFC 2464):
/// 33:33 and its last four bytes.
fn group_mac(addr: &[u8]) -> Mac {
    let mut mac = [0x33, 0x33, 0, 0, 0, 0];
    if let Some(low) = addr.get(12..16) {
        mac[2..].copy_from_slice(low);
    }
    Mac(mac)
}

/// The MLD message in `ipv6` (an IPv6 packet, from its version field), if
/// it is one and its checksum is right.
pub(crate) fn parse(ipv6: &[u8]) -> Option<MldMessage<'_>> {
    if ipv6.len() < IPV6_HEADER || ipv6[0] >> 4 != 6 {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([ipv6[4], ipv6[5]]));
    let packet = ipv6.get(..IPV6_HEADER + payload_len)?;
    let mut next = packet[6];
    let mut at = IPV6_HEADER;
    if next == HOP_BY_HOP {
        let header = packet.get(at..at + 2)?;
        next = header[0];
        at += (usize::from(header[1]) + 1) * 8;
    }
    if next != ICMPV6 {
        return None;
    }
    let icmp = packet.get(at..)?;
    if icmp.len() < 8 || !checksum_ok(&packet[8..24], &packet[24..40], icmp) {
        return None;
    }
    match icmp[0] {
        QUERY => Some(MldMessage::Query),
        REPORT_V1 | DONE_V1 => {
            let group = icmp.get(8..24)?;
            Some(MldMessage::Membership(Changes::V1 { group: group_mac(group), joined: icmp[0] == REPORT_V1 }))
        }
        REPORT_V2 => {
            let left = u16::from_be_bytes([icmp[6], icmp[7]]);
            Some(MldMessage::Membership(Changes::V2 { records: &icmp[8..], left }))
        }
        _ => None,
    }
}

/// Whether the ICMPv6 checksum over the pseudo-header (RFC 8200 8.1) and
/// `icmp` comes out right.
fn checksum_ok(src: &[u8], dst: &[u8], icmp: &[u8]) -> bool {
    let Ok(len) = u32::try_from(icmp.len()) else {
        return false;
    };
    let mut sum = sum_words(src) + sum_words(dst) + (len >> 16) + (len & 0xffff) + u32::from(ICMPV6);
    sum += sum_words(icmp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// The 16-bit big-endian words of `bytes` summed (odd length padded with 0),
/// folded often enough that a jumbo payload cannot overflow.
fn sum_words(bytes: &[u8]) -> u32 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            [hi] => u16::from_be_bytes([*hi, 0]),
            _ => 0,
        };
        sum += u32::from(word);
        if sum >> 31 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    sum
}

/// MLD packets for tests (here and in the switch tests).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// An IPv6 packet from fe80::1 to `dst` carrying ICMPv6 `body` after a
    /// Router Alert Hop-by-Hop header, with a correct checksum.
    pub(crate) fn packet(dst: [u8; 16], mut body: Vec<u8>) -> Vec<u8> {
        let src = {
            let mut a = [0u8; 16];
            a[0] = 0xfe;
            a[1] = 0x80;
            a[15] = 1;
            a
        };
        body[2] = 0;
        body[3] = 0;
        let len = u32::try_from(body.len()).expect("small");
        let mut sum = sum_words(&src) + sum_words(&dst) + len + u32::from(ICMPV6) + sum_words(&body);
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let check = !(sum as u16);
        body[2..4].copy_from_slice(&check.to_be_bytes());
        let hbh = [ICMPV6, 0, 5, 2, 0, 0, 1, 0];
        let payload_len = u16::try_from(hbh.len() + body.len()).expect("small");
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&payload_len.to_be_bytes());
        p.extend_from_slice(&[HOP_BY_HOP, 1]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&hbh);
        p.extend_from_slice(&body);
        p
    }

    /// ff02::1:ffXX:XXXX for the last three bytes of `id`.
    pub(crate) fn solicited_node(id: u32) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0xff;
        a[1] = 0x02;
        a[11] = 1;
        a[12] = 0xff;
        a[13..].copy_from_slice(&id.to_be_bytes()[1..]);
        a
    }

    /// An MLDv2 report with one record of `kind` per group.
    pub(crate) fn report_v2(records: &[(u8, [u8; 16])]) -> Vec<u8> {
        let mut body = vec![REPORT_V2, 0, 0, 0, 0, 0];
        body.extend_from_slice(&u16::try_from(records.len()).expect("few").to_be_bytes());
        for (kind, group) in records {
            body.extend_from_slice(&[*kind, 0, 0, 0]);
            body.extend_from_slice(group);
        }
        let mut all_routers = [0u8; 16];
        all_routers[0] = 0xff;
        all_routers[1] = 0x02;
        all_routers[15] = 0x16;
        packet(all_routers, body)
    }

    /// An MLDv1 report (or done) for `group`.
    pub(crate) fn v1(kind: u8, group: [u8; 16]) -> Vec<u8> {
        let mut body = vec![kind, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&group);
        packet(group, body)
    }

    /// A general query to ff02::1.
    pub(crate) fn query() -> Vec<u8> {
        let mut all_nodes = [0u8; 16];
        all_nodes[0] = 0xff;
        all_nodes[1] = 0x02;
        all_nodes[15] = 1;
        let mut body = vec![QUERY, 0, 0, 0, 0x03, 0xe8, 0, 0];
        body.extend_from_slice(&[0; 16]);
        packet(all_nodes, body)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn reads_v2_records_and_v1_messages() {
        let a = solicited_node(0x0a0b0c);
        let b = solicited_node(0x010203);
        let p = report_v2(&[(4, a), (3, b), (6, a), (1, a)]);
        let Some(MldMessage::Membership(changes)) = parse(&p) else { panic!("a report: {p:?}") };
        let got: Vec<_> = changes.collect();
        let mac = |id: u32| Mac([0x33, 0x33, 0xff, (id >> 16) as u8, (id >> 8) as u8, id as u8]);
        assert_eq!(got, [(mac(0x0a0b0c), true), (mac(0x010203), false), (mac(0x0a0b0c), false)]);

        let done = v1(DONE_V1, a);
        let Some(MldMessage::Membership(changes)) = parse(&done) else { panic!("a done") };
        assert_eq!(changes.collect::<Vec<_>>(), [(mac(0x0a0b0c), false)]);
        assert_eq!(parse(&query()), Some(MldMessage::Query));
    }

    #[test]
    fn a_bad_checksum_or_truncation_is_not_mld() {
        let mut p = report_v2(&[(4, solicited_node(7))]);
        assert!(parse(&p).is_some());
        for len in 0..p.len() {
            assert_eq!(parse(&p[..len]), None, "truncated to {len}");
        }
        let last = p.len() - 1;
        p[last] ^= 1;
        assert_eq!(parse(&p), None);
    }

    #[test]
    fn a_record_count_beyond_the_data_ends_the_list() {
        let mut p = report_v2(&[(4, solicited_node(7))]);
        // Claim 9 records, fixing the checksum: only the one present is read.
        let icmp_at = IPV6_HEADER + 8;
        p[icmp_at + 7] = 9;
        let body = p[icmp_at..].to_vec();
        let fixed = packet(p[24..40].try_into().expect("16 bytes"), body);
        let Some(MldMessage::Membership(changes)) = parse(&fixed) else { panic!("a report") };
        assert_eq!(changes.count(), 1);
    }
}
