//! Real frames for ports whose far side takes no offload state.
//!
//! The engine passes super-frames and frames with a pending checksum on
//! whole where it can (see the crate docs). A QEMU socket or a UDP tunnel
//! carries bare Ethernet frames with no `virtio_net_hdr`, so the receiver
//! would see a 64 KiB "frame" or a wrong checksum. [`RealFrames`] says what
//! one engine frame becomes on such a wire: itself when it is complete, a
//! copy with its L4 checksum filled in, or the segments `gso.rs` cuts with
//! their checksums filled in. The port writes each real frame straight into
//! its own send buffer, so nothing is allocated.

use crate::gso::{self, GsoError, Plan};
use crate::port::{NEEDS_CSUM, Offload};

/// What a frame needs before it can leave on a plain wire.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// Nothing: send the bytes as they are.
    None,
    /// Fill in the pending L4 checksum.
    Checksum,
    /// Cut into segments (each with its checksum filled in).
    Segment(Plan),
}

/// The real frames one engine frame stands for.
#[derive(Debug, Clone, Copy)]
pub struct RealFrames<'a> {
    frame: &'a [u8],
    offload: Offload,
    work: Work,
}

impl<'a> RealFrames<'a> {
    /// Checks `frame` with its offload state; fails only for a super-frame
    /// `gso.rs` cannot segment.
    pub fn new(frame: &'a [u8], offload: Offload) -> Result<RealFrames<'a>, GsoError> {
        let work = if offload.is_gso() {
            Work::Segment(gso::plan(frame, &offload)?)
        } else if offload.flags & NEEDS_CSUM != 0 {
            Work::Checksum
        } else {
            Work::None
        };
        Ok(RealFrames { frame, offload, work })
    }

    /// The frame itself when it is already a complete frame.
    pub fn as_complete(&self) -> Option<&'a [u8]> {
        matches!(self.work, Work::None).then_some(self.frame)
    }

    /// How many real frames there are.
    pub fn count(&self) -> usize {
        match self.work {
            Work::Segment(plan) => plan.count(),
            Work::None | Work::Checksum => 1,
        }
    }

    /// Length of real frame `i` (`i < count()`).
    pub fn len(&self, i: usize) -> usize {
        match self.work {
            Work::Segment(plan) => plan.segment_len(i),
            Work::None | Work::Checksum => self.frame.len(),
        }
    }

    /// Writes real frame `i` into `out` (at least [`len(i)`](Self::len)
    /// bytes) and returns its length.
    pub fn write(&self, i: usize, out: &mut [u8]) -> usize {
        match self.work {
            Work::Segment(plan) => {
                let (len, mut offload) = gso::write_segment(self.frame, &plan, i, out);
                gso::complete_checksum(&mut out[..len], &mut offload);
                len
            }
            Work::Checksum => {
                let len = self.frame.len();
                out[..len].copy_from_slice(self.frame);
                let mut offload = self.offload;
                gso::complete_checksum(&mut out[..len], &mut offload);
                len
            }
            Work::None => {
                out[..self.frame.len()].copy_from_slice(self.frame);
                self.frame.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP with `payload` bytes; the checksum field
    /// holds the pseudo-header sum, as the kernel leaves it for offload.
    fn tcp4(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 54 + payload];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[46] = 5 << 4;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        let mut pseudo = ones_sum(&f[26..34]) + 6 + (20 + payload) as u32;
        while pseudo > 0xffff {
            pseudo = (pseudo & 0xffff) + (pseudo >> 16);
        }
        f[50..52].copy_from_slice(&(pseudo as u16).to_be_bytes());
        f
    }

    fn ones_sum(data: &[u8]) -> u32 {
        data.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum()
    }

    /// Whether the TCP checksum of an IPv4 frame verifies.
    fn tcp_checksum_ok(f: &[u8]) -> bool {
        let l4_len = f.len() - 34;
        let mut acc = ones_sum(&f[26..34]) + 6 + l4_len as u32 + ones_sum(&f[34..]);
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc == 0xffff
    }

    #[test]
    fn a_complete_frame_is_passed_as_is() {
        let f = tcp4(10);
        let real = RealFrames::new(&f, Offload::NONE).expect("plain frame");
        assert_eq!(real.as_complete(), Some(&f[..]));
        assert_eq!(real.count(), 1);
    }

    #[test]
    fn a_pending_checksum_is_filled_in() {
        let f = tcp4(101);
        let off = Offload { flags: NEEDS_CSUM, csum_start: 34, csum_offset: 16, ..Offload::NONE };
        let real = RealFrames::new(&f, off).expect("checksum frame");
        assert!(real.as_complete().is_none());
        let mut out = vec![0u8; real.len(0)];
        let len = real.write(0, &mut out);
        assert_eq!(len, f.len());
        assert!(tcp_checksum_ok(&out));
        assert!(!tcp_checksum_ok(&f));
    }

    #[test]
    fn a_super_frame_becomes_checksummed_segments() {
        let f = tcp4(3000);
        let off = Offload {
            flags: NEEDS_CSUM,
            gso_type: 1,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
            ..Offload::NONE
        };
        let real = RealFrames::new(&f, off).expect("super-frame");
        assert_eq!(real.count(), 3);
        let mut out = vec![0u8; 2000];
        for i in 0..3 {
            let len = real.write(i, &mut out);
            assert_eq!(len, real.len(i));
            assert!(tcp_checksum_ok(&out[..len]), "segment {i}");
        }
    }
}
