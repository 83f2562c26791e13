//! The tunnel's wire format, sealing and opening, and the anti-replay
//! window: pure code with no sockets and no clock (the first counter is
//! passed in).
//!
//! A datagram is
//!
//! ```text
//! offset  size  field
//!      0     1  version, 1
//!      1     4  sender id, big-endian
//!      5     8  counter, big-endian
//!     13     n  the Ethernet frame, encrypted with ChaCha20
//!   13+n    16  the Poly1305 tag over header (as associated data) and ciphertext
//! ```
//!
//! The 96-bit ChaCha20-Poly1305 nonce is the sender id followed by the
//! counter, so a nonce never repeats under a key as long as (a) each sender
//! never reuses a counter and (b) the two ends of a link never use the same
//! sender id. (a): a sender counts up from a starting value its caller
//! passes in; the port passes the wall clock in nanoseconds, so a restarted
//! port starts above every counter it used before (fewer than one frame per
//! nanosecond on average, clock not stepped back), and the receiver's window
//! accepts the new session without any handshake. (b): each port picks a
//! random sender id; a datagram that authenticates but carries the
//! receiver's own id is never accepted (it is a reflection of its own
//! traffic, or the peer drew the same id), and the port then draws a new id
//! ([`Opened::Reflected`] tells it to).
//!
//! The anti-replay window ([`ReplayWindow`]) is a ring of 32 64-bit words in
//! the style of RFC 6479 and WireGuard: a counter is accepted once if it is
//! at most [`WINDOW`] below the highest one seen, in any order, and a
//! counter is only marked after its datagram authenticated, so forged
//! datagrams cannot move the window.

use std::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use thiserror::Error;

/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 13;
/// Bytes of the authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes a datagram adds to the frame it carries.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Words in the replay bitmap.
const WORDS: usize = 32;
/// How far below the highest counter seen a counter is still accepted:
/// the bitmap less one word, which the ring reuses as the window slides.
pub const WINDOW: u64 = ((WORDS - 1) * 64) as u64;

/// A pre-shared 256-bit key.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelKey([u8; 32]);

impl fmt::Debug for TunnelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str("TunnelKey(..)")
    }
}

/// Why a key string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Not 64 characters.
    #[error("key: expected 64 hex digits (32 bytes), got {0} characters")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("key: {0:?} at position {1} is not a hex digit (0-9, a-f, A-F)")]
    NotHex(char, usize),
}

impl TunnelKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> TunnelKey {
        TunnelKey(bytes)
    }

    /// A key from 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<TunnelKey, KeyError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() != 64 {
            return Err(KeyError::Length(chars.len()));
        }
        let mut key = [0u8; 32];
        for (i, c) in chars.iter().enumerate() {
            let digit = c.to_digit(16).ok_or(KeyError::NotHex(*c, i))? as u8;
            key[i / 2] |= if i % 2 == 0 { digit << 4 } else { digit };
        }
        Ok(TunnelKey(key))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.0.into())
    }
}

/// The clear part of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Who sent it.
    pub sender: u32,
    /// The sender's counter for it.
    pub counter: u64,
}

impl Header {
    /// Reads a header; fails on a short datagram or another version.
    pub fn parse(datagram: &[u8]) -> Result<Header, Rejected> {
        if datagram.len() < OVERHEAD {
            return Err(Rejected::Malformed);
        }
        if datagram[0] != VERSION {
            return Err(Rejected::Malformed);
        }
        let sender = u32::from_be_bytes([datagram[1], datagram[2], datagram[3], datagram[4]]);
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&datagram[5..13]);
        Ok(Header { sender, counter: u64::from_be_bytes(counter) })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1..5].copy_from_slice(&self.sender.to_be_bytes());
        b[5..13].copy_from_slice(&self.counter.to_be_bytes());
        b
    }

    fn nonce(&self) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.sender.to_be_bytes());
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        n.into()
    }
}

/// Why a datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rejected {
    /// Shorter than a header and tag, or another version.
    #[error("malformed datagram")]
    Malformed,
    /// The tag does not verify: another key, or damage, or forgery.
    #[error("authentication failed")]
    BadTag,
    /// A counter already accepted.
    #[error("replayed counter")]
    Replayed,
    /// A counter more than [`WINDOW`] below the highest one seen.
    #[error("counter too old")]
    TooOld,
}

