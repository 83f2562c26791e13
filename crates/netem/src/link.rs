//! One direction of an emulated link, as a sans-IO state machine.
//!
//! [`LinkDirection`] decides, for every frame the driver hands it, whether
//! the frame is dropped, duplicated or damaged and when each copy leaves. It
//! never sees frame bytes: the driver keeps the buffer and passes a [`Token`]
//! and a length, and gets the token back in a [`Departure`] when the copy is
//! due. Time comes in as a value and randomness from per-direction seeded
//! streams, so a run is a pure function of (parameters, arrivals).
//!
//! Per frame, in this order (wirefilter's pipeline, with netem's meaning for
//! ToMaTo's attributes):
//! 1. MTU: a frame longer than `mtu` is dropped (wirefilter also counts its
//!    2-byte stream header; we compare the frame length alone).
//! 2. Loss: 100 % drops everything; with `lossburst_frames` B > 0 a Gilbert
//!    chain per direction: from good enter bad with p/(B(1−p)) (capped at 1),
//!    leave bad with 1/B, the state is updated first and every frame in the
//!    bad state is lost (steady-state loss p, mean burst B). Otherwise each
//!    frame is lost independently with p.
//! 3. Duplication: with `duplicate_percent` one extra copy (netem's meaning:
//!    at most one copy, where wirefilter's `dup` may chain copies).
//! 4. Per copy: tail drop if the frames or bytes still in the link would
//!    exceed the queue limits; corruption (`corrupt_percent` flips one bit,
//!    `noise` adds a geometric number of bits with step probability
//!    `len · noise / 2^20` as wirefilter does); serialisation at
//!    `bandwidth_kbit`; then the delay.
//!
//! Timing: a single serialiser per direction, so a frame of N bytes finishes
//! `N·8/rate` after the previous one (or after its arrival if the link is
//! idle); the remainder of the division is carried so long runs hit the rate
//! exactly. This is a pure serialisation model, without tbf's burst
//! allowance. The copy then leaves `delay ± jitter` later. Jitter alone never
//! reorders: like wirefilter's default FIFO mode, a due time is raised to the
//! latest one already scheduled, so frames keep their order and closely
//! spaced frames see a bit more than the drawn delay. Only `reorder_percent`
//! reorders: with netem's meaning, that share of frames skips the delay
//! (leaves as soon as it is serialised) when the link has a delay or jitter.
//!
//! Each kind of decision (loss, duplication, corruption, delay, reordering)
//! has its own random stream, so changing, say, the delay keeps the same loss
//! pattern for the same seed.

use core::fmt;
use std::collections::VecDeque;

use crate::params::{DirectionParams, ParamsError, ParamsUpdate};
use crate::queue::{DepartureRing, Entry};
use crate::rng::{Probability, Rng, SplitMix64};
use crate::time::{Duration, Instant};

/// Entries preallocated per ring at most; a larger queue limit grows the ring
/// on demand (amortised, never per frame in steady state).
const MAX_PREALLOCATED_ENTRIES: usize = 1024;

/// The driver's handle of a frame buffer, returned with each departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// Bits to flip in one departing copy.
///
/// The positions are a deterministic function of a seed, so the decision
/// stays small and allocation-free however many bits are hit. Positions are
/// drawn independently; two equal positions cancel out, as in wirefilter.
/// Flipping is XOR, so applying the same corruption twice restores the
/// buffer: a driver that sends a duplicated frame with different corruption
/// per copy can flip, send, and flip back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Corruption {
    seed: u64,
    flips: u32,
    len: u32,
}

impl Corruption {
    /// How many bit flips this corruption makes.
    pub fn flips(&self) -> u32 {
        self.flips
    }

    /// The first bit to flip (bit `i` is `1 << (i % 8)` of byte `i / 8`).
    pub fn first_bit(&self) -> u32 {
        self.bits().next().unwrap_or(0)
    }

    /// Every bit to flip, in order.
    pub fn bits(&self) -> BitFlips {
        BitFlips { positions: SplitMix64::new(self.seed), remaining: self.flips, n_bits: u64::from(self.len) * 8 }
    }

