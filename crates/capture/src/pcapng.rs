//! pcapng output: one Interface Description Block per captured interface,
//! nanosecond timestamps, configurable snap length.
//!
//! Built on pcap-file 2.0.0's `PcapNgWriter`. It can set every option we
//! need (`if_name`, `if_description`, `if_tsresol`), and it always encodes
//! Enhanced Packet Block timestamps as nanoseconds (`Duration::as_nanos`)
//! whatever the interface says, so every interface we declare carries
//! `if_tsresol = 9` to tell readers (Wireshark, tshark) the same thing;
//! without it they would read the values as microseconds.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};

/// Default snap length (bytes kept per frame), as tcpdump's `-s 65535`.
pub const DEFAULT_SNAPLEN: u32 = 65535;

/// `if_tsresol` value for nanoseconds (10^-9 s).
const TSRESOL_NANOSECONDS: u8 = 9;

/// Fixed part of an Enhanced Packet Block without options: 28 bytes of
/// header fields plus the 4-byte trailing length.
const EPB_OVERHEAD: u64 = 32;

/// Errors from writing pcapng.
#[derive(Debug, thiserror::Error)]
pub enum PcapngError {
    /// The underlying writer failed.
    #[error("writing pcapng: {0}")]
    Write(#[from] pcap_file::PcapError),
    /// A packet named an interface that was not declared.
    #[error("interface index {index} is not one of the {n_interfaces} declared interfaces")]
    UnknownInterface {
        /// The index given.
        index: u32,
        /// How many interfaces the file declares.
        n_interfaces: u32,
    },
}

/// One captured interface as it appears in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `if_name`, shown by Wireshark as the interface name, e.g. `pc1.eth0 -> sw.port0`.
    pub name: String,
    /// `if_description`; left out of the file when empty.
    pub description: String,
}

impl Interface {
    /// An interface with a name and no description.
    pub fn named(name: impl Into<String>) -> Interface {
        Interface { name: name.into(), description: String::new() }
    }
}

/// Size in bytes of the Enhanced Packet Block for a packet of `captured_len` bytes.
pub fn epb_len(captured_len: usize) -> u64 {
    EPB_OVERHEAD + (captured_len as u64).next_multiple_of(4)
}

/// Writes a pcapng section (header and interfaces on creation, then packets) to `W`.
pub struct PcapngWriter<W: Write> {
    inner: PcapNgWriter<W>,
    n_interfaces: u32,
    snaplen: u32,
    bytes_written: u64,
    packets_written: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block and one Interface Description Block per
    /// entry of `interfaces` (packet `iface` indexes this list).
    ///
    /// `snaplen` is the number of bytes kept per frame; 0 keeps whole frames.
    pub fn new(writer: W, interfaces: &[Interface], snaplen: u32) -> Result<Self, PcapngError> {
        let mut inner = PcapNgWriter::new(writer)?;
        // pcap-file writes the section header itself; its size is fixed
        // without options (28 bytes), so count it here.
        let mut bytes_written = 28;
        for interface in interfaces {
            let mut options = vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(interface.name.clone())),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOSECONDS),
            ];
            if !interface.description.is_empty() {
                options.push(InterfaceDescriptionOption::IfDescription(Cow::Owned(interface.description.clone())));
            }
            let idb = InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen, options };
            bytes_written += inner.write_pcapng_block(idb)? as u64;
        }
        let n_interfaces = u32::try_from(interfaces.len()).expect("fewer than 2^32 interfaces");
        Ok(PcapngWriter { inner, n_interfaces, snaplen, bytes_written, packets_written: 0 })
    }

    /// Writes one frame seen at `timestamp_ns` (since the Unix epoch) on
    /// interface `iface`, truncated to the snap length. Returns the bytes written.
    pub fn write_packet(&mut self, timestamp_ns: u64, iface: u32, frame: &[u8]) -> Result<usize, PcapngError> {
        let kept = self.snap(frame);
        let original_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.write_captured(timestamp_ns, iface, original_len, kept)
    }

    /// Writes one frame whose first bytes (`captured`, already cut to the
    /// snap length by the caller) were kept from an `original_len`-byte frame.
    pub fn write_captured(
        &mut self,
        timestamp_ns: u64,
        iface: u32,
        original_len: u32,
        captured: &[u8],
    ) -> Result<usize, PcapngError> {
        if iface >= self.n_interfaces {
            return Err(PcapngError::UnknownInterface { index: iface, n_interfaces: self.n_interfaces });
        }
        let captured = self.snap(captured);
        let epb = EnhancedPacketBlock {
            interface_id: iface,
            timestamp: Duration::from_nanos(timestamp_ns),
            original_len: original_len.max(captured.len() as u32),
            data: Cow::Borrowed(captured),
            options: Vec::new(),
        };
        let n = self.inner.write_pcapng_block(epb)?;
        self.bytes_written += n as u64;
        self.packets_written += 1;
        Ok(n)
    }

    fn snap<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        if self.snaplen == 0 { frame } else { &frame[..frame.len().min(self.snaplen as usize)] }
    }

    /// Bytes written so far, headers included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Packets written so far.
    pub fn packets_written(&self) -> u64 {
        self.packets_written
    }

    /// The snap length (0 = whole frames).
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        self.inner.get_ref()
    }

    /// The underlying writer, mutably (for flushing or taking bytes out of a buffer).
    pub fn get_mut(&mut self) -> &mut W {
        self.inner.get_mut()
    }

    /// Consumes the writer, returning the underlying one.
    pub fn into_inner(self) -> W {
        self.inner.into_inner()
    }
}

/// The header bytes (section header and interfaces) a reader needs before packets.
pub(crate) fn header_bytes(interfaces: &[Interface], snaplen: u32) -> Vec<u8> {
    PcapngWriter::new(Vec::new(), interfaces, snaplen).expect("writing to a Vec cannot fail").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_counted_exactly() {
        let interfaces = [Interface::named("a -> b"), Interface { name: "b -> a".into(), description: "x".into() }];
        let mut w = PcapngWriter::new(Vec::new(), &interfaces, 100).expect("vec");
        assert_eq!(w.bytes_written(), w.get_ref().len() as u64);
        assert_eq!(w.bytes_written(), header_bytes(&interfaces, 100).len() as u64);
        for len in [0usize, 1, 3, 4, 5, 99, 100, 101, 1500] {
            let before = w.bytes_written();
            let n = w.write_packet(1, 1, &vec![0xAB; len]).expect("write");
            assert_eq!(n as u64, epb_len(len.min(100)));
            assert_eq!(w.bytes_written(), before + n as u64);
        }
        assert_eq!(w.bytes_written(), w.get_ref().len() as u64);
        assert!(matches!(w.write_packet(1, 2, &[]), Err(PcapngError::UnknownInterface { index: 2, .. })));
    }
}
