//! Software segmentation of GSO super-frames and checksum completion.
//!
//! A veth peer with TSO/GSO on (the default) hands AF_PACKET TCP or UDP
//! super-frames of up to 64 KiB whose L4 checksum is left for "the NIC".
//! A link that shapes rate, limits the MTU or drops frames must see the
//! frames a real wire would carry, so the engine cuts such a super-frame
//! into MSS-sized frames here, exactly as the kernel's `tcp_gso_segment`
//! and `__udp_gso_segment` would: headers copied, IPv4 length, id and header
//! checksum, IPv6 payload length, TCP sequence numbers and FIN/PSH/CWR
//! flags, UDP length fixed per segment. Each segment keeps a pending L4
//! checksum (`NEEDS_CSUM` with the pseudo-header sum in the checksum field),
//! which the receiving veth accepts as locally generated, so no payload is
//! summed on the fast path. [`complete_checksum`] sums it when a frame is
//! about to be corrupted, so the damage is visible to the receiver.
//!
//! Everything is length-checked first ([`plan`]); [`write_segment`] cannot
//! panic on a plan that `plan` returned for the same frame.

use thiserror::Error;

use crate::port::{NEEDS_CSUM, Offload};

/// Why a super-frame cannot be segmented; the engine drops and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GsoError {
    /// Headers run past the end of the frame, or the segment size is 0.
    #[error("truncated or malformed headers")]
    Malformed,
    /// A GSO type or protocol layout we do not segment (UFO, IPv6
    /// extension headers, tunnels).
    #[error("unsupported GSO type {0:#x}")]
    Unsupported(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L3 {
    V4,
    V6,
}

/// Where the headers of a super-frame are and how it splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    l3: usize,
    l4: usize,
    hdr_len: usize,
    mss: usize,
    len: usize,
    ip: L3,
    tcp: bool,
    count: usize,
}

impl Plan {
    /// Number of segments.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Length of segment `i`.
    pub fn segment_len(&self, i: usize) -> usize {
        let start = self.hdr_len + i * self.mss;
        self.hdr_len + (self.len - start).min(self.mss)
    }

    /// Bytes on the wire of all segments together.
    pub fn wire_bytes(&self) -> usize {
        self.len + (self.count - 1) * self.hdr_len
    }
}

/// Checks a super-frame and says how it splits.
pub fn plan(frame: &[u8], offload: &Offload) -> Result<Plan, GsoError> {
    let gso = offload.gso_type & 0x7f;
    let tcp = match gso {
        1 | 4 => true,
        5 => false,
        other => return Err(GsoError::Unsupported(other)),
    };
    let byte = |i: usize| frame.get(i).copied().ok_or(GsoError::Malformed);
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([byte(12)?, byte(13)?]);
    if ethertype == 0x8100 {
        l3 = 18;
        ethertype = u16::from_be_bytes([byte(16)?, byte(17)?]);
    }
    let (ip, l4, proto) = match ethertype {
        0x0800 => (L3::V4, l3 + usize::from(byte(l3)? & 0x0f) * 4, byte(l3 + 9)?),
        0x86dd => (L3::V6, l3 + 40, byte(l3 + 6)?),
        _ => return Err(GsoError::Unsupported(gso)),
    };
    let hdr_len = match (tcp, proto) {
        (true, 6) => l4 + usize::from(byte(l4 + 12)? >> 4) * 4,
        (false, 17) => l4 + 8,
        _ => return Err(GsoError::Unsupported(gso)),
    };
    let mss = usize::from(offload.gso_size);
    if mss == 0 || hdr_len > frame.len() || l4 <= l3 + 19 {
        return Err(GsoError::Malformed);
    }
    let payload = frame.len() - hdr_len;
    let count = payload.div_ceil(mss).max(1);
    Ok(Plan { l3, l4, hdr_len, mss, len: frame.len(), ip, tcp, count })
}

/// Adds big-endian 16-bit words of `data` to a one's complement sum.
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        // Fold early so the accumulator never overflows.
        if acc > 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The pseudo-header sum (folded, not inverted) of an L4 segment of
/// `l4_len` bytes.
fn pseudo_sum(out: &[u8], plan: &Plan, proto: u8, l4_len: usize) -> u16 {
    let acc = match plan.ip {
        L3::V4 => sum_words(0, &out[plan.l3 + 12..plan.l3 + 20]),
        L3::V6 => sum_words(0, &out[plan.l3 + 8..plan.l3 + 40]),
    };
    fold(acc + u32::from(proto) + (l4_len as u32 & 0xffff) + (l4_len as u32 >> 16))
}