    /// Flips the bits in `frame`; positions beyond its end are skipped.
    pub fn apply(&self, frame: &mut [u8]) {
        for bit in self.bits() {
            let byte = (bit / 8) as usize;
            if let Some(b) = frame.get_mut(byte) {
                *b ^= 1 << (bit % 8);
            }
        }
    }
}

/// Iterator over the bit positions of a [`Corruption`].
#[derive(Debug, Clone)]
pub struct BitFlips {
    positions: SplitMix64,
    remaining: u32,
    n_bits: u64,
}

impl Iterator for BitFlips {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.remaining = self.remaining.checked_sub(1)?;
        let draw = u128::from(self.positions.next_u64());
        // Multiply-shift maps the draw onto 0..n_bits; n_bits < 2^35, so the
        // result fits in u32.
        Some(((draw * u128::from(self.n_bits)) >> 64) as u32)
    }
}

/// Why a frame (or one copy of it) was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// Longer than the MTU.
    Mtu,
    /// Random or burst loss.
    Loss,
    /// The queue was full (tail drop).
    Queue,
}

/// When and how one copy of a frame leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scheduled {
    /// The departure time.
    pub due: Instant,
    /// `due` minus the arrival: serialisation, queueing and delay.
    pub delay: Duration,
    /// Bits to flip, if any.
    pub corruption: Option<Corruption>,
    /// Whether the copy skipped the delay (reordering).
    pub reordered: bool,
}

/// What happened to the extra copy a frame may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duplicate {
    /// The frame was not duplicated.
    No,
    /// The extra copy is scheduled.
    Queued(Scheduled),
    /// The extra copy was drawn but dropped (queue full).
    Dropped(DropCause),
}

/// What happened to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Dropped before anything was scheduled.
    Dropped(DropCause),
    /// The frame, and maybe a copy of it, are scheduled.
    Queued {
        /// The frame itself.
        first: Scheduled,
        /// The extra copy.
        duplicate: Duplicate,
    },
}

/// The decision for one arriving frame; also the entry of the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Arrival number in this direction, from 0.
    pub seq: u64,
    /// The arrival time the decision used.
    pub arrival: Instant,
    /// The frame length.
    pub len: u32,
    /// The outcome.
    pub fate: Fate,
}

impl Verdict {
    /// The cause, if the frame itself was dropped.
    pub fn drop_cause(&self) -> Option<DropCause> {
        match self.fate {
            Fate::Dropped(cause) => Some(cause),
            Fate::Queued { .. } => None,
        }
    }

    /// The frame's own schedule, if it was not dropped.
    pub fn first(&self) -> Option<&Scheduled> {
        match &self.fate {
            Fate::Dropped(_) => None,
            Fate::Queued { first, .. } => Some(first),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}B ", self.seq, self.arrival, self.len)?;
        let copy = |f: &mut fmt::Formatter<'_>, s: &Scheduled| {
            write!(f, "delay={}ns", s.delay.total_nanos())?;
            if s.reordered {
                write!(f, " reordered")?;
            }
            if let Some(c) = s.corruption {
                write!(f, " flips={} bit={}", c.flips(), c.first_bit())?;
            }
            Ok(())
        };
        match &self.fate {
            Fate::Dropped(cause) => write!(f, "dropped-{cause:?}"),
            Fate::Queued { first, duplicate } => {
                write!(f, "passed ")?;
                copy(f, first)?;
                match duplicate {
                    Duplicate::No => Ok(()),
                    Duplicate::Queued(s) => {
                        write!(f, " dup ")?;
                        copy(f, s)
                    }
                    Duplicate::Dropped(cause) => write!(f, " dup-dropped-{cause:?}"),
                }
            }
        }
    }
}

/// A copy that is due: send the buffer of `token`, after applying
/// `corruption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    /// The handle the driver gave with the frame.
    pub token: Token,
    /// The frame length.
    pub len: u32,
    /// The arrival number of the frame.
    pub seq: u64,
    /// When the copy was due (the driver may poll late).
    pub due: Instant,
    /// Whether this is the extra copy of a duplicated frame.
    pub duplicate: bool,
    /// Bits to flip before sending.
    pub corruption: Option<Corruption>,
}

