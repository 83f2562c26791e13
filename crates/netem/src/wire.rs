//! Length-checked Ethernet and 802.1Q parsing, and tag rewriting.
//!
//! Frames come from guests, so nothing here trusts a length: the checked
//! constructor [`EthernetFrame::new_checked`] rejects frames too short for
//! their header first, and the accessors cannot panic afterwards (the smoltcp
//! `wire` pattern). A frame with ethertype 0x8100 is tagged; its VLAN comes
//! from the 12 low bits of the TCI. Other tag types (802.1ad 0x88a8) are not
//! interpreted and count as untagged. [`rewrite_frame`] writes the form a port
//! needs (tag stripped, inserted or kept) into a buffer the caller owns; it
//! does not pad frames shortened by stripping to the 60-byte minimum.

use core::fmt;

use thiserror::Error;

/// Ethertype of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Bytes of destination, source and ethertype.
pub const HEADER_LEN: usize = 14;
/// Bytes of an 802.1Q tag (TPID and TCI).
pub const TAG_LEN: usize = 4;

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// Whether the group bit is set (multicast, including broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Mac::BROADCAST
    }

    /// The address as the low 48 bits of a `u64`.
    pub fn to_u64(self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }

    /// The address in the low 48 bits of `value`.
    pub fn from_u64(value: u64) -> Mac {
        let [_, _, a, b, c, d, e, f] = value.to_be_bytes();
        Mac([a, b, c, d, e, f])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// An 802.1Q VLAN id usable on a port: 1 to 4094 (0 means "priority tag
/// only" and 4095 is reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VlanId(u16);

impl VlanId {
    /// VLAN 1, the usual default.
    pub const DEFAULT: VlanId = VlanId(1);

    /// The id, if it is in 1..=4094.
    pub const fn new(id: u16) -> Option<VlanId> {
        if id >= 1 && id <= 4094 { Some(VlanId(id)) } else { None }
    }

    /// The numeric id.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why bytes are not an Ethernet frame we can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WireError {
    /// Fewer than 14 bytes.
    #[error("frame of {len} bytes is shorter than an Ethernet header")]
    Short {
        /// The frame length.
        len: usize,
    },
    /// Ethertype 0x8100 but fewer than 18 bytes.
    #[error("tagged frame of {len} bytes is shorter than its 802.1Q header")]
    ShortTag {
        /// The frame length.
        len: usize,
    },
    /// The output buffer cannot hold the rewritten frame.
    #[error("rewritten frame needs {needed} bytes, buffer has {available}")]
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

/// A checked view of an Ethernet frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    bytes: &'a [u8],
    tagged: bool,
}

impl<'a> EthernetFrame<'a> {
    /// Checks that `bytes` hold a full header (and a full tag if tagged).
    pub fn new_checked(bytes: &'a [u8]) -> Result<EthernetFrame<'a>, WireError> {
        let Some(ethertype) = bytes.get(12..14) else {
            return Err(WireError::Short { len: bytes.len() });
        };
        let tagged = u16::from_be_bytes([ethertype[0], ethertype[1]]) == ETHERTYPE_VLAN;
        if tagged && bytes.len() < HEADER_LEN + TAG_LEN {
            return Err(WireError::ShortTag { len: bytes.len() });
        }
        Ok(EthernetFrame { bytes, tagged })
    }

    /// The destination address.
    pub fn dst(&self) -> Mac {
        Mac(self.mac_at(0))
    }

    /// The source address.
    pub fn src(&self) -> Mac {
        Mac(self.mac_at(6))
    }

    /// The 802.1Q TCI (priority, DEI, VLAN id), if the frame is tagged.
    pub fn tci(&self) -> Option<u16> {
        self.tagged.then(|| self.u16_at(14))
    }

    /// The VLAN id of the tag (0 for a priority-only tag), if tagged.
    pub fn tag_vid(&self) -> Option<u16> {
        self.tci().map(|tci| tci & 0x0fff)
    }

    /// The ethertype of the payload (after the tag, if any).
    pub fn ethertype(&self) -> u16 {
        if self.tagged { self.u16_at(16) } else { self.u16_at(12) }
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes after the ethertype: the network-layer packet.
    pub fn payload(&self) -> &'a [u8] {
        self.after_tag().get(2..).unwrap_or(&[])
    }

    /// The bytes after the MAC addresses and any tag: ethertype onwards.
    fn after_tag(&self) -> &'a [u8] {
        let start = if self.tagged { 16 } else { 12 };
        self.bytes.get(start..).unwrap_or(&[])
    }

    fn mac_at(&self, at: usize) -> [u8; 6] {
        let mut mac = [0; 6];
        if let Some(src) = self.bytes.get(at..at + 6) {
            mac.copy_from_slice(src);
        }
        mac
    }

    fn u16_at(&self, at: usize) -> u16 {
        match self.bytes.get(at..at + 2) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }
}

/// How a frame leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tagging {
    /// Unchanged (hub mode).
    AsReceived,
    /// Without an 802.1Q tag.
    Untagged,
    /// With an 802.1Q tag for this VLAN (the priority bits of a received tag
    /// are kept).
    Tagged(VlanId),
}

