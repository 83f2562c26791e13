//! The departure queue of one link direction.
//!
//! Frames wait here from their arrival until their due time. Each
//! [`DepartureRing`] is a FIFO whose due times never decrease, so the earliest
//! frame is always at its head and popping is O(1). A link direction keeps two
//! rings (in-order frames and frames that skip the delay) and merges their
//! heads.
//!
//! Queue limits count only frames still *in the link* at the arrival time,
//! not frames that are due but that the driver has not polled yet: so a
//! decision depends on the arrival times alone, never on how promptly the
//! driver polls. To count bytes in O(log n), every entry carries the running
//! total of bytes pushed up to and including itself.

use std::collections::VecDeque;

use crate::link::{Corruption, Token};
use crate::time::Instant;

/// One scheduled departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// When the frame leaves.
    pub(crate) due: Instant,
    /// Sequence number of the arrival this copy belongs to.
    pub(crate) seq: u64,
    /// The caller's handle of the frame buffer.
    pub(crate) token: Token,
    /// Frame length in bytes.
    pub(crate) len: u32,
    /// Bits to flip on the way out.
    pub(crate) corruption: Option<Corruption>,
    /// Whether this is the extra copy of a duplicated frame.
    pub(crate) duplicate: bool,
    /// Bytes pushed into this ring up to and including this entry.
    cumulative_bytes: u64,
}

impl Entry {
    /// An entry; the ring fills in the running byte total.
    pub(crate) fn new(
        due: Instant,
        seq: u64,
        token: Token,
        len: u32,
        corruption: Option<Corruption>,
        duplicate: bool,
    ) -> Entry {
        Entry { due, seq, token, len, corruption, duplicate, cumulative_bytes: 0 }
    }
}

/// A FIFO of entries with non-decreasing due times.
#[derive(Debug, Clone)]
pub(crate) struct DepartureRing {
    entries: VecDeque<Entry>,
    pushed_bytes: u64,
    popped_bytes: u64,
}

impl DepartureRing {
    /// An empty ring with room for `capacity` entries before it must grow.
    pub(crate) fn with_capacity(capacity: usize) -> DepartureRing {
        DepartureRing { entries: VecDeque::with_capacity(capacity), pushed_bytes: 0, popped_bytes: 0 }
    }

    /// Appends `entry`; its due time must not be earlier than the tail's.
    pub(crate) fn push(&mut self, mut entry: Entry) {
        debug_assert!(self.entries.back().is_none_or(|tail| tail.due <= entry.due));
        self.pushed_bytes = self.pushed_bytes.wrapping_add(u64::from(entry.len));
        entry.cumulative_bytes = self.pushed_bytes;
        self.entries.push_back(entry);
    }

    /// The head entry, the earliest due.
    pub(crate) fn head(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// Removes and returns the head.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.popped_bytes = self.popped_bytes.wrapping_add(u64::from(entry.len));
        Some(entry)
    }

    /// Frames and bytes whose due time is after `now`.
    pub(crate) fn in_link_after(&self, now: Instant) -> (usize, u64) {
        let first_pending = self.entries.partition_point(|e| e.due <= now);
        let frames = self.entries.len() - first_pending;
        let bytes_before = match first_pending.checked_sub(1) {
            Some(last_due) => self.entries[last_due].cumulative_bytes,
            None => self.popped_bytes,
        };
        // Wrapping arithmetic keeps the difference right even after 2^64
        // bytes, which no run reaches, without a panic path.
        (frames, self.pushed_bytes.wrapping_sub(bytes_before))
    }

    /// Entries held, due or not.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries the ring holds before it must grow.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(due_ms: u64, len: u32) -> Entry {
        Entry::new(Instant::from_millis(due_ms), 0, Token(0), len, None, false)
    }

    #[test]
    fn counts_only_frames_still_in_the_link() {
        let mut ring = DepartureRing::with_capacity(4);
        ring.push(entry(10, 100));
        ring.push(entry(20, 200));
        ring.push(entry(20, 300));
        ring.push(entry(30, 400));
        assert_eq!(ring.in_link_after(Instant::from_millis(5)), (4, 1000));
        assert_eq!(ring.in_link_after(Instant::from_millis(10)), (3, 900));
        assert_eq!(ring.in_link_after(Instant::from_millis(25)), (1, 400));
        assert_eq!(ring.pop().map(|e| e.len), Some(100));
        assert_eq!(ring.in_link_after(Instant::from_millis(5)), (3, 900));
        assert_eq!(ring.in_link_after(Instant::from_millis(40)), (0, 0));
    }
}