/// A frame and byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Frames.
    pub frames: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Count {
    pub(crate) fn add(&mut self, len: u32) {
        self.frames += 1;
        self.bytes += u64::from(len);
    }
}

/// Running totals of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames handed to `handle_frame`.
    pub received: Count,
    /// Copies returned by `poll_egress` (duplicates included).
    pub sent: Count,
    /// Frames dropped for exceeding the MTU.
    pub dropped_mtu: Count,
    /// Frames lost at random or in a burst.
    pub dropped_loss: Count,
    /// Copies tail-dropped on a full queue (duplicates included).
    pub dropped_queue: Count,
    /// Extra copies scheduled.
    pub duplicated: Count,
    /// Copies scheduled with at least one bit flip.
    pub corrupted: Count,
    /// Copies that skipped the delay.
    pub reordered: Count,
}

/// The most recent decisions, in a ring preallocated at construction.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    entries: VecDeque<Verdict>,
    capacity: usize,
    overwritten: u64,
}

impl DecisionLog {
    fn with_capacity(capacity: usize) -> DecisionLog {
        DecisionLog { entries: VecDeque::with_capacity(capacity), capacity, overwritten: 0 }
    }

    fn push(&mut self, verdict: Verdict) {
        if self.capacity == 0 {
            self.overwritten += 1;
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
            self.overwritten += 1;
        }
        self.entries.push_back(verdict);
    }

    /// The retained decisions, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Verdict> {
        self.entries.iter()
    }

    /// Decisions retained.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no decision is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Older decisions pushed out of the ring.
    pub fn overwritten(&self) -> u64 {
        self.overwritten
    }
}

/// The random stream of each kind of decision.
#[derive(Debug, Clone)]
struct Streams {
    loss: Rng,
    duplicate: Rng,
    corrupt: Rng,
    delay: Rng,
    reorder: Rng,
}

impl Streams {
    /// Streams taken in this fixed order from one SplitMix64 sequence.
    fn new(seed: u64) -> Streams {
        let mut seeder = SplitMix64::new(seed);
        Streams {
            loss: Rng::from_splitmix(&mut seeder),
            duplicate: Rng::from_splitmix(&mut seeder),
            corrupt: Rng::from_splitmix(&mut seeder),
            delay: Rng::from_splitmix(&mut seeder),
            reorder: Rng::from_splitmix(&mut seeder),
        }
    }
}

/// Parameters turned into what the per-frame code compares against.
#[derive(Debug, Clone)]
struct Derived {
    loss: Probability,
    /// (enter bad, leave bad) of the Gilbert chain, when bursts are on.
    gilbert: Option<(Probability, Probability)>,
    duplicate: Probability,
    corrupt: Probability,
    reorder: Probability,
    noise_per_byte: f64,
    queue_frames: usize,
    queue_bytes: u64,
    base_delay: Duration,
    /// Time the token bucket covers at the rate (0 without a rate).
    burst_credit: Duration,
}

impl Derived {
    fn new(p: &DirectionParams) -> Derived {
        let loss_fraction = p.lossratio_percent / 100.0;
        let loss = Probability::from_fraction(loss_fraction);
        let gilbert = (p.lossburst_frames > 0.0 && matches!(loss, Probability::Below(_))).then(|| {
            let b = p.lossburst_frames;
            (
                Probability::from_fraction(loss_fraction / (b * (1.0 - loss_fraction))),
                Probability::from_fraction(1.0 / b),
            )
        });
        let has_delay = p.delay_ms > 0.0 || p.jitter_ms > 0.0;
        Derived {
            loss,
            gilbert,
            duplicate: Probability::from_percent(p.duplicate_percent),
            corrupt: Probability::from_percent(p.corrupt_percent),
            reorder: if has_delay { Probability::from_percent(p.reorder_percent) } else { Probability::Never },
            noise_per_byte: p.noise_bits_per_mbyte / f64::from(1u32 << 20),
            queue_frames: usize::try_from(p.effective_queue_frames()).unwrap_or(usize::MAX),
            queue_bytes: match p.queue_bytes {
                0 => u64::MAX,
                bytes => u64::from(bytes),
            },
            base_delay: Duration::from_millis_f64(p.delay_ms),
            burst_credit: match u64::from(p.bandwidth_kbit) {
                0 => Duration::ZERO,
                kbit => Duration::from_nanos(u64::from(p.burst_bytes) * 8_000_000 / kbit),
            },
        }
    }
}

