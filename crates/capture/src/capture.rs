//! The per-connection capture front: a producer-side [`Tap`] and a
//! control-side [`Capture`] with a writer thread between them.
//!
//! Call order: [`Capture::start`] returns the `Capture` (kept by the
//! connection's owner) and its `Tap` (moved to the data plane's engine
//! thread). The engine calls [`Tap::handle_frame`] for every frame; the
//! owner may call [`Capture::reconfigure`] at any time, and
//! [`Capture::merge`] (file mode) or [`Capture::stream_addr`] (net mode) to
//! hand the capture to a user, then [`Capture::close`].
//!
//! The tap never blocks: it picks up new settings (enabled, filter) with a
//! `try_lock` only when a generation counter says they changed, filters,
//! and copies the frame into a bounded wait-free queue, counting a drop
//! when it is full. The writer thread drains the queue into the current
//! sink (ring or live stream) under a mutex that only the control side
//! shares, so reconfiguring or merging never touches the engine thread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crate::filter::{Filter, FilterError};
use crate::pcapng::Interface;
use crate::queue::{FrameReceiver, FrameSender, frame_queue};
use crate::ring::{DEFAULT_RING_FILE_SIZE, DEFAULT_RING_FILES, MergeSummary, Ring, RingConfig, RingError};
use crate::stream::{LiveStream, LiveStreamConfig, StreamError, StreamStats};

/// Frames the writer handles per sink lock, so control calls wait at most one batch.
const WRITER_BATCH: usize = 1024;
/// How often the writer polls a live stream when no frames arrive (accepting
/// clients, sending to slow ones).
const STREAM_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long closing a live stream waits for clients to take what is queued for them.
const STREAM_FINISH_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest writer sleep otherwise; wake-ups from the tap normally come first.
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Errors from starting, reconfiguring or reading a capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The filter expression did not compile; nothing was changed.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The ring failed.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The live stream failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The writer thread could not be started.
    #[error("starting the capture writer thread: {0}")]
    Spawn(std::io::Error),
    /// A download was asked for while the capture is not in file mode.
    #[error("the capture is not in file mode")]
    NotFileMode,
    /// The writer thread panicked.
    #[error("the capture writer thread panicked")]
    WriterPanicked,
}

/// ToMaTo's `capture_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// A ring of pcapng files, merged for download.
    File,
    /// A live pcapng stream on a TCP port.
    Net,
}

/// The attributes of a connection that drive its capture; all may change at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// ToMaTo's `capturing`.
    pub enabled: bool,
    /// ToMaTo's `capture_filter`, in tcpdump syntax; empty captures everything.
    pub filter: String,
    /// ToMaTo's `capture_mode`.
    pub mode: CaptureMode,
    /// Number of ring files in file mode.
    pub ring_files: usize,
    /// Maximum bytes per ring file in file mode.
    pub ring_file_size: u64,
}

impl CaptureConfig {
    /// ToMaTo's defaults: off, no filter, file mode, 5 x 10 MB ring.
    pub fn tomato_default() -> CaptureConfig {
        CaptureConfig {
            enabled: false,
            filter: String::new(),
            mode: CaptureMode::File,
            ring_files: DEFAULT_RING_FILES,
            ring_file_size: DEFAULT_RING_FILE_SIZE,
        }
    }
}

/// What is fixed for the life of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSetup {
    /// The captured interfaces; [`Tap::handle_frame`]'s `iface` indexes this list.
    pub interfaces: Vec<Interface>,
    /// Directory for the ring in file mode (created and removed by the capture if missing).
    pub dir: PathBuf,
    /// Address the live stream listens on in net mode (port 0 picks one).
    pub listen: SocketAddr,
    /// Bytes kept per frame (0 = whole frames).
    pub snaplen: u32,
    /// Capacity of the tap-to-writer queue in bytes (each frame costs 24 bytes plus its kept bytes).
    pub queue_bytes: usize,
    /// Per-client queue limit of the live stream in bytes.
    pub client_queue_bytes: usize,
}

impl CaptureSetup {
    /// A setup for `interfaces` with its ring under `dir`, a live stream on
    /// a free loopback port, whole frames up to [`DEFAULT_SNAPLEN`], an
    /// 8 MiB tap queue (about 5 ms of a saturated 10 Gbit/s link) and 4 MiB
    /// per stream client.
    pub fn new(interfaces: Vec<Interface>, dir: impl Into<PathBuf>) -> CaptureSetup {
        CaptureSetup {
            interfaces,
            dir: dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            snaplen: crate::pcapng::DEFAULT_SNAPLEN,
            queue_bytes: 8 << 20,
            client_queue_bytes: 4 << 20,
        }
    }
}