/// The sending half: numbers and seals frames.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    sender: u32,
    next: u64,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("sender", &self.sender).field("next", &self.next).finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with sender id `sender` whose first counter is `first`.
    pub fn new(key: &TunnelKey, sender: u32, first: u64) -> Sealer {
        Sealer { cipher: key.cipher(), sender, next: first }
    }

    /// The sender id it writes.
    pub fn sender(&self) -> u32 {
        self.sender
    }

    /// Switches to another sender id (after a reflection); counters go on.
    pub fn handle_new_sender(&mut self, sender: u32) {
        self.sender = sender;
    }

    /// Seals the frame at `datagram[HEADER_LEN..HEADER_LEN + frame_len]` in
    /// place: writes the header before it and the tag after it, and returns
    /// the datagram's length. `None` when `datagram` is shorter than
    /// `frame_len + OVERHEAD` or the counter is used up (never, in practice).
    pub fn seal(&mut self, datagram: &mut [u8], frame_len: usize) -> Option<usize> {
        let total = frame_len.checked_add(OVERHEAD)?;
        if datagram.len() < total || self.next == u64::MAX {
            return None;
        }
        let header = Header { sender: self.sender, counter: self.next };
        self.next += 1;
        let hdr = header.to_bytes();
        datagram[..HEADER_LEN].copy_from_slice(&hdr);
        let (plain, rest) = datagram[HEADER_LEN..].split_at_mut(frame_len);
        let tag = self.cipher.encrypt_inout_detached(&header.nonce(), &hdr, plain.into()).ok()?;
        rest[..TAG_LEN].copy_from_slice(tag.as_slice());
        Some(total)
    }
}

/// What [`Opener::open`] found in an authentic datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A frame from the peer, now decrypted in place.
    Frame,
    /// An authentic datagram with our own sender id: not accepted; draw a
    /// new sender id.
    Reflected,
}

/// The receiving half: checks, authenticates and decrypts.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    window: ReplayWindow,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("window", &self.window).finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener with an empty replay window.
    pub fn new(key: &TunnelKey) -> Opener {
        Opener { cipher: key.cipher(), window: ReplayWindow::new() }
    }

    /// Opens a datagram whose parts the caller has split: the header, the
    /// ciphertext (decrypted in place on success) and the tag. `own_sender`
    /// is the receiver's current sender id.
    pub fn open(
        &mut self,
        header: &[u8; HEADER_LEN],
        ciphertext: &mut [u8],
        tag: &[u8; TAG_LEN],
        own_sender: u32,
    ) -> Result<Opened, Rejected> {
        let mut probe = [0u8; OVERHEAD];
        probe[..HEADER_LEN].copy_from_slice(header);
        let h = Header::parse(&probe)?;
        // Cheap checks first, so replays cost no decryption; the window is
        // only moved once the datagram proved authentic.
        if h.sender != own_sender {
            self.window.check(h.counter)?;
        }
        let tag = Tag::from(*tag);
        self.cipher
            .decrypt_inout_detached(&h.nonce(), header, ciphertext.into(), &tag)
            .map_err(|_| Rejected::BadTag)?;
        if h.sender == own_sender {
            return Ok(Opened::Reflected);
        }
        self.window.mark(h.counter);
        Ok(Opened::Frame)
    }

    /// Opens a whole datagram in place; on success the frame is
    /// `datagram[HEADER_LEN..len - TAG_LEN]`.
    pub fn open_datagram(&mut self, datagram: &mut [u8], own_sender: u32) -> Result<Opened, Rejected> {
        Header::parse(datagram)?;
        let (header, rest) = datagram.split_at_mut(HEADER_LEN);
        let (ciphertext, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let header: &[u8; HEADER_LEN] = (&*header).try_into().expect("split at HEADER_LEN");
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("split at TAG_LEN from the end");
        self.open(header, ciphertext, tag, own_sender)
    }
}