/// One direction of an emulated link.
///
/// Call order, for a driver on a real or virtual clock:
/// 1. for every arriving frame, [`handle_frame`](Self::handle_frame) with
///    the arrival time, a token for its buffer and its length;
/// 2. then [`poll_egress`](Self::poll_egress) with the current time until it
///    returns `None`, sending each departure (each call returns at most one);
/// 3. wait until [`poll_at`](Self::poll_at) or the next arrival, and repeat.
///
/// [`handle_params`](Self::handle_params) may come at any point. Times passed
/// in should not go backwards; an earlier time is treated as the latest one
/// seen. Decisions depend only on arrival times, lengths and parameters, not
/// on when the driver polls.
#[derive(Debug, Clone)]
pub struct LinkDirection {
    params: DirectionParams,
    derived: Derived,
    streams: Streams,
    gilbert_bad: bool,
    /// When the serialiser finishes the last accepted copy.
    tx_free_at: Instant,
    /// Remainder of the serialisation time division, in 1/rate ns units.
    tx_remainder: u64,
    /// The latest due time of an in-order copy (the FIFO floor).
    fifo_tail: Instant,
    in_order: DepartureRing,
    reordered: DepartureRing,
    next_seq: u64,
    now: Instant,
    counters: Counters,
    hash: u64,
    log: Option<DecisionLog>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds `value` into an FNV-1a hash, little-endian byte by byte.
fn fnv(hash: &mut u64, value: u64) {
    for byte in value.to_le_bytes() {
        *hash ^= u64::from(byte);
        *hash = hash.wrapping_mul(FNV_PRIME);
    }
}

fn hash_scheduled(hash: &mut u64, s: &Scheduled) {
    fnv(hash, s.due.total_nanos());
    fnv(hash, u64::from(s.reordered));
    match s.corruption {
        None => fnv(hash, 0),
        Some(c) => {
            fnv(hash, u64::from(c.flips));
            fnv(hash, c.seed);
        }
    }
}

fn drop_code(cause: DropCause) -> u64 {
    match cause {
        DropCause::Mtu => 1,
        DropCause::Loss => 2,
        DropCause::Queue => 3,
    }
}

impl LinkDirection {
    /// A direction with validated parameters and no decision log.
    pub fn new(params: DirectionParams) -> Result<LinkDirection, ParamsError> {
        params.validate()?;
        let derived = Derived::new(&params);
        let preallocated = derived.queue_frames.min(MAX_PREALLOCATED_ENTRIES);
        Ok(LinkDirection {
            streams: Streams::new(params.seed),
            derived,
            params,
            gilbert_bad: false,
            tx_free_at: Instant::ZERO,
            tx_remainder: 0,
            fifo_tail: Instant::ZERO,
            in_order: DepartureRing::with_capacity(preallocated),
            // Reordering is rare; this ring grows on first use.
            reordered: DepartureRing::with_capacity(0),
            next_seq: 0,
            now: Instant::ZERO,
            counters: Counters::default(),
            hash: FNV_OFFSET,
            log: None,
        })
    }

    /// A direction that also keeps its last `capacity` decisions.
    pub fn with_log(params: DirectionParams, capacity: usize) -> Result<LinkDirection, ParamsError> {
        let mut link = LinkDirection::new(params)?;
        link.log = Some(DecisionLog::with_capacity(capacity));
        Ok(link)
    }