/// Writes segment `i` of `frame` into `out` (at least
/// `plan.segment_len(i)` bytes) and returns its length and offload state.
pub fn write_segment(frame: &[u8], plan: &Plan, i: usize, out: &mut [u8]) -> (usize, Offload) {
    let h = plan.hdr_len;
    let start = h + i * plan.mss;
    let payload = (plan.len - start).min(plan.mss);
    let seg_len = h + payload;
    let out = &mut out[..seg_len];
    out[..h].copy_from_slice(&frame[..h]);
    out[h..].copy_from_slice(&frame[start..start + payload]);
    let (l3, l4) = (plan.l3, plan.l4);
    let l4_len = seg_len - l4;
    match plan.ip {
        L3::V4 => {
            let total = (seg_len - l3) as u16;
            out[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            if plan.tcp {
                let id = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]).wrapping_add(i as u16);
                out[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            }
            out[l3 + 10..l3 + 12].fill(0);
            let sum = !fold(sum_words(0, &out[l3..l4]));
            out[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
        }
        L3::V6 => {
            out[l3 + 4..l3 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
    }
    let csum_offset = if plan.tcp {
        let seq = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]])
            .wrapping_add((i * plan.mss) as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let last = i + 1 == plan.count;
        // FIN and PSH belong to the last segment only, CWR to the first.
        let mut flags = frame[l4 + 13];
        if !last {
            flags &= !0x09;
        }
        if i > 0 {
            flags &= !0x80;
        }
        out[l4 + 13] = flags;
        16
    } else {
        out[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        6
    };
    let proto = if plan.tcp { 6 } else { 17 };
    let pseudo = pseudo_sum(out, plan, proto, l4_len);
    out[l4 + csum_offset..l4 + csum_offset + 2].copy_from_slice(&pseudo.to_be_bytes());
    let offload = Offload {
        flags: NEEDS_CSUM,
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: l4 as u16,
        csum_offset: csum_offset as u16,
    };
    (seg_len, offload)
}

/// Fills in a pending L4 checksum (`NEEDS_CSUM`) in software and clears the
/// flag; does nothing for other frames or impossible offsets.
pub fn complete_checksum(frame: &mut [u8], offload: &mut Offload) {
    if offload.flags & NEEDS_CSUM == 0 || offload.is_gso() {
        return;
    }
    let start = usize::from(offload.csum_start);
    let at = start + usize::from(offload.csum_offset);
    if at + 2 > frame.len() {
        return;
    }
    // The field holds the pseudo-header sum, which is part of the total.
    let mut sum = !fold(sum_words(0, &frame[start..]));
    // A computed UDP checksum of 0 is sent as all ones (0 means "none").
    if sum == 0 && offload.csum_offset == 6 {
        sum = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    offload.flags &= !NEEDS_CSUM;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP super-frame with `payload` bytes.
    fn tcp4_superframe(payload: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 4..14 + 6].copy_from_slice(&100u16.to_be_bytes());
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 2]);
        f[34 + 4..34 + 8].copy_from_slice(&1000u32.to_be_bytes());
        f[34 + 12] = 5 << 4;
        f[34 + 13] = flags;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    fn verify_l4(seg: &mut [u8], mut off: Offload) {
        complete_checksum(seg, &mut off);
        // A correct checksum makes the sum over pseudo-header and segment
        // all ones.
        let l4_len = seg.len() - 34;
        let acc = sum_words(0, &seg[26..34]) + 6 + l4_len as u32;
        assert_eq!(fold(sum_words(acc, &seg[34..])), 0xffff);
        assert_eq!(fold(sum_words(0, &seg[14..34])), 0xffff, "IPv4 header checksum");
    }

    #[test]
    fn tcp4_splits_like_the_kernel() {
        let frame = tcp4_superframe(3000, 0x18 | 0x80 | 0x01);
        let off = Offload { flags: NEEDS_CSUM, gso_type: 1, gso_size: 1448, ..Offload::NONE };
        let plan = plan(&frame, &off).expect("valid super-frame");
        assert_eq!(plan.count(), 3);
        assert_eq!(plan.wire_bytes(), 3000 + 3 * 54);
        let mut out = vec![0u8; 2000];
        let mut payload = Vec::new();
        for i in 0..3 {
            let (len, o) = write_segment(&frame, &plan, i, &mut out);
            assert_eq!(len, plan.segment_len(i));
            let seg = &mut out[..len];
            let seq = u32::from_be_bytes([seg[38], seg[39], seg[40], seg[41]]);
            assert_eq!(seq, 1000 + 1448 * i as u32);
            assert_eq!(seg[47] & 0x80 != 0, i == 0, "CWR only on the first");
            assert_eq!(seg[47] & 0x09 != 0, i == 2, "FIN/PSH only on the last");
            payload.extend_from_slice(&seg[54..]);
            verify_l4(seg, o);
        }
        assert_eq!(payload, frame[54..]);
    }

    #[test]
    fn short_or_odd_frames_are_rejected() {
        let off = Offload { gso_type: 1, gso_size: 1448, ..Offload::NONE };
        let mut short = [0u8; 20];
        short[12] = 0x08;
        assert_eq!(plan(&short, &off), Err(GsoError::Malformed));
        let off3 = Offload { gso_type: 3, gso_size: 1448, ..Offload::NONE };
        assert_eq!(plan(&tcp4_superframe(10, 0), &off3), Err(GsoError::Unsupported(3)));
    }
}
