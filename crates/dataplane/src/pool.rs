//! The engine's preallocated frame buffers.
//!
//! One contiguous allocation of `n_slots` slots of [`SLOT_SIZE`] bytes, each
//! big enough for a 64 KiB super-frame, a free list, and per slot the frame's
//! [`FrameMeta`] and a reference count (a duplicated frame departs twice
//! from one slot). A frame's [`netem::Token`] is its slot index. The memory
//! comes from a zeroed allocation, which Linux maps lazily, so only pages a
//! frame has touched become resident; the free list is a stack so the same
//! hot slots are reused.

use crate::port::FrameMeta;

/// Bytes per slot: the largest super-frame veth hands out (64 KiB) plus a
/// VLAN tag the switch may insert.
pub const SLOT_SIZE: usize = 65_536 + 64;

/// Preallocated frame buffers indexed by slot number.
#[derive(Debug)]
pub struct Pool {
    data: Vec<u8>,
    meta: Vec<FrameMeta>,
    /// References per slot: a broadcast flooded by a switch of N ports
    /// holds N - 1, so this must count past 255 (a u8 wrapped at 256
    /// ports, freed the slot early and put it twice on the free list).
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Pool {
    /// A pool of `n_slots` slots, all free.
    pub fn new(n_slots: usize) -> Pool {
        Pool {
            data: vec![0u8; n_slots * SLOT_SIZE],
            meta: vec![FrameMeta::default(); n_slots],
            refs: vec![0; n_slots],
            // Reversed so slot 0 is handed out first.
            free: (0..n_slots as u32).rev().collect(),
        }
    }

    /// Slots in the pool.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Slots not in use.
    pub fn n_free(&self) -> usize {
        self.free.len()
    }

    /// Takes a free slot with one reference, if any.
    pub fn alloc(&mut self) -> Option<u32> {
        let slot = self.free.pop()?;
        self.refs[slot as usize] = 1;
        Some(slot)
    }

    /// Adds a reference to a slot in use.
    pub fn retain(&mut self, slot: u32) {
        let r = &mut self.refs[slot as usize];
        *r = r.checked_add(1).expect("slot reference count overflow");
    }

    /// Drops a reference; the slot is free again when none is left.
    pub fn release(&mut self, slot: u32) {
        let r = &mut self.refs[slot as usize];
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.free.push(slot);
        }
    }

    /// The whole slot buffer.
    pub fn buf_mut(&mut self, slot: u32) -> &mut [u8] {
        let start = slot as usize * SLOT_SIZE;
        &mut self.data[start..start + SLOT_SIZE]
    }

    /// The frame stored in a slot.
    pub fn frame(&self, slot: u32) -> &[u8] {
        let start = slot as usize * SLOT_SIZE;
        &self.data[start..start + self.meta[slot as usize].len]
    }

    /// The frame stored in a slot, mutable (for corruption).
    pub fn frame_mut(&mut self, slot: u32) -> &mut [u8] {
        let start = slot as usize * SLOT_SIZE;
        let len = self.meta[slot as usize].len;
        &mut self.data[start..start + len]
    }

    /// The metadata of a slot.
    pub fn meta(&self, slot: u32) -> &FrameMeta {
        &self.meta[slot as usize]
    }

    /// The metadata of a slot, mutable.
    pub fn meta_mut(&mut self, slot: u32) -> &mut FrameMeta {
        &mut self.meta[slot as usize]
    }

    /// Runs `f` with the whole buffers of `slots` (at most 64, distinct),
    /// for one receive batch.
    ///
    /// # Panics
    ///
    /// If a slot repeats or is out of range: two `&mut` to one buffer would
    /// be undefined behaviour.
    pub fn with_bufs<R>(&mut self, slots: &[u32], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R {
        let n = slots.len().min(64);
        for (k, a) in slots[..n].iter().enumerate() {
            assert!((*a as usize) < self.meta.len(), "slot {a} out of range");
            assert!(!slots[..k].contains(a), "slot {a} twice in one batch");
        }
        let base = self.data.as_mut_ptr();
        let mut bufs: [&mut [u8]; 64] = std::array::from_fn(|_| <&mut [u8]>::default());
        for (buf, slot) in bufs.iter_mut().zip(&slots[..n]) {
            // SAFETY: the slots are in range and distinct (checked above), so
            // the chunks are disjoint parts of `data`, which `&mut self`
            // borrows exclusively for as long as `bufs` lives.
            *buf = unsafe { std::slice::from_raw_parts_mut(base.add(*slot as usize * SLOT_SIZE), SLOT_SIZE) };
        }
        f(&mut bufs[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame flooded to more than 255 ports: the slot stays in use until
    /// the last copy is released, and goes back on the free list once.
    #[test]
    fn many_references_free_the_slot_once() {
        let mut pool = Pool::new(4);
        let slot = pool.alloc().expect("a free slot");
        for _ in 0..999 {
            pool.retain(slot);
        }
        for _ in 0..999 {
            pool.release(slot);
            assert_eq!(pool.n_free(), 3, "freed while still referenced");
        }
        pool.release(slot);
        assert_eq!(pool.n_free(), 4);
        let mut seen: Vec<u32> = (0..4).filter_map(|_| pool.alloc()).collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3]);
    }
}