    /// Decides the fate of a frame of `len` bytes arriving at `now`, and
    /// schedules its departures.
    pub fn handle_frame(&mut self, now: Instant, token: Token, len: usize) -> Verdict {
        let now = self.observe(now);
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.received.add(len);

        let fate = match self.admit(len) {
            Err(cause) => Fate::Dropped(cause),
            Ok(duplicated) => match self.schedule(now, seq, token, len, false) {
                Err(cause) => Fate::Dropped(cause),
                Ok(first) => {
                    let duplicate = if duplicated {
                        match self.schedule(now, seq, token, len, true) {
                            Ok(copy) => {
                                self.counters.duplicated.add(len);
                                Duplicate::Queued(copy)
                            }
                            Err(cause) => Duplicate::Dropped(cause),
                        }
                    } else {
                        Duplicate::No
                    };
                    Fate::Queued { first, duplicate }
                }
            },
        };
        let verdict = Verdict { seq, arrival: now, len, fate };
        self.record(&verdict);
        verdict
    }

    /// Returns the next copy due at or before `now`, earliest first (ties by
    /// arrival order). Call until `None`.
    pub fn poll_egress(&mut self, now: Instant) -> Option<Departure> {
        let now = self.observe(now);
        // Both rings are sorted by due time, so the earlier head is the
        // earliest copy overall; ties go to the earlier arrival.
        let (head, from_reordered) = match (self.in_order.head(), self.reordered.head()) {
            (None, None) => return None,
            (Some(a), None) => (a, false),
            (None, Some(b)) => (b, true),
            (Some(a), Some(b)) if (b.due, b.seq) < (a.due, a.seq) => (b, true),
            (Some(a), Some(_)) => (a, false),
        };
        if head.due > now {
            return None;
        }
        let entry = if from_reordered { self.reordered.pop() } else { self.in_order.pop() }?;
        self.counters.sent.add(entry.len);
        Some(Departure {
            token: entry.token,
            len: entry.len,
            seq: entry.seq,
            due: entry.due,
            duplicate: entry.duplicate,
            corruption: entry.corruption,
        })
    }