/// A snapshot of a capture's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames handed to the tap while capturing was enabled.
    pub seen: u64,
    /// Frames that passed the filter.
    pub matched: u64,
    /// Frames written to the ring or encoded for the stream.
    pub written: u64,
    /// Matched frames lost: the queue was full, or capturing was switched off before they were written.
    pub dropped: u64,
    /// Frames naming an interface index outside the setup's list.
    pub invalid: u64,
    /// Frames the sink failed to write (see [`Capture::last_error`]).
    pub write_errors: u64,
    /// Live stream counters, in net mode.
    pub stream: Option<StreamStats>,
}

/// What the tap runs with; published by the control side, taken by the tap.
struct TapSettings {
    enabled: bool,
    filter: Filter,
}

enum Sink {
    Off,
    File(Ring),
    Net(LiveStream),
}

struct Shared {
    generation: AtomicU64,
    tap_update: Mutex<Option<TapSettings>>,
    sink: Mutex<Sink>,
    seen: AtomicU64,
    matched: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    invalid: AtomicU64,
    write_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    stop: AtomicBool,
    writer_sleeping: AtomicBool,
    writer_thread: OnceLock<Thread>,
}

impl Shared {
    fn sink(&self) -> MutexGuard<'_, Sink> {
        // A panic while holding the sink leaves it usable: every sink method
        // keeps its invariants between frames.
        self.sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The producer side, owned by the data plane's engine thread; see the module documentation.
pub struct Tap {
    sender: FrameSender,
    shared: Arc<Shared>,
    generation: u64,
    enabled: bool,
    filter: Filter,
    n_interfaces: u32,
    snaplen: usize,
}

impl Tap {
    /// Offers one frame seen at `timestamp_ns` on interface `iface`.
    ///
    /// Never blocks and never allocates: it filters the whole frame, then
    /// copies at most the snap length into the queue, or counts a drop.
    pub fn handle_frame(&mut self, timestamp_ns: u64, iface: u32, frame: &[u8]) {
        if self.shared.generation.load(Ordering::Acquire) != self.generation {
            self.refresh_settings();
        }
        if !self.enabled {
            return;
        }
        self.shared.seen.fetch_add(1, Ordering::Relaxed);
        if iface >= self.n_interfaces {
            self.shared.invalid.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !self.filter.matches(frame) {
            return;
        }
        self.shared.matched.fetch_add(1, Ordering::Relaxed);
        let kept = if self.snaplen == 0 { frame } else { &frame[..frame.len().min(self.snaplen)] };
        let original_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if !self.sender.try_send(timestamp_ns, iface, original_len, kept) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Pairs with the writer's fence between announcing sleep and
        // checking the queue: one of the two sides sees the other.
        fence(Ordering::SeqCst);
        if self.shared.writer_sleeping.load(Ordering::Relaxed)
            && self.shared.writer_sleeping.swap(false, Ordering::AcqRel)
            && let Some(thread) = self.shared.writer_thread.get()
        {
            thread.unpark();
        }
    }

    fn refresh_settings(&mut self) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        // try_lock: if the control side is publishing right now, keep the
        // old settings and look again on the next frame.
        if let Ok(mut update) = self.shared.tap_update.try_lock() {
            if let Some(settings) = update.take() {
                self.enabled = settings.enabled;
                self.filter = settings.filter;
            }
            self.generation = generation;
        }
    }

    /// The filter expression currently applied by this tap.
    pub fn filter_expression(&self) -> &str {
        self.filter.expression()
    }

