//! A bounded, wait-free byte queue of frames from the data-plane engine
//! thread to the capture writer thread.
//!
//! Frames are copied into one preallocated ring of bytes (rtrb's SPSC
//! ring) as variable-length records, so the producer never allocates and
//! never waits: if a record does not fit it is refused and the caller counts
//! a drop. A record is a 24-byte header (timestamp, interface, original
//! length, captured length) followed by the captured bytes. The header is
//! committed before the data, so the consumer takes a record only once
//! both are there.

use rtrb::{Consumer, Producer, RingBuffer};

const HEADER_LEN: usize = 24;

/// Producer half, owned by the engine thread.
pub(crate) struct FrameSender {
    producer: Producer<u8>,
}

/// Consumer half, owned by the writer thread.
pub(crate) struct FrameReceiver {
    consumer: Consumer<u8>,
}

/// A frame taken out of the queue; `data` borrows the receiver's scratch buffer.
#[derive(Debug)]
pub(crate) struct QueuedFrame<'a> {
    pub(crate) timestamp_ns: u64,
    pub(crate) iface: u32,
    pub(crate) original_len: u32,
    pub(crate) data: &'a [u8],
}

/// Creates a queue holding at most `capacity_bytes` of records.
pub(crate) fn frame_queue(capacity_bytes: usize) -> (FrameSender, FrameReceiver) {
    let (producer, consumer) = RingBuffer::new(capacity_bytes.max(HEADER_LEN));
    (FrameSender { producer }, FrameReceiver { consumer })
}

impl FrameSender {
    /// Copies `captured` (already cut to the snap length) into the queue;
    /// returns false, copying nothing, if it does not fit.
    pub(crate) fn try_send(&mut self, timestamp_ns: u64, iface: u32, original_len: u32, captured: &[u8]) -> bool {
        if self.producer.slots() < HEADER_LEN + captured.len() {
            return false;
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..8].copy_from_slice(&timestamp_ns.to_le_bytes());
        header[8..12].copy_from_slice(&iface.to_le_bytes());
        header[12..16].copy_from_slice(&original_len.to_le_bytes());
        header[16..20].copy_from_slice(&(captured.len() as u32).to_le_bytes());
        // We are the only producer, so free space can only grow between the
        // check above and these two pushes.
        self.producer.push_entire_slice(&header).expect("space was checked");
        self.producer.push_entire_slice(captured).expect("space was checked");
        true
    }

    /// Whether the writer thread has gone away.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.producer.is_abandoned()
    }
}

impl FrameReceiver {
    /// Takes the next complete record, copying its bytes into `scratch`.
    pub(crate) fn try_recv<'a>(&mut self, scratch: &'a mut Vec<u8>) -> Option<QueuedFrame<'a>> {
        if self.consumer.slots() < HEADER_LEN {
            return None;
        }
        let mut header = [0u8; HEADER_LEN];
        {
            let chunk = self.consumer.read_chunk(HEADER_LEN).expect("slots were checked");
            let (first, second) = chunk.as_slices();
            header[..first.len()].copy_from_slice(first);
            header[first.len()..].copy_from_slice(second);
            // Not committed: the header stays until the whole record is there.
        }
        let field = |range: std::ops::Range<usize>| u32::from_le_bytes(header[range].try_into().expect("4 bytes"));
        let captured_len = field(16..20) as usize;
        if self.consumer.slots() < HEADER_LEN + captured_len {
            return None;
        }
        self.consumer.read_chunk(HEADER_LEN).expect("slots were checked").commit_all();
        scratch.resize(captured_len, 0);
        self.consumer.pop_entire_slice(scratch).expect("slots were checked");
        Some(QueuedFrame {
            timestamp_ns: u64::from_le_bytes(header[0..8].try_into().expect("8 bytes")),
            iface: field(8..12),
            original_len: field(12..16),
            data: scratch,
        })
    }

    /// Whether no complete record is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.consumer.slots() < HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_across_the_wrap_and_full_queue_refuses() {
        let (mut tx, mut rx) = frame_queue(100);
        let mut scratch = Vec::new();
        for round in 0..50u32 {
            let data = vec![round as u8; (round % 40) as usize];
            assert!(tx.try_send(round as u64, round, 1500, &data));
            let frame = rx.try_recv(&mut scratch).expect("record");
            assert_eq!((frame.timestamp_ns, frame.iface, frame.original_len), (round as u64, round, 1500));
            assert_eq!(frame.data, &data[..]);
        }
        assert!(tx.try_send(0, 0, 0, &[0; 70]));
        assert!(!tx.try_send(0, 0, 0, &[0; 10]));
        assert!(rx.try_recv(&mut scratch).is_some());
        assert!(rx.is_empty());
    }
}