    /// The earliest due time of a held copy, if any: the next deadline.
    pub fn poll_at(&self) -> Option<Instant> {
        let a = self.in_order.head().map(|e| e.due);
        let b = self.reordered.head().map(|e| e.due);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the fields `update` sets, from the next frame on. Copies
    /// already scheduled keep their due times, and later frames never leave
    /// before them (the FIFO floor and the serialiser carry over), so a
    /// change neither drops nor reorders frames in flight. A new seed
    /// restarts every random stream. On error nothing changes.
    pub fn handle_params(&mut self, now: Instant, update: &ParamsUpdate) -> Result<(), ParamsError> {
        self.observe(now);
        let params = self.params.updated(update);
        params.validate()?;
        if params.seed != self.params.seed || update.seed.is_some() {
            self.streams = Streams::new(params.seed);
        }
        if params.bandwidth_kbit != self.params.bandwidth_kbit {
            // The remainder is in units of the old rate; dropping it costs
            // under a nanosecond.
            self.tx_remainder = 0;
        }
        self.derived = Derived::new(&params);
        if self.derived.gilbert.is_none() {
            self.gilbert_bad = false;
        }
        self.params = params;
        Ok(())
    }

    /// The parameters in force.
    pub fn params(&self) -> &DirectionParams {
        &self.params
    }

    /// The running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// FNV-1a hash of every decision so far: equal for equal seeds, inputs
    /// and parameters, on every platform.
    pub fn decision_hash(&self) -> u64 {
        self.hash
    }

    /// The decision log, if this direction keeps one.
    pub fn log(&self) -> Option<&DecisionLog> {
        self.log.as_ref()
    }

    /// The queue limit in frames in force.
    pub fn queue_limit_frames(&self) -> usize {
        self.derived.queue_frames
    }

    /// Copies held, whether due or not.
    pub fn held_frames(&self) -> usize {
        self.in_order.len() + self.reordered.len()
    }

    /// Heap bytes reserved by the queues and the log.
    pub fn heap_bytes(&self) -> usize {
        let entry = core::mem::size_of::<Entry>();
        let log = self.log.as_ref().map_or(0, |l| l.entries.capacity() * core::mem::size_of::<Verdict>());
        (self.in_order.capacity() + self.reordered.capacity()) * entry + log
    }

    fn observe(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// MTU and loss; on success, whether the frame is duplicated.
    fn admit(&mut self, len: u32) -> Result<bool, DropCause> {
        if self.params.mtu != 0 && len > self.params.mtu {
            self.counters.dropped_mtu.add(len);
            return Err(DropCause::Mtu);
        }
        let lost = match (self.derived.loss, self.derived.gilbert) {
            (Probability::Always, _) => true,
            (_, Some((enter, leave))) => {
                let rng = &mut self.streams.loss;
                self.gilbert_bad = if self.gilbert_bad { !rng.chance(leave) } else { rng.chance(enter) };
                self.gilbert_bad
            }
            (p, None) => self.streams.loss.chance(p),
        };
        if lost {
            self.counters.dropped_loss.add(len);
            return Err(DropCause::Loss);
        }
        Ok(self.streams.duplicate.chance(self.derived.duplicate))
    }

    /// Queues one copy, or reports a tail drop.
    fn schedule(
        &mut self,
        now: Instant,
        seq: u64,
        token: Token,
        len: u32,
        duplicate: bool,
    ) -> Result<Scheduled, DropCause> {
        let (frames_a, bytes_a) = self.in_order.in_link_after(now);
        let (frames_b, bytes_b) = self.reordered.in_link_after(now);
        let bytes = bytes_a.saturating_add(bytes_b).saturating_add(u64::from(len));
        if frames_a + frames_b >= self.derived.queue_frames || bytes > self.derived.queue_bytes {
            self.counters.dropped_queue.add(len);
            return Err(DropCause::Queue);
        }
        let corruption = self.draw_corruption(len);
        if corruption.is_some() {
            self.counters.corrupted.add(len);
        }
        let serialised = self.serialise(now, len);
        let reordered = self.streams.reorder.chance(self.derived.reorder);
        let due = if reordered {
            self.counters.reordered.add(len);
            serialised
        } else {
            let due = (serialised + self.draw_delay()).max(self.fifo_tail);
            self.fifo_tail = due;
            due
        };
        let ring = if reordered { &mut self.reordered } else { &mut self.in_order };
        ring.push(Entry::new(due, seq, token, len, corruption, duplicate));
        Ok(Scheduled { due, delay: due - now, corruption, reordered })
    }

    /// Advances the serialiser by one frame and returns when it is sent.
    fn serialise(&mut self, now: Instant, len: u32) -> Instant {
        let kbit = u64::from(self.params.bandwidth_kbit);
        if kbit == 0 {
            return now;
        }
        if self.tx_free_at < now {
            self.tx_free_at = now;
            self.tx_remainder = 0;
        }
        // ns = bits * 1e9 / (kbit * 1e3) = bytes * 8e6 / kbit, exactly, with
        // the remainder carried to the next frame.
        let numerator = u64::from(len) * 8_000_000 + self.tx_remainder;
        self.tx_remainder = numerator % kbit;
        self.tx_free_at += Duration::from_nanos(numerator / kbit);
        // A token bucket: the frame leaves once its bytes are covered, so
        // up to a bucket's worth of time before pacing would send it (at
        // once after an idle spell); an empty bucket is plain pacing.
        (self.tx_free_at - self.derived.burst_credit).max(now)
    }

    fn draw_delay(&mut self) -> Duration {
        let p = &self.params;
        if p.jitter_ms == 0.0 {
            return self.derived.base_delay;
        }
        let x = p.distribution.sample(&mut self.streams.delay);
        // Negative draws become 0 in `from_millis_f64`.
        Duration::from_millis_f64(p.delay_ms + p.jitter_ms * x)
    }

    fn draw_corruption(&mut self, len: u32) -> Option<Corruption> {
        if len == 0 {
            return None;
        }
        let rng = &mut self.streams.corrupt;
        let mut flips = u32::from(rng.chance(self.derived.corrupt));
        if self.derived.noise_per_byte > 0.0 {
            let n_bits = len.saturating_mul(8);
            match Probability::from_fraction(f64::from(len) * self.derived.noise_per_byte) {
                // wirefilter would loop forever here; every bit is damaged.
                Probability::Always => flips = n_bits,
                step => {
                    while flips < n_bits && rng.chance(step) {
                        flips += 1;
                    }
                }
            }
        }
        (flips > 0).then(|| Corruption { seed: rng.next_u64(), flips, len })
    }

    fn record(&mut self, verdict: &Verdict) {
        let hash = &mut self.hash;
        fnv(hash, verdict.seq);
        fnv(hash, verdict.arrival.total_nanos());
        fnv(hash, u64::from(verdict.len));
        match &verdict.fate {
            Fate::Dropped(cause) => fnv(hash, drop_code(*cause)),
            Fate::Queued { first, duplicate } => {
                fnv(hash, 0);
                hash_scheduled(hash, first);
                match duplicate {
                    Duplicate::No => fnv(hash, 0),
                    Duplicate::Queued(s) => {
                        fnv(hash, 1);
                        hash_scheduled(hash, s);
                    }
                    Duplicate::Dropped(cause) => fnv(hash, 16 + drop_code(*cause)),
                }
            }
        }
        if let Some(log) = &mut self.log {
            log.push(*verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(f: impl FnOnce(&mut DirectionParams)) -> LinkDirection {
        let mut p = DirectionParams::ideal(1);
        f(&mut p);
        LinkDirection::new(p).expect("valid test parameters")
    }

    #[test]
    fn ideal_link_passes_immediately() {
        let mut l = link(|_| {});
        let v = l.handle_frame(Instant::from_millis(5), Token(7), 100);
        assert_eq!(v.first().map(|s| s.delay), Some(Duration::ZERO));
        let d = l.poll_egress(Instant::from_millis(5)).expect("due now");
        assert_eq!((d.token, d.len, d.duplicate), (Token(7), 100, false));
        assert_eq!(l.poll_egress(Instant::from_millis(5)), None);
        assert_eq!(l.poll_at(), None);
    }

    #[test]
    fn delay_and_serialisation_add_up() {
        // 1500 B at 1000 kbit/s = 12 ms, plus 10 ms delay.
        let mut l = link(|p| {
            p.bandwidth_kbit = 1000;
            p.delay_ms = 10.0;
        });
        let v = l.handle_frame(Instant::ZERO, Token(1), 1500);
        assert_eq!(v.first().map(|s| s.due), Some(Instant::from_millis(22)));
        let v = l.handle_frame(Instant::ZERO, Token(2), 1500);
        assert_eq!(v.first().map(|s| s.due), Some(Instant::from_millis(34)));
        assert_eq!(l.poll_at(), Some(Instant::from_millis(22)));
        assert_eq!(l.poll_egress(Instant::from_millis(21)), None);
        assert_eq!(l.poll_egress(Instant::from_millis(22)).map(|d| d.token), Some(Token(1)));
    }

    #[test]
    fn mtu_and_total_loss_drop() {
        let mut l = link(|p| p.mtu = 1500);
        assert_eq!(l.handle_frame(Instant::ZERO, Token(0), 1501).drop_cause(), Some(DropCause::Mtu));
        assert_eq!(l.handle_frame(Instant::ZERO, Token(0), 1500).drop_cause(), None);
        let mut l = link(|p| p.lossratio_percent = 100.0);
        assert_eq!(l.handle_frame(Instant::ZERO, Token(0), 60).drop_cause(), Some(DropCause::Loss));
    }

    #[test]
    fn corruption_flips_are_an_involution() {
        let c = Corruption { seed: 99, flips: 5, len: 64 };
        let mut frame = [0u8; 64];
        c.apply(&mut frame);
        let ones: u32 = frame.iter().map(|b| b.count_ones()).sum();
        assert!(ones <= 5 && ones % 2 == 1);
        c.apply(&mut frame);
        assert_eq!(frame, [0u8; 64]);
        assert!(c.bits().all(|bit| bit < 64 * 8));
    }

    #[test]
    fn bad_update_changes_nothing() {
        let mut l = link(|p| p.delay_ms = 3.0);
        let bad = ParamsUpdate { delay_ms: Some(1.0), lossratio_percent: Some(-1.0), ..ParamsUpdate::default() };
        assert!(l.handle_params(Instant::ZERO, &bad).is_err());
        assert_eq!(l.params().delay_ms, 3.0);
    }
}