impl Tagging {
    /// The length of a frame of `len` bytes (with `tagged` telling whether it
    /// arrived tagged) after this rewrite.
    pub fn output_len(self, len: usize, tagged: bool) -> usize {
        match (self, tagged) {
            (Tagging::AsReceived, _) | (Tagging::Untagged, false) | (Tagging::Tagged(_), true) => len,
            (Tagging::Untagged, true) => len.saturating_sub(TAG_LEN),
            (Tagging::Tagged(_), false) => len + TAG_LEN,
        }
    }
}

/// Writes `frame` as `tagging` says into `out` and returns its length.
pub fn rewrite_frame(frame: &[u8], tagging: Tagging, out: &mut [u8]) -> Result<usize, WireError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let needed = tagging.output_len(frame.len(), eth.tagged);
    let available = out.len();
    let Some(out) = out.get_mut(..needed) else {
        return Err(WireError::BufferTooSmall { needed, available });
    };
    let rest = eth.after_tag();
    let (macs, tail) = out.split_at_mut(12);
    macs.copy_from_slice(&frame[..12]);
    match tagging {
        Tagging::AsReceived => tail.copy_from_slice(&frame[12..]),
        Tagging::Untagged => tail.copy_from_slice(rest),
        Tagging::Tagged(vlan) => {
            let priority = eth.tci().unwrap_or(0) & 0xf000;
            let (tag, payload) = tail.split_at_mut(TAG_LEN);
            tag[..2].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            tag[2..].copy_from_slice(&(priority | vlan.get()).to_be_bytes());
            payload.copy_from_slice(rest);
        }
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f
    }

    #[test]
    fn short_frames_are_rejected() {
        assert_eq!(EthernetFrame::new_checked(&[0; 13]).err(), Some(WireError::Short { len: 13 }));
        let mut tagged = [0u8; 17];
        tagged[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert_eq!(EthernetFrame::new_checked(&tagged).err(), Some(WireError::ShortTag { len: 17 }));
    }

    #[test]
    fn tag_insert_and_strip_round_trip() {
        let plain = untagged();
        let mut tagged = [0u8; 128];
        let n = rewrite_frame(&plain, Tagging::Tagged(VlanId(42)), &mut tagged).expect("buffer is large enough");
        assert_eq!(n, 64);
        let eth = EthernetFrame::new_checked(&tagged[..n]).expect("valid");
        assert_eq!(eth.tag_vid(), Some(42));
        assert_eq!(eth.ethertype(), 0x0800);
        assert_eq!(eth.src(), Mac([2, 0, 0, 0, 0, 1]));

        // Retagging keeps the priority bits.
        tagged[14] |= 0xa0;
        let mut retagged = [0u8; 128];
        let m = rewrite_frame(&tagged[..n], Tagging::Tagged(VlanId(7)), &mut retagged).expect("buffer is large enough");
        let eth = EthernetFrame::new_checked(&retagged[..m]).expect("valid");
        assert_eq!(eth.tci(), Some(0xa007));

        let mut back = [0u8; 128];
        let k = rewrite_frame(&tagged[..n], Tagging::Untagged, &mut back).expect("fits");
        assert_eq!(&back[..k], &plain[..]);
    }

    #[test]
    fn small_buffer_is_an_error() {
        let plain = untagged();
        let mut out = [0u8; 61];
        assert_eq!(
            rewrite_frame(&plain, Tagging::Tagged(VlanId(1)), &mut out),
            Err(WireError::BufferTooSmall { needed: 64, available: 61 })
        );
    }

    #[test]
    fn vlan_ids_and_macs() {
        assert_eq!(VlanId::new(0), None);
        assert_eq!(VlanId::new(4095), None);
        assert_eq!(VlanId::new(4094).map(VlanId::get), Some(4094));
        assert!(Mac::BROADCAST.is_multicast());
        assert_eq!(Mac([0, 1, 2, 3, 4, 5]).to_string(), "00:01:02:03:04:05");
        assert_eq!(Mac([0, 0, 0, 0, 1, 2]).to_u64(), 0x0102);
    }
}