/// A sliding window of accepted counters (RFC 6479 style).
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    bits: [u64; WORDS],
    /// The highest counter marked (0 before any).
    last: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow::new()
    }
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> ReplayWindow {
        ReplayWindow { bits: [0; WORDS], last: 0 }
    }

    /// Whether `counter` would be accepted now.
    pub fn check(&self, counter: u64) -> Result<(), Rejected> {
        if counter.saturating_add(WINDOW) <= self.last {
            return Err(Rejected::TooOld);
        }
        if counter <= self.last {
            let word = (counter / 64) as usize % WORDS;
            if self.bits[word] & (1 << (counter % 64)) != 0 {
                return Err(Rejected::Replayed);
            }
        }
        Ok(())
    }

    /// Records `counter` as accepted, sliding the window up if it is new.
    /// Call only after [`check`](Self::check) passed and the datagram
    /// authenticated.
    pub fn mark(&mut self, counter: u64) {
        if counter > self.last {
            let current = self.last / 64;
            let target = counter / 64;
            // Clear the words the window slides over (all of them at most).
            let steps = (target - current).min(WORDS as u64);
            for i in 1..=steps {
                self.bits[((current + i) % WORDS as u64) as usize] = 0;
            }
            self.last = counter;
        }
        self.bits[(counter / 64) as usize % WORDS] |= 1 << (counter % 64);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn key(b: u8) -> TunnelKey {
        TunnelKey::from_bytes([b; 32])
    }

    fn sealed(sealer: &mut Sealer, frame: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; frame.len() + OVERHEAD];
        d[HEADER_LEN..HEADER_LEN + frame.len()].copy_from_slice(frame);
        let len = sealer.seal(&mut d, frame.len()).expect("room");
        assert_eq!(len, d.len());
        d
    }

    #[test]
    fn keys_parse_from_hex_and_name_the_problem() {
        let k = TunnelKey::from_hex(&"0f".repeat(32)).expect("valid");
        assert_eq!(k, TunnelKey::from_bytes([0x0f; 32]));
        assert_eq!(TunnelKey::from_hex(&"AB".repeat(32)), Ok(TunnelKey::from_bytes([0xab; 32])));
        assert_eq!(TunnelKey::from_hex("abc"), Err(KeyError::Length(3)));
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(TunnelKey::from_hex(&bad), Err(KeyError::NotHex('g', 63)));
        assert_eq!(format!("{k:?}"), "TunnelKey(..)");
    }

    #[test]
    fn the_header_is_laid_out_as_documented() {
        let mut s = Sealer::new(&key(1), 0x0102_0304, 0x1122_3344_5566_7788);
        let d = sealed(&mut s, b"frame");
        assert_eq!(&d[..HEADER_LEN], &[1, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        assert_ne!(&d[HEADER_LEN..HEADER_LEN + 5], b"frame", "encrypted");
        assert_eq!(Header::parse(&d), Ok(Header { sender: 0x0102_0304, counter: 0x1122_3344_5566_7788 }));
    }

    #[test]
    fn a_sealed_frame_opens_once() {
        let mut s = Sealer::new(&key(1), 7, 100);
        let mut o = Opener::new(&key(1));
        let d = sealed(&mut s, b"hello, frame");
        let mut copy = d.clone();
        assert_eq!(o.open_datagram(&mut copy, 8), Ok(Opened::Frame));
        assert_eq!(&copy[HEADER_LEN..copy.len() - TAG_LEN], b"hello, frame");
        let mut again = d.clone();
        assert_eq!(o.open_datagram(&mut again, 8), Err(Rejected::Replayed));
    }

    #[test]
    fn a_wrong_key_or_any_flipped_bit_fails_authentication() {
        let mut s = Sealer::new(&key(1), 7, 100);
        let d = sealed(&mut s, b"payload");
        assert_eq!(Opener::new(&key(2)).open_datagram(&mut d.clone(), 8), Err(Rejected::BadTag));
        for byte in 1..d.len() {
            let mut bad = d.clone();
            bad[byte] ^= 0x40;
            let got = Opener::new(&key(1)).open_datagram(&mut bad, 8);
            assert_eq!(got, Err(Rejected::BadTag), "flipped byte {byte}");
        }
        let mut v2 = d.clone();
        v2[0] = 2;
        assert_eq!(Opener::new(&key(1)).open_datagram(&mut v2, 8), Err(Rejected::Malformed));
        assert_eq!(Opener::new(&key(1)).open_datagram(&mut d[..20].to_vec(), 8), Err(Rejected::Malformed));
    }

    #[test]
    fn forged_datagrams_do_not_move_the_window() {
        let mut s = Sealer::new(&key(1), 7, 10);
        let mut o = Opener::new(&key(1));
        let first = sealed(&mut s, b"a");
        // A forgery far ahead: if it moved the window, `first` would be too old.
        let mut forged = first.clone();
        forged[5..13].copy_from_slice(&1_000_000u64.to_be_bytes());
        assert_eq!(o.open_datagram(&mut forged, 8), Err(Rejected::BadTag));
        assert_eq!(o.open_datagram(&mut first.clone(), 8), Ok(Opened::Frame));
    }

    #[test]
    fn our_own_sender_id_is_never_accepted() {
        let mut s = Sealer::new(&key(1), 7, 10);
        let mut o = Opener::new(&key(1));
        let d = sealed(&mut s, b"mine");
        assert_eq!(o.open_datagram(&mut d.clone(), 7), Ok(Opened::Reflected));
        let mut forged = d.clone();
        forged[20] ^= 1;
        assert_eq!(o.open_datagram(&mut forged, 7), Err(Rejected::BadTag));
    }

    #[test]
    fn the_window_accepts_out_of_order_and_rejects_old_and_duplicates() {
        let mut w = ReplayWindow::new();
        let mut take = |c: u64| -> Result<(), Rejected> {
            w.check(c)?;
            w.mark(c);
            Ok(())
        };
        assert_eq!(take(5000), Ok(()));
        assert_eq!(take(4990), Ok(()), "late but inside the window");
        assert_eq!(take(4990), Err(Rejected::Replayed));
        assert_eq!(take(5000 - WINDOW + 1), Ok(()), "the oldest still accepted");
        assert_eq!(take(5000 - WINDOW), Err(Rejected::TooOld));
        assert_eq!(take(100_000), Ok(()), "a jump clears the ring");
        assert_eq!(take(5001), Err(Rejected::TooOld));
        assert_eq!(take(100_000 - WINDOW + 1), Ok(()));
    }

    proptest! {
        /// The ring behaves exactly like "accept a counter once, unless it is
        /// WINDOW or more below the highest accepted".
        #[test]
        fn the_window_matches_a_set_model(
            base in 0u64..u64::MAX / 2,
            steps in proptest::collection::vec(0u64..6000, 1..400),
        ) {
            let mut w = ReplayWindow::new();
            let mut seen = BTreeSet::new();
            let mut highest: Option<u64> = None;
            for s in steps {
                // Mostly near the top, sometimes far ahead.
                let c = base + s * if s % 97 == 0 { 50 } else { 1 };
                let model = if seen.contains(&c) {
                    Err(Rejected::Replayed)
                } else if highest.is_some_and(|h| c + WINDOW <= h) {
                    Err(Rejected::TooOld)
                } else {
                    Ok(())
                };
                let got = w.check(c);
                // A too-old counter that was also seen may report either.
                if !(model == Err(Rejected::Replayed) && got == Err(Rejected::TooOld)) {
                    prop_assert_eq!(got, model, "counter {}", c);
                }
                if got.is_ok() {
                    w.mark(c);
                    seen.insert(c);
                    highest = Some(highest.map_or(c, |h| h.max(c)));
                }
            }
        }

        /// Arbitrary bytes from the network never panic the opener and are
        /// never taken for a frame.
        #[test]
        fn random_datagrams_are_refused(mut d in proptest::collection::vec(any::<u8>(), 0..200), v1 in any::<bool>()) {
            if v1 && !d.is_empty() {
                d[0] = VERSION;
            }
            let got = Opener::new(&key(1)).open_datagram(&mut d, 8);
            prop_assert!(matches!(got, Err(Rejected::Malformed | Rejected::BadTag)), "{:?}", got);
        }

        /// Whatever the frame, sealing then opening gives it back.
        #[test]
        fn seal_then_open_round_trips(frame in proptest::collection::vec(any::<u8>(), 0..2000), first in 0u64..u64::MAX - 10) {
            let mut s = Sealer::new(&key(3), 1, first);
            let mut o = Opener::new(&key(3));
            let mut d = sealed(&mut s, &frame);
            prop_assert_eq!(o.open_datagram(&mut d, 2), Ok(Opened::Frame));
            prop_assert_eq!(&d[HEADER_LEN..d.len() - TAG_LEN], &frame[..]);
        }
    }
}