    /// Whether the tap currently captures.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the capture this tap feeds has been closed.
    pub fn is_closed(&self) -> bool {
        self.sender.is_abandoned()
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("enabled", &self.enabled).field("filter", &self.filter).finish_non_exhaustive()
    }
}

/// The control side of one connection's capture; see the module documentation.
pub struct Capture {
    shared: Arc<Shared>,
    setup: CaptureSetup,
    config: CaptureConfig,
    writer: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts the writer thread and applies `config`; returns the control side and the tap.
    pub fn start(setup: CaptureSetup, config: CaptureConfig) -> Result<(Capture, Tap), CaptureError> {
        let filter = Filter::compile(&config.filter)?;
        let sink = build_sink(&setup, &config)?;
        let (sender, receiver) = frame_queue(setup.queue_bytes);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            tap_update: Mutex::new(None),
            sink: Mutex::new(sink),
            seen: AtomicU64::new(0),
            matched: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stop: AtomicBool::new(false),
            writer_sleeping: AtomicBool::new(false),
            writer_thread: OnceLock::new(),
        });
        let writer_shared = shared.clone();
        let max_frame = if setup.snaplen == 0 { 65536 } else { setup.snaplen as usize };
        let writer = std::thread::Builder::new()
            .name("capture-writer".into())
            .spawn(move || run_writer(&writer_shared, receiver, max_frame))
            .map_err(CaptureError::Spawn)?;
        shared.writer_thread.set(writer.thread().clone()).expect("set once, here");
        let tap = Tap {
            sender,
            shared: shared.clone(),
            generation: 0,
            enabled: config.enabled,
            filter,
            n_interfaces: u32::try_from(setup.interfaces.len()).expect("fewer than 2^32 interfaces"),
            snaplen: setup.snaplen as usize,
        };
        Ok((Capture { shared, setup, config, writer: Some(writer) }, tap))
    }

    /// Applies new settings without stopping the producer.
    ///
    /// The filter is compiled first, so a bad expression changes nothing.
    /// The sink is kept when it still fits (same mode and ring size), so a
    /// filter change keeps the ring's data and the stream's clients;
    /// otherwise the old sink is closed (its files removed) and a new one
    /// opened. If the new one cannot be opened (say the port is taken),
    /// capturing is left off and the error returned.
    pub fn reconfigure(&mut self, config: CaptureConfig) -> Result<(), CaptureError> {
        let filter = Filter::compile(&config.filter)?;
        let sink_changes = config.enabled != self.config.enabled
            || config.mode != self.config.mode
            || (config.mode == CaptureMode::File
                && (config.ring_files, config.ring_file_size) != (self.config.ring_files, self.config.ring_file_size));
        if sink_changes {
            let mut sink = self.shared.sink();
            // Close the old sink first: a new ring reuses the directory and
            // its file names, and a new stream may want the same port.
            if let Err(error) = close_sink(std::mem::replace(&mut *sink, Sink::Off)) {
                // Leftover files must not stop the new settings; report them.
                *self.shared.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    Some(error.to_string());
            }
            match build_sink(&self.setup, &config) {
                Ok(new_sink) => *sink = new_sink,
                Err(error) => {
                    drop(sink);
                    // The old sink is gone, so say so: capturing is off.
                    self.publish(TapSettings { enabled: false, filter });
                    self.config = CaptureConfig { enabled: false, ..config };
                    return Err(error);
                }
            }
        }
        self.publish(TapSettings { enabled: config.enabled, filter });
        self.config = config;
        Ok(())
    }

    fn publish(&self, settings: TapSettings) {
        *self.shared.tap_update.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(settings);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The settings last applied.
    pub fn config(&self) -> &CaptureConfig {
        &self.config
    }

    /// The fixed setup.
    pub fn setup(&self) -> &CaptureSetup {
        &self.setup
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let stream = match &*self.shared.sink() {
            Sink::Net(stream) => Some(stream.stats()),
            _ => None,
        };
        Counters {
            seen: load(&self.shared.seen),
            matched: load(&self.shared.matched),
            written: load(&self.shared.written),
            dropped: load(&self.shared.dropped),
            invalid: load(&self.shared.invalid),
            write_errors: load(&self.shared.write_errors),
            stream,
        }
    }

    /// The last error the writer met, if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The live stream's address, in net mode.
    pub fn stream_addr(&self) -> Option<SocketAddr> {
        match &*self.shared.sink() {
            Sink::Net(stream) => Some(stream.local_addr()),
            _ => None,
        }
    }

    /// The ring's files, oldest first, in file mode.
    pub fn ring_files(&self) -> Vec<PathBuf> {
        match &*self.shared.sink() {
            Sink::File(ring) => ring.files().map(Path::to_path_buf).collect(),
            _ => Vec::new(),
        }
    }

    /// Waits until the writer has taken every frame queued so far (for
    /// downloads and tests); returns false if that took longer than `timeout`.
    pub fn sync(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let load = |counter: &AtomicU64| counter.load(Ordering::Acquire);
            // Matched first: frames matched after this load are not waited for.
            let matched = load(&self.shared.matched);
            if load(&self.shared.written) + load(&self.shared.write_errors) + load(&self.shared.dropped) >= matched {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            if let Some(thread) = self.shared.writer_thread.get() {
                thread.unpark();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Merges the ring into one pcapng file at `out` (ToMaTo's download),
    /// keeping only the newest packets that fit in `limit_size` bytes if given.
    ///
    /// Frames still in the queue are not included; call [`Capture::sync`] first to include them.
    pub fn merge(&self, limit_size: Option<u64>, out: &Path) -> Result<MergeSummary, CaptureError> {
        match &mut *self.shared.sink() {
            Sink::File(ring) => Ok(ring.merge(limit_size, out)?),
            _ => Err(CaptureError::NotFileMode),
        }
    }

    /// Stops the writer (after it writes what is queued), closes the stream
    /// and removes the ring files.
    pub fn close(mut self) -> Result<(), CaptureError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), CaptureError> {
        let Some(writer) = self.writer.take() else { return Ok(()) };
        self.shared.stop.store(true, Ordering::Release);
        writer.thread().unpark();
        let joined = writer.join();
        let sink = std::mem::replace(&mut *self.shared.sink(), Sink::Off);
        close_sink(sink)?;
        joined.map_err(|_| CaptureError::WriterPanicked)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // Best effort: close() reports errors, drop cannot.
        let _ = self.shutdown();
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Closes a sink: removes a ring's files, or lets stream clients catch up briefly.
fn close_sink(sink: Sink) -> Result<(), CaptureError> {
    match sink {
        Sink::Off => Ok(()),
        Sink::File(ring) => Ok(ring.close()?),
        Sink::Net(stream) => {
            stream.finish(STREAM_FINISH_TIMEOUT);
            Ok(())
        }
    }
}

fn build_sink(setup: &CaptureSetup, config: &CaptureConfig) -> Result<Sink, CaptureError> {
    if !config.enabled {
        return Ok(Sink::Off);
    }
    Ok(match config.mode {
        CaptureMode::File => Sink::File(Ring::create(
            RingConfig {
                dir: setup.dir.clone(),
                n_files: config.ring_files,
                file_size: config.ring_file_size,
                snaplen: setup.snaplen,
            },
            &setup.interfaces,
        )?),
        CaptureMode::Net => Sink::Net(LiveStream::bind(
            setup.listen,
            &setup.interfaces,
            LiveStreamConfig { client_queue_bytes: setup.client_queue_bytes, snaplen: setup.snaplen },
        )?),
    })
}

/// The writer thread: drain a bounded batch into the sink, flush or poll
/// it, and sleep until the tap wakes it or the poll interval passes.
fn run_writer(shared: &Shared, mut receiver: FrameReceiver, max_frame: usize) {
    let mut scratch = Vec::with_capacity(max_frame);
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let mut n_frames = 0;
        let poll_interval = {
            let mut sink = shared.sink();
            while n_frames < WRITER_BATCH {
                let Some(frame) = receiver.try_recv(&mut scratch) else { break };
                n_frames += 1;
                let result = match &mut *sink {
                    Sink::Off => {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Sink::File(ring) => ring
                        .write_packet(frame.timestamp_ns, frame.iface, frame.original_len, frame.data)
                        .map_err(|e| e.to_string()),
                    Sink::Net(stream) => stream
                        .write_packet(frame.timestamp_ns, frame.iface, frame.original_len, frame.data)
                        .map_err(|e| e.to_string()),
                };
                match result {
                    Ok(()) => shared.written.fetch_add(1, Ordering::Relaxed),
                    Err(message) => {
                        *shared.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(message);
                        shared.write_errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            match &mut *sink {
                Sink::Off => IDLE_POLL_INTERVAL,
                Sink::File(ring) => {
                    // Flush per batch, like tcpdump -U, so a download sees recent packets.
                    if n_frames > 0
                        && let Err(e) = ring.flush()
                    {
                        *shared.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                            Some(e.to_string());
                    }
                    IDLE_POLL_INTERVAL
                }
                Sink::Net(stream) => {
                    stream.poll();
                    STREAM_POLL_INTERVAL
                }
            }
        };
        if n_frames == WRITER_BATCH {
            continue;
        }
        if stopping && receiver.is_empty() {
            if let Sink::Net(stream) = &mut *shared.sink() {
                stream.poll();
            }
            return;
        }
        shared.writer_sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if receiver.is_empty() && !shared.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(poll_interval);
        }
        shared.writer_sleeping.store(false, Ordering::SeqCst);
    }
}
