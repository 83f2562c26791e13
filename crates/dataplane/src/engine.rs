//! The engine: one thread moving frames between ports through links and
//! switches, and the handle that controls it.
//!
//! A link joins two ports through two [`netem::LinkDirection`]s; a switch
//! joins N ports through a [`netem::Switch`]. The thread waits in epoll on
//! every port's descriptor, a control eventfd and a timerfd armed at the
//! earliest `poll_at()` of all links and switches, minus [`EngineConfig`]'s
//! spin margin: the last stretch before a deadline is spun (polling ports
//! meanwhile), because a timer wake-up here is late by tens of microseconds.
//! Each turn of the loop handles its inputs, then sends every due departure,
//! then sleeps until the next input or deadline (quinn's `ConnectionDriver`
//! shape). Frames live in a preallocated [`Pool`]; a departure's token is its
//! slot, and nothing is allocated per frame.
//!
//! Super-frames from veth (see `gso.rs`) pass a direction intact when it
//! only delays (an unshaped wire carries the segments back to back anyway)
//! and are segmented into real frames before any direction that shapes rate,
//! limits size, or drops, duplicates, corrupts, jitters or reorders, since
//! those act per real frame.
//!
//! Control ([`EngineControl`], which [`EngineHandle`] derefs to) goes
//! through a channel plus an eventfd wake-up: adding and removing links and
//! switches, live parameter changes (which keep frames in flight, see
//! [`netem::LinkDirection::handle_params`]), captures, and reading counters.
//! Console commands (`console.rs`) run as jobs on the engine thread, so a
//! VDE command sees and changes a link or switch in one step.
//!
//! A switch is a [`vde::ManagedSwitch`]: VDE's view of ports and VLANs over
//! a [`netem::Switch`], numbered like `vde_switch`, port `i` of the list
//! given being port `i + 1`. A link end may be a new port of a switch in the
//! same engine ([`LinkEnd::Switch`]), which is how a node's connection to a
//! switch is built: the two meet at a *junction*, a pair of port entries
//! that hand frames to each other inside the thread, with no socket or
//! copy. Junctions only join a link to a switch, never two switches or two
//! links, so handing a frame on recurses at most twice (link egress ->
//! switch -> next link's netem queue). A link may carry a capture [`Tap`], fed with
//! every frame as it leaves the link (what the far end receives), interface
//! 0 for A→B and 1 for B→A, stamped with the departure time on the wall
//! clock.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use capture::Tap;
use netem::{
    Count, Counters, DirectionParams, Egress, Fate, Forwarding, LinkDirection, ParamsError, ParamsUpdate, PortIdx,
    SwitchConfig, SwitchCounters, SwitchError, SwitchMode, Tagging, Token,
};
use thiserror::Error;
use vde::ManagedSwitch;

use crate::gso;
use crate::pool::Pool;
use crate::port::{FrameMeta, NEEDS_CSUM, Port};
use crate::sys::{self, Epoll, TimerFd};

/// Frames received from one port per batch, and sent per `send_batch`.
const BATCH: usize = 64;
/// Batches taken from one port per wake-up before the others get a turn.
const ROUNDS_PER_WAKE: usize = 4;
/// Epoll key of the control eventfd.
const KEY_CONTROL: u64 = u64::MAX;
/// Epoll key of the timerfd.
const KEY_TIMER: u64 = u64::MAX - 1;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Frame buffers preallocated (each [`crate::pool::SLOT_SIZE`] bytes of
    /// address space, resident only once touched).
    pub pool_slots: usize,
    /// How long before a deadline the thread stops sleeping and spins.
    pub spin_nanos: u64,
    /// Key of the switches' MAC table hash.
    pub hash_key: u64,
}

impl EngineConfig {
    /// 8192 slots (enough for a few gigabit-milliseconds in flight) and a
    /// 50 µs spin.
    pub fn standard() -> EngineConfig {
        EngineConfig { pool_slots: 8192, spin_nanos: 50_000, hash_key: crate::attrs::fresh_seed() }
    }
}

/// A link in an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u32);

/// A switch in an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwitchId(pub u32);

/// One end of a link.
pub enum LinkEnd {
    /// A port of the link's own.
    Port(Box<dyn Port>),
    /// A new port of a switch in the same engine (the lowest free number).
    Switch(SwitchId),
}

impl fmt::Debug for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEnd::Port(port) => write!(f, "Port({})", port.name()),
            LinkEnd::Switch(id) => write!(f, "Switch({})", id.0),
        }
    }
}

/// One direction of a link: the first port given is A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Frames received on A, sent on B (the model's `*_from`).
    AToB,
    /// Frames received on B, sent on A (the model's `*_to`).
    BToA,
}

/// What went wrong with a control request.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The engine thread is gone.
    #[error("the engine has stopped")]
    Stopped,
    /// An unknown link id.
    #[error("no link {0:?}")]
    NoSuchLink(LinkId),
    /// An unknown switch id.
    #[error("no switch {0:?}")]
    NoSuchSwitch(SwitchId),
    /// Parameters out of range.
    #[error("bad parameters: {0}")]
    Params(#[from] ParamsError),
    /// A switch port error.
    #[error("switch: {0}")]
    Switch(#[from] SwitchError),
    /// A port number that a switch does not have.
    #[error("switch {switch} has no port {number}", switch = .0.0, number = .1)]
    NoSuchSwitchPort(SwitchId, u16),
    /// A switch refused a VLAN or mode change.
    #[error("switch change: {0}")]
    SwitchChange(String),
    /// A system call failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Totals of one port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// The port's name.
    pub name: String,
    /// Frames received (super-frames count once).
    pub rx: Count,
    /// Frames sent.
    pub tx: Count,
    /// Frames the port refused on send.
    pub tx_dropped: u64,
    /// Frames received while the pool was empty, and dropped.
    pub rx_no_buffer: u64,
}

/// Totals and settings of one link.
#[derive(Debug, Clone)]
pub struct LinkStats {
    /// The link.
    pub id: LinkId,
    /// Ports A and B.
    pub ports: [PortStats; 2],
    /// Parameters of A→B and B→A.
    pub params: [DirectionParams; 2],
    /// netem counters of A→B and B→A.
    pub counters: [Counters; 2],
    /// Super-frames cut into real frames, per direction.
    pub segmented: [u64; 2],
    /// Super-frames dropped because they could not be segmented.
    pub gso_dropped: [u64; 2],
    /// Heap bytes of the two directions' queues.
    pub heap_bytes: usize,
}

/// Totals of one switch.
#[derive(Debug, Clone)]
pub struct SwitchStats {
    /// The switch.
    pub id: SwitchId,
    /// Its ports with their VDE numbers, in number order.
    pub ports: Vec<(u16, PortStats)>,
    /// The switch's own counters.
    pub counters: SwitchCounters,
    /// Heap bytes of the switch's table and port list.
    pub heap_bytes: usize,
}

/// Everything an engine reports.
#[derive(Debug, Clone)]
pub struct EngineStats {
    /// Links, by id.
    pub links: Vec<LinkStats>,
    /// Switches, by id.
    pub switches: Vec<SwitchStats>,
    /// Buffer slots in the pool.
    pub pool_slots: usize,
    /// Slots in use (frames held in links or being sent).
    pub pool_in_use: usize,
}

/// Work run on the engine thread with the engine at hand.
pub(crate) type Job = Box<dyn FnOnce(&mut Engine) + Send>;

enum Command {
    AddLink { ends: [LinkEnd; 2], params: [DirectionParams; 2], reply: Sender<Result<LinkId, EngineError>> },
    RemoveLink { id: LinkId, reply: Sender<Result<LinkStats, EngineError>> },
    SetParams { id: LinkId, direction: Direction, update: ParamsUpdate, reply: Sender<Result<(), EngineError>> },
    AddSwitch { mode: SwitchMode, ports: Vec<Box<dyn Port>>, reply: Sender<Result<SwitchId, EngineError>> },
    RemoveSwitch { id: SwitchId, reply: Sender<Result<SwitchStats, EngineError>> },
    Stats { reply: Sender<EngineStats> },
    Run(Job),
    Shutdown { reply: Sender<EngineStats> },
}

/// Controls a running engine from any thread; cheap to clone (consoles keep
/// one). Requests fail with [`EngineError::Stopped`] once the engine is gone.
#[derive(Clone)]
pub struct EngineControl {
    commands: Sender<Command>,
    wake: Arc<OwnedFd>,
}

impl fmt::Debug for EngineControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineControl").finish_non_exhaustive()
    }
}

/// Owns a running engine thread. Dropping it stops the engine; it derefs to
/// the [`EngineControl`] that makes requests.
pub struct EngineHandle {
    control: EngineControl,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineHandle").finish_non_exhaustive()
    }
}

impl EngineHandle {
    /// Starts an engine thread with no links or switches.
    pub fn spawn(config: EngineConfig) -> io::Result<EngineHandle> {
        let wake = Arc::new(sys::eventfd()?);
        let (commands, inbox) = mpsc::channel();
        let mut engine = Engine::new(&config, Arc::clone(&wake), inbox)?;
        let thread = std::thread::Builder::new().name("dataplane".into()).spawn(move || engine.run())?;
        Ok(EngineHandle { control: EngineControl { commands, wake }, thread: Some(thread) })
    }

    /// A control for other threads, valid as long as the engine runs.
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// Stops the engine, closes every port and returns the final totals.
    pub fn shutdown(mut self) -> Result<EngineStats, EngineError> {
        let stats = self.control.request(|reply| Command::Shutdown { reply });
        self.join()?;
        stats
    }

    fn join(&mut self) -> Result<(), EngineError> {
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result.map_err(EngineError::Io),
            Some(Err(_)) => Err(EngineError::Io(io::Error::other("the engine thread panicked"))),
        }
    }
}

impl Deref for EngineHandle {
    type Target = EngineControl;

    fn deref(&self) -> &EngineControl {
        &self.control
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let (reply, _answer) = mpsc::channel();
            let _ = self.control.commands.send(Command::Shutdown { reply });
            sys::eventfd_signal(self.control.wake.as_raw_fd());
            let _ = self.join();
        }
    }
}

impl EngineControl {
    fn request<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T, EngineError> {
        let (reply, answer) = mpsc::channel();
        self.commands.send(make(reply)).map_err(|_| EngineError::Stopped)?;
        sys::eventfd_signal(self.wake.as_raw_fd());
        answer.recv().map_err(|_| EngineError::Stopped)
    }

    /// Joins ports `a` and `b` with a link of the given direction parameters.
    pub fn add_link(
        &self,
        a: Box<dyn Port>,
        b: Box<dyn Port>,
        a_to_b: DirectionParams,
        b_to_a: DirectionParams,
    ) -> Result<LinkId, EngineError> {
        self.add_link_ends(LinkEnd::Port(a), LinkEnd::Port(b), a_to_b, b_to_a)
    }

    /// Joins two ends, ports or switches of this engine, with a link.
    pub fn add_link_ends(
        &self,
        a: LinkEnd,
        b: LinkEnd,
        a_to_b: DirectionParams,
        b_to_a: DirectionParams,
    ) -> Result<LinkId, EngineError> {
        self.request(|reply| Command::AddLink { ends: [a, b], params: [a_to_b, b_to_a], reply })?
    }

    /// Adds a port to a running switch and returns its VDE number (the
    /// lowest free one).
    pub fn add_switch_port(&self, id: SwitchId, port: Box<dyn Port>) -> Result<u16, EngineError> {
        self.run(move |engine| engine.add_switch_port(id, port))?
    }

    /// Removes port `number` from a switch and returns its totals; a link
    /// ending there loses that end (its frames towards it are dropped).
    pub fn remove_switch_port(&self, id: SwitchId, number: u16) -> Result<PortStats, EngineError> {
        self.run(move |engine| engine.remove_switch_port(id, number))?
    }

    /// Removes a link (frames in flight are dropped) and returns its totals;
    /// its ports are closed.
    pub fn remove_link(&self, id: LinkId) -> Result<LinkStats, EngineError> {
        self.request(|reply| Command::RemoveLink { id, reply })?
    }

    /// Changes parameters of one direction of a running link; frames in
    /// flight keep their schedule.
    pub fn set_link_params(&self, id: LinkId, direction: Direction, update: ParamsUpdate) -> Result<(), EngineError> {
        self.request(|reply| Command::SetParams { id, direction, update, reply })?
    }

    /// Joins `ports` with a learning switch or a hub; `ports[i]` is VDE port
    /// `i + 1`, untagged in VDE's default VLAN 0.
    pub fn add_switch(&self, mode: SwitchMode, ports: Vec<Box<dyn Port>>) -> Result<SwitchId, EngineError> {
        self.request(|reply| Command::AddSwitch { mode, ports, reply })?
    }

    /// Removes a switch and returns its totals; its ports are closed.
    pub fn remove_switch(&self, id: SwitchId) -> Result<SwitchStats, EngineError> {
        self.request(|reply| Command::RemoveSwitch { id, reply })?
    }

    /// Current totals of everything in the engine.
    pub fn stats(&self) -> Result<EngineStats, EngineError> {
        self.request(|reply| Command::Stats { reply })
    }

    /// Starts (`Some`) or ends (`None`) feeding a link's departures to a
    /// capture tap: interface 0 is A→B, 1 is B→A. A tap whose capture was
    /// closed is dropped by the engine.
    pub fn set_link_capture(&self, id: LinkId, tap: Option<Tap>) -> Result<(), EngineError> {
        self.run(move |engine| {
            engine.link_mut(id).ok_or(EngineError::NoSuchLink(id))?.tap = tap;
            Ok(())
        })?
    }

    /// The switch port each side of a link meets, for sides joined to a
    /// switch of this engine at a junction (`None` for a port of its own).
    pub fn link_switch_ports(&self, id: LinkId) -> Result<[Option<(SwitchId, u16)>; 2], EngineError> {
        self.run(move |engine| {
            let link = engine.links.get(id.0 as usize).and_then(Option::as_ref).ok_or(EngineError::NoSuchLink(id))?;
            Ok(link.ports.map(|slot| {
                let entry = engine.ports.get(slot).and_then(Option::as_ref)?;
                let PortIo::Junction { peer } = entry.io else { return None };
                match engine.ports.get(peer).and_then(Option::as_ref)?.owner {
                    Owner::Switch { switch, idx } => Some((SwitchId(switch as u32), idx)),
                    Owner::Link { .. } => None,
                }
            }))
        })?
    }

    /// Applies VDE switch changes (VLANs of ports, hub mode) to a running
    /// switch, in order; stops at the first that fails.
    pub fn apply_switch_changes(&self, id: SwitchId, changes: Vec<vde::SwitchChange>) -> Result<(), EngineError> {
        self.run(move |engine| {
            let switch = engine.switch_mut(id).ok_or(EngineError::NoSuchSwitch(id))?;
            for change in &changes {
                vde::SwitchTarget::apply(switch, change).map_err(|e| EngineError::SwitchChange(e.to_string()))?;
            }
            Ok(())
        })?
    }

    /// Runs `job` on the engine thread and returns its result.
    pub(crate) fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        self.request(|reply| {
            Command::Run(Box::new(move |engine| {
                let _ = reply.send(job(engine));
            }))
        })
    }
}

/// Who a port belongs to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Link { link: usize, side: usize },
    Switch { switch: usize, idx: u16 },
}

/// How frames leave a port entry.
enum PortIo {
    /// Through a port of its own, in batches.
    External(Box<dyn Port>),
    /// Straight to the other entry of a junction.
    Junction { peer: usize },
}

struct PortEntry {
    io: PortIo,
    owner: Owner,
    stats: PortStats,
    /// Slots queued for the next `send_batch`, capacity [`BATCH`].
    txq: Vec<u32>,
}

pub(crate) struct LinkState {
    /// Port slots of A and B.
    ports: [usize; 2],
    /// A→B and B→A.
    dirs: [LinkDirection; 2],
    /// Whether a direction needs real frames (see the module docs).
    segment: [bool; 2],
    segmented: [u64; 2],
    gso_dropped: [u64; 2],
    /// The capture fed with departures, if any.
    tap: Option<Tap>,
}

impl LinkState {
    /// Changes one direction's parameters at `now`; frames in flight keep
    /// their schedule.
    pub(crate) fn apply_params(
        &mut self,
        d: usize,
        now: netem::Instant,
        update: &ParamsUpdate,
    ) -> Result<(), ParamsError> {
        self.dirs[d].handle_params(now, update)?;
        self.segment[d] = needs_real_frames(self.dirs[d].params());
        Ok(())
    }

    /// The direction `d` (0 = A→B).
    pub(crate) fn direction(&self, d: usize) -> &LinkDirection {
        &self.dirs[d]
    }
}

struct SwitchState {
    switch: ManagedSwitch,
    /// Engine port slots; VDE port number `n` is entry `n - 1`, `usize::MAX`
    /// where no port is.
    ports: Vec<usize>,
}

impl SwitchState {
    fn slot(&self, number: u16) -> Option<usize> {
        let at = usize::from(number).checked_sub(1)?;
        self.ports.get(at).copied().filter(|p| *p != usize::MAX)
    }

    fn set_slot(&mut self, number: u16, slot: usize) {
        let at = usize::from(number) - 1;
        if self.ports.len() <= at {
            self.ports.resize(at + 1, usize::MAX);
        }
        self.ports[at] = slot;
    }

    /// (number, slot) of every port, in number order.
    fn numbered(&self) -> impl Iterator<Item = (u16, usize)> + '_ {
        self.ports.iter().enumerate().filter(|(_, p)| **p != usize::MAX).map(|(i, p)| (i as u16 + 1, *p))
    }
}

/// Whether a direction acts per real frame, so super-frames must be cut.
fn needs_real_frames(p: &DirectionParams) -> bool {
    p.bandwidth_kbit != 0
        || p.mtu != 0
        || p.queue_frames != 0
        || p.queue_bytes != 0
        || p.jitter_ms != 0.0
        || p.lossratio_percent != 0.0
        || p.duplicate_percent != 0.0
        || p.corrupt_percent != 0.0
        || p.noise_bits_per_mbyte != 0.0
        || p.reorder_percent != 0.0
}

/// Inserts `value` at the first free place of a slab and returns its index.
fn slab_insert<T>(slab: &mut Vec<Option<T>>, value: T) -> usize {
    match slab.iter().position(Option::is_none) {
        Some(i) => {
            slab[i] = Some(value);
            i
        }
        None => {
            slab.push(Some(value));
            slab.len() - 1
        }
    }
}

/// The engine thread's state.
pub(crate) struct Engine {
    epoll: Epoll,
    timer: TimerFd,
    timer_armed_at: u64,
    wake: Arc<OwnedFd>,
    inbox: Receiver<Command>,
    pool: Pool,
    spin_nanos: u64,
    hash_key: u64,
    /// Add to the monotonic clock for the wall clock (capture stamps).
    realtime_offset: u64,
    ports: Vec<Option<PortEntry>>,
    links: Vec<Option<LinkState>>,
    switches: Vec<Option<SwitchState>>,
    /// Reused copy of a switch decision.
    egress: Vec<Egress>,
    /// The same with engine port slots.
    fanout: Vec<(usize, Tagging)>,
    /// Scratch buffer to drain a port when the pool is empty.
    drain: Vec<u8>,
    /// Switches that got frames through a junction and have sends queued.
    dirty_switches: Vec<usize>,
}

/// What woke the loop, decoded from an epoll key.
enum Wake {
    Control,
    Timer,
    Port(usize),
}

impl Wake {
    fn from_key(key: u64) -> Wake {
        match key {
            KEY_CONTROL => Wake::Control,
            KEY_TIMER => Wake::Timer,
            port => Wake::Port(port as usize),
        }
    }
}

impl Engine {
    fn new(config: &EngineConfig, wake: Arc<OwnedFd>, inbox: Receiver<Command>) -> io::Result<Engine> {
        let epoll = Epoll::new()?;
        let timer = TimerFd::new()?;
        epoll.add(wake.as_raw_fd(), KEY_CONTROL)?;
        epoll.add(timer.raw(), KEY_TIMER)?;
        Ok(Engine {
            epoll,
            timer,
            timer_armed_at: 0,
            wake,
            inbox,
            pool: Pool::new(config.pool_slots),
            spin_nanos: config.spin_nanos,
            hash_key: config.hash_key,
            realtime_offset: sys::realtime_offset_nanos(),
            ports: Vec::new(),
            links: Vec::new(),
            switches: Vec::new(),
            egress: Vec::with_capacity(64),
            fanout: Vec::with_capacity(64),
            drain: vec![0u8; crate::pool::SLOT_SIZE],
            dirty_switches: Vec::with_capacity(16),
        })
    }

    fn run(&mut self) -> io::Result<()> {
        sys::set_timer_slack_ns(1);
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            let now = sys::now_nanos();
            let timeout = match self.next_deadline() {
                None => -1,
                Some(at) if at <= now + self.spin_nanos => 0,
                Some(at) => {
                    let wake_at = at - self.spin_nanos;
                    if wake_at != self.timer_armed_at {
                        self.timer.arm_at(wake_at)?;
                        self.timer_armed_at = wake_at;
                    }
                    -1
                }
            };
            let n = self.epoll.wait(&mut events, timeout)?;
            for event in &events[..n] {
                match Wake::from_key(event.u64) {
                    Wake::Control => {
                        sys::eventfd_clear(self.wake.as_raw_fd());
                        if self.handle_commands() {
                            return Ok(());
                        }
                    }
                    Wake::Timer => {
                        sys::eventfd_clear(self.timer.raw());
                        self.timer_armed_at = 0;
                    }
                    Wake::Port(id) => self.handle_port_readable(id),
                }
            }
            self.poll_egress(sys::now());
            while let Some(switch) = self.dirty_switches.pop() {
                self.flush_switch(switch);
            }
        }
    }

    /// The earliest deadline of any link direction or switch, in ns.
    fn next_deadline(&self) -> Option<u64> {
        let links = self.links.iter().flatten().flat_map(|l| l.dirs.iter().filter_map(LinkDirection::poll_at));
        let switches = self.switches.iter().flatten().filter_map(|s| s.switch.switch().poll_at());
        links.chain(switches).min().map(netem::Instant::total_nanos)
    }

    /// Drains the control channel; true on shutdown.
    fn handle_commands(&mut self) -> bool {
        while let Ok(command) = self.inbox.try_recv() {
            match command {
                Command::AddLink { ends, params, reply } => {
                    let _ = reply.send(self.add_link(ends, params));
                }
                Command::RemoveLink { id, reply } => {
                    let _ = reply.send(self.remove_link(id));
                }
                Command::SetParams { id, direction, update, reply } => {
                    let _ = reply.send(self.set_params(id, direction, &update));
                }
                Command::AddSwitch { mode, ports, reply } => {
                    let _ = reply.send(self.add_switch(mode, ports));
                }
                Command::RemoveSwitch { id, reply } => {
                    let _ = reply.send(self.remove_switch(id));
                }
                Command::Stats { reply } => {
                    let _ = reply.send(self.stats());
                }
                Command::Run(job) => job(self),
                Command::Shutdown { reply } => {
                    let _ = reply.send(self.stats());
                    let links: Vec<usize> = (0..self.links.len()).collect();
                    for l in links {
                        let _ = self.remove_link(LinkId(l as u32));
                    }
                    let switches: Vec<usize> = (0..self.switches.len()).collect();
                    for s in switches {
                        let _ = self.remove_switch(SwitchId(s as u32));
                    }
                    return true;
                }
            }
        }
        false
    }

    fn attach_port(&mut self, port: Box<dyn Port>, owner: Owner) -> io::Result<usize> {
        let fd = port.fd();
        let stats = PortStats { name: port.name().to_string(), ..PortStats::default() };
        let entry = PortEntry { io: PortIo::External(port), owner, stats, txq: Vec::with_capacity(BATCH) };
        let id = slab_insert(&mut self.ports, entry);
        if let Err(e) = self.epoll.add(fd, id as u64) {
            self.ports[id] = None;
            return Err(e);
        }
        Ok(id)
    }

    /// Adds a port to switch `sw` that meets side `side` of link `link`;
    /// returns the link side's entry.
    fn attach_junction(&mut self, link: usize, side: usize, sw: SwitchId) -> Result<usize, EngineError> {
        let s = self.switches.get_mut(sw.0 as usize).and_then(Option::as_mut).ok_or(EngineError::NoSuchSwitch(sw))?;
        let number = s.switch.free_port();
        s.switch.add_port(number, "link", &format!("link {link}"))?;
        let entry = |peer, owner, name: String| PortEntry {
            io: PortIo::Junction { peer },
            owner,
            stats: PortStats { name, ..PortStats::default() },
            txq: Vec::new(),
        };
        let link_side = slab_insert(
            &mut self.ports,
            entry(usize::MAX, Owner::Link { link, side }, format!("switch {} port {number}", sw.0)),
        );
        let switch_side = slab_insert(
            &mut self.ports,
            entry(link_side, Owner::Switch { switch: sw.0 as usize, idx: number }, format!("link {link}")),
        );
        if let Some(e) = self.ports[link_side].as_mut() {
            e.io = PortIo::Junction { peer: switch_side };
        }
        if let Some(s) = self.switches[sw.0 as usize].as_mut() {
            s.set_slot(number, switch_side);
        }
        Ok(link_side)
    }

    /// Removes a port entry (and, for a junction, its other entry and the
    /// switch port or link end it stood for) and returns its totals. The
    /// caller forgets `id` in its owner.
    fn detach_port(&mut self, id: usize) -> PortStats {
        let Some(entry) = self.ports[id].take() else { return PortStats::default() };
        match &entry.io {
            PortIo::External(port) => {
                let _ = self.epoll.delete(port.fd());
            }
            PortIo::Junction { peer } => {
                if let Some(other) = self.ports.get_mut(*peer).and_then(Option::take) {
                    self.forget(other.owner);
                }
            }
        }
        for slot in &entry.txq {
            self.pool.release(*slot);
        }
        entry.stats
    }

    /// Clears an owner's reference to a removed port entry.
    fn forget(&mut self, owner: Owner) {
        match owner {
            Owner::Link { link, side } => {
                if let Some(l) = self.links.get_mut(link).and_then(Option::as_mut) {
                    l.ports[side] = usize::MAX;
                }
            }
            Owner::Switch { switch, idx } => {
                if let Some(s) = self.switches.get_mut(switch).and_then(Option::as_mut) {
                    let _ = s.switch.remove_port(idx);
                    if let Some(slot) = s.ports.get_mut(usize::from(idx).wrapping_sub(1)) {
                        *slot = usize::MAX;
                    }
                }
            }
        }
    }

    fn add_switch_port(&mut self, id: SwitchId, port: Box<dyn Port>) -> Result<u16, EngineError> {
        let s = self.switches.get_mut(id.0 as usize).and_then(Option::as_mut).ok_or(EngineError::NoSuchSwitch(id))?;
        let number = s.switch.free_port();
        s.switch.add_port(number, "dataplane", port.name())?;
        match self.attach_port(port, Owner::Switch { switch: id.0 as usize, idx: number }) {
            Ok(slot) => {
                if let Some(s) = self.switches[id.0 as usize].as_mut() {
                    s.set_slot(number, slot);
                }
                Ok(number)
            }
            Err(e) => {
                self.forget(Owner::Switch { switch: id.0 as usize, idx: number });
                Err(e.into())
            }
        }
    }

    fn remove_switch_port(&mut self, id: SwitchId, number: u16) -> Result<PortStats, EngineError> {
        let s = self.switches.get(id.0 as usize).and_then(Option::as_ref).ok_or(EngineError::NoSuchSwitch(id))?;
        let slot = s.slot(number).ok_or(EngineError::NoSuchSwitchPort(id, number))?;
        let stats = self.detach_port(slot);
        self.forget(Owner::Switch { switch: id.0 as usize, idx: number });
        Ok(stats)
    }

    fn add_link(&mut self, ends: [LinkEnd; 2], params: [DirectionParams; 2]) -> Result<LinkId, EngineError> {
        let [p_ab, p_ba] = params;
        let segment = [needs_real_frames(&p_ab), needs_real_frames(&p_ba)];
        let dirs = [LinkDirection::new(p_ab)?, LinkDirection::new(p_ba)?];
        let link = slab_insert(
            &mut self.links,
            LinkState { ports: [usize::MAX; 2], dirs, segment, segmented: [0; 2], gso_dropped: [0; 2], tap: None },
        );
        for (side, end) in ends.into_iter().enumerate() {
            let attached = match end {
                LinkEnd::Port(port) => self.attach_port(port, Owner::Link { link, side }).map_err(EngineError::from),
                LinkEnd::Switch(sw) => self.attach_junction(link, side, sw),
            };
            match attached {
                Ok(id) => {
                    if let Some(l) = self.links[link].as_mut() {
                        l.ports[side] = id;
                    }
                }
                Err(e) => {
                    let _ = self.remove_link(LinkId(link as u32));
                    return Err(e);
                }
            }
        }
        Ok(LinkId(link as u32))
    }

    fn link_stats(&self, id: usize) -> Option<LinkStats> {
        let l = self.links.get(id)?.as_ref()?;
        let port = |i: usize| self.ports.get(l.ports[i]).and_then(Option::as_ref).map(|e| e.stats.clone());
        Some(LinkStats {
            id: LinkId(id as u32),
            ports: [port(0).unwrap_or_default(), port(1).unwrap_or_default()],
            params: [l.dirs[0].params().clone(), l.dirs[1].params().clone()],
            counters: [*l.dirs[0].counters(), *l.dirs[1].counters()],
            segmented: l.segmented,
            gso_dropped: l.gso_dropped,
            heap_bytes: l.dirs[0].heap_bytes() + l.dirs[1].heap_bytes(),
        })
    }

    fn remove_link(&mut self, id: LinkId) -> Result<LinkStats, EngineError> {
        let idx = id.0 as usize;
        let mut stats = self.link_stats(idx).ok_or(EngineError::NoSuchLink(id))?;
        let Some(mut link) = self.links[idx].take() else { return Err(EngineError::NoSuchLink(id)) };
        // Frames still in flight are dropped: give their slots back.
        let far_future = netem::Instant::from_nanos(u64::MAX);
        for dir in &mut link.dirs {
            while let Some(d) = dir.poll_egress(far_future) {
                self.pool.release(d.token.0 as u32);
            }
        }
        for (side, port) in link.ports.into_iter().enumerate() {
            if port != usize::MAX {
                stats.ports[side] = self.detach_port(port);
            }
        }
        Ok(stats)
    }

    fn set_params(&mut self, id: LinkId, direction: Direction, update: &ParamsUpdate) -> Result<(), EngineError> {
        let link = self.link_mut(id).ok_or(EngineError::NoSuchLink(id))?;
        let d = match direction {
            Direction::AToB => 0,
            Direction::BToA => 1,
        };
        Ok(link.apply_params(d, sys::now(), update)?)
    }

    /// A link, to inspect or change it.
    pub(crate) fn link_mut(&mut self, id: LinkId) -> Option<&mut LinkState> {
        self.links.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// A switch's VDE view, with its clock set to now for MAC table ages.
    pub(crate) fn switch_mut(&mut self, id: SwitchId) -> Option<&mut ManagedSwitch> {
        let s = self.switches.get_mut(id.0 as usize).and_then(Option::as_mut)?;
        s.switch.set_now(sys::now());
        Some(&mut s.switch)
    }

    fn add_switch(&mut self, mode: SwitchMode, ports: Vec<Box<dyn Port>>) -> Result<SwitchId, EngineError> {
        let mut config = SwitchConfig::standard(self.hash_key);
        config.mode = mode;
        // VDE numbers ports from 1 and reports `numports` as one past the last.
        let numports = u16::try_from(ports.len() + 1).map_err(|_| io::Error::other("too many switch ports"))?;
        let mut switch = ManagedSwitch::with_config(numports, config);
        for (i, port) in ports.iter().enumerate() {
            switch.add_port(i as u16 + 1, "dataplane", port.name())?;
        }
        let sw = slab_insert(&mut self.switches, SwitchState { switch, ports: Vec::new() });
        for (i, port) in ports.into_iter().enumerate() {
            let number = i as u16 + 1;
            match self.attach_port(port, Owner::Switch { switch: sw, idx: number }) {
                Ok(id) => {
                    if let Some(s) = self.switches[sw].as_mut() {
                        s.set_slot(number, id);
                    }
                }
                Err(e) => {
                    let _ = self.remove_switch(SwitchId(sw as u32));
                    return Err(e.into());
                }
            }
        }
        Ok(SwitchId(sw as u32))
    }

    fn switch_stats(&self, id: usize) -> Option<SwitchStats> {
        let s = self.switches.get(id)?.as_ref()?;
        let ports = s
            .numbered()
            .map(|(n, p)| (n, self.ports.get(p).and_then(Option::as_ref).map(|e| e.stats.clone()).unwrap_or_default()))
            .collect();
        Some(SwitchStats {
            id: SwitchId(id as u32),
            ports,
            counters: *s.switch.switch().counters(),
            heap_bytes: s.switch.switch().heap_bytes(),
        })
    }

    fn remove_switch(&mut self, id: SwitchId) -> Result<SwitchStats, EngineError> {
        let idx = id.0 as usize;
        let mut stats = self.switch_stats(idx).ok_or(EngineError::NoSuchSwitch(id))?;
        let Some(sw) = self.switches[idx].take() else { return Err(EngineError::NoSuchSwitch(id)) };
        for ((_, port_stats), (_, slot)) in stats.ports.iter_mut().zip(sw.numbered()) {
            *port_stats = self.detach_port(slot);
        }
        Ok(stats)
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            links: (0..self.links.len()).filter_map(|i| self.link_stats(i)).collect(),
            switches: (0..self.switches.len()).filter_map(|i| self.switch_stats(i)).collect(),
            pool_slots: self.pool.capacity(),
            pool_in_use: self.pool.capacity() - self.pool.n_free(),
        }
    }

    /// Receives a few batches from a readable port and passes each frame on.
    fn handle_port_readable(&mut self, id: usize) {
        for _ in 0..ROUNDS_PER_WAKE {
            let Some(entry) = self.ports.get_mut(id).and_then(Option::as_mut) else { return };
            let mut slots = [0u32; BATCH];
            let mut n_slots = 0;
            while n_slots < BATCH {
                let Some(slot) = self.pool.alloc() else { break };
                slots[n_slots] = slot;
                n_slots += 1;
            }
            if n_slots == 0 {
                // No buffer left: drain one frame so a level-triggered fd
                // does not spin, and count it lost.
                let mut meta = [FrameMeta::default()];
                let mut bufs = [&mut self.drain[..]];
                let PortIo::External(port) = &mut entry.io else { return };
                if matches!(port.recv_batch(&mut bufs, &mut meta), Ok(1)) {
                    entry.stats.rx_no_buffer += 1;
                }
                return;
            }
            let mut metas = [FrameMeta::default(); BATCH];
            let PortIo::External(port) = &mut entry.io else { return };
            let received = self
                .pool
                .with_bufs(&slots[..n_slots], |bufs| port.recv_batch(bufs, &mut metas[..n_slots]))
                .unwrap_or(0);
            for slot in &slots[received..n_slots] {
                self.pool.release(*slot);
            }
            let owner = entry.owner;
            for (slot, meta) in slots[..received].iter().zip(&metas[..received]) {
                entry.stats.rx.frames += 1;
                entry.stats.rx.bytes += meta.len as u64;
                *self.pool.meta_mut(*slot) = *meta;
            }
            let now = sys::now();
            for slot in &slots[..received] {
                match owner {
                    Owner::Link { link, side } => self.link_ingress(link, side, *slot, now),
                    Owner::Switch { switch, idx } => self.switch_ingress(switch, idx, *slot, now),
                }
            }
            if let Owner::Switch { switch, .. } = owner {
                self.flush_switch(switch);
            }
            if received < n_slots {
                return;
            }
        }
    }

    /// Hands one received frame to the link direction leaving `side`.
    fn link_ingress(&mut self, link: usize, side: usize, slot: u32, now: netem::Instant) {
        let Some(l) = self.links.get_mut(link).and_then(Option::as_mut) else {
            self.pool.release(slot);
            return;
        };
        let meta = *self.pool.meta(slot);
        if !(meta.offload.is_gso() && l.segment[side]) {
            admit(&mut self.pool, &mut l.dirs[side], slot, now);
            return;
        }
        let plan = match gso::plan(self.pool.frame(slot), &meta.offload) {
            Ok(plan) => plan,
            Err(_) => {
                l.gso_dropped[side] += 1;
                self.pool.release(slot);
                return;
            }
        };
        l.segmented[side] += 1;
        for i in 0..plan.count() {
            let Some(seg) = self.pool.alloc() else {
                if let Some(e) = self.ports.get_mut(l.ports[side]).and_then(Option::as_mut) {
                    e.stats.rx_no_buffer += 1;
                }
                continue;
            };
            let (len, offload) = self.pool.with_bufs(&[slot, seg], |bufs| {
                let [src, dst] = bufs else { unreachable!("two slots were asked for") };
                gso::write_segment(&src[..meta.len], &plan, i, dst)
            });
            *self.pool.meta_mut(seg) = FrameMeta { len, offload };
            admit(&mut self.pool, &mut l.dirs[side], seg, now);
        }
        self.pool.release(slot);
    }

    /// Decides where a frame received on switch port `idx` goes and queues
    /// it on those ports.
    fn switch_ingress(&mut self, switch: usize, idx: u16, slot: u32, now: netem::Instant) {
        let Some(s) = self.switches.get_mut(switch).and_then(Option::as_mut) else {
            self.pool.release(slot);
            return;
        };
        self.egress.clear();
        if let Forwarding::Forward(egress) =
            s.switch.switch_mut().handle_frame(now, PortIdx(idx), self.pool.frame(slot))
        {
            self.egress.extend_from_slice(egress);
        }
        self.fanout.clear();
        self.fanout.extend(self.egress.iter().filter_map(|e| s.slot(e.port.0).map(|p| (p, e.tagging))));
        for k in 0..self.fanout.len() {
            let (port_id, tagging) = self.fanout[k];
            let meta = *self.pool.meta(slot);
            let tagged = self.pool.frame(slot).get(12..14) == Some(&[0x81, 0x00][..]);
            let out = match tagging {
                Tagging::AsReceived => slot,
                Tagging::Untagged if !tagged => slot,
                _ => {
                    // The tag changes: write a rewritten copy, moving the
                    // offload offsets with the headers.
                    let Some(copy) = self.pool.alloc() else { continue };
                    let written = self.pool.with_bufs(&[slot, copy], |bufs| {
                        let [src, dst] = bufs else { unreachable!("two slots were asked for") };
                        netem::rewrite_frame(&src[..meta.len], tagging, dst)
                    });
                    let Ok(len) = written else {
                        self.pool.release(copy);
                        continue;
                    };
                    let mut offload = meta.offload;
                    let shift = |v: u16| (i64::from(v) + len as i64 - meta.len as i64).max(0) as u16;
                    if offload.flags & NEEDS_CSUM != 0 {
                        offload.csum_start = shift(offload.csum_start);
                    }
                    if offload.hdr_len != 0 {
                        offload.hdr_len = shift(offload.hdr_len);
                    }
                    *self.pool.meta_mut(copy) = FrameMeta { len, offload };
                    self.queue_tx(port_id, copy, now);
                    continue;
                }
            };
            self.pool.retain(out);
            self.queue_tx(port_id, out, now);
        }
        self.pool.release(slot);
    }

    /// Sends what a switch's ports have queued.
    fn flush_switch(&mut self, switch: usize) {
        let n = self.switches.get(switch).and_then(Option::as_ref).map_or(0, |s| s.ports.len());
        for i in 0..n {
            if let Some(port) = self.switches[switch].as_ref().map(|s| s.ports[i]) {
                self.flush_port(port);
            }
        }
    }

    /// Queues a slot (one reference) for sending on a port; sends when the
    /// batch is full. A junction hands the frame to its other side at once.
    fn queue_tx(&mut self, port: usize, slot: u32, now: netem::Instant) {
        let Some(entry) = self.ports.get_mut(port).and_then(Option::as_mut) else {
            self.pool.release(slot);
            return;
        };
        if let PortIo::Junction { peer } = entry.io {
            let len = self.pool.meta(slot).len as u64;
            entry.stats.tx.frames += 1;
            entry.stats.tx.bytes += len;
            let Some(other) = self.ports.get_mut(peer).and_then(Option::as_mut) else {
                self.pool.release(slot);
                return;
            };
            other.stats.rx.frames += 1;
            other.stats.rx.bytes += len;
            match other.owner {
                Owner::Link { link, side } => self.link_ingress(link, side, slot, now),
                Owner::Switch { switch, idx } => {
                    self.switch_ingress(switch, idx, slot, now);
                    if !self.dirty_switches.contains(&switch) {
                        self.dirty_switches.push(switch);
                    }
                }
            }
            return;
        }
        entry.txq.push(slot);
        if entry.txq.len() >= BATCH {
            self.flush_port(port);
        }
    }

    /// Sends a port's queued frames in one batch and frees their slots.
    fn flush_port(&mut self, port: usize) {
        let Some(entry) = self.ports.get_mut(port).and_then(Option::as_mut) else { return };
        if entry.txq.is_empty() {
            return;
        }
        let PortIo::External(out) = &mut entry.io else { return };
        let n = entry.txq.len().min(BATCH);
        let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
        let mut metas = [FrameMeta::default(); BATCH];
        for (k, slot) in entry.txq[..n].iter().enumerate() {
            frames[k] = self.pool.frame(*slot);
            metas[k] = *self.pool.meta(*slot);
        }
        let sent = out.send_batch(&frames[..n], &metas[..n]).unwrap_or(0);
        entry.stats.tx.frames += sent as u64;
        entry.stats.tx.bytes += metas[..sent].iter().map(|m| m.len as u64).sum::<u64>();
        entry.stats.tx_dropped += (n - sent) as u64;
        for slot in entry.txq.drain(..n) {
            self.pool.release(slot);
        }
    }

    /// Sends every departure due at `now` and fires switch timers.
    fn poll_egress(&mut self, now: netem::Instant) {
        for link in 0..self.links.len() {
            for side in 0..2 {
                while let Some(l) = self.links[link].as_mut() {
                    if l.dirs[side].poll_at().is_none_or(|at| at > now) {
                        break;
                    }
                    let Some(dep) = l.dirs[side].poll_egress(now) else { break };
                    let out_port = l.ports[1 - side];
                    let mut slot = dep.token.0 as u32;
                    if let Some(corruption) = dep.corruption {
                        // A duplicate may share the slot: damage a copy.
                        let Some(copy) = self.pool.alloc() else {
                            self.pool.release(slot);
                            continue;
                        };
                        let mut meta = *self.pool.meta(slot);
                        self.pool.with_bufs(&[slot, copy], |bufs| {
                            let [src, dst] = bufs else { unreachable!("two slots were asked for") };
                            dst[..meta.len].copy_from_slice(&src[..meta.len]);
                            gso::complete_checksum(&mut dst[..meta.len], &mut meta.offload);
                            corruption.apply(&mut dst[..meta.len]);
                        });
                        *self.pool.meta_mut(copy) = meta;
                        self.pool.release(slot);
                        slot = copy;
                    }
                    if let Some(tap) = self.links[link].as_mut().and_then(|l| l.tap.as_mut()) {
                        tap.handle_frame(now.total_nanos() + self.realtime_offset, side as u32, self.pool.frame(slot));
                    }
                    self.queue_tx(out_port, slot, now);
                }
            }
            if let Some(l) = self.links[link].as_mut()
                && l.tap.as_ref().is_some_and(Tap::is_closed)
            {
                l.tap = None;
            }
            if let Some(l) = self.links[link].as_ref() {
                let ports = l.ports;
                self.flush_port(ports[0]);
                self.flush_port(ports[1]);
            }
        }
        for s in self.switches.iter_mut().flatten() {
            if s.switch.switch().poll_at().is_some_and(|at| at <= now) {
                s.switch.switch_mut().handle_timeout(now);
            }
        }
    }
}

/// Hands a frame in `slot` to a direction and keeps the slot's references
/// in step with the copies scheduled.
fn admit(pool: &mut Pool, dir: &mut LinkDirection, slot: u32, now: netem::Instant) {
    let len = pool.meta(slot).len;
    let verdict = dir.handle_frame(now, Token(u64::from(slot)), len);
    match verdict.fate {
        Fate::Dropped(_) => pool.release(slot),
        Fate::Queued { duplicate: netem::Duplicate::Queued(_), .. } => pool.retain(slot),
        Fate::Queued { .. } => {}
    }
}

fn write_count(f: &mut fmt::Formatter<'_>, label: &str, c: &Count) -> fmt::Result {
    write!(f, " {label}={}/{}B", c.frames, c.bytes)
}

impl fmt::Display for LinkStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "link {} <-> {} (seed {})", self.ports[0].name, self.ports[1].name, self.params[0].seed)?;
        for (d, label) in [(0, "A->B"), (1, "B->A")] {
            let c = &self.counters[d];
            write!(f, "  {label} {}->{}:", self.ports[d].name, self.ports[1 - d].name)?;
            write_count(f, "in", &c.received)?;
            write_count(f, "out", &c.sent)?;
            write_count(f, "lost", &c.dropped_loss)?;
            write_count(f, "queue-drop", &c.dropped_queue)?;
            write_count(f, "mtu-drop", &c.dropped_mtu)?;
            write_count(f, "dup", &c.duplicated)?;
            write_count(f, "corrupt", &c.corrupted)?;
            writeln!(
                f,
                " segmented={} gso-drop={} tx-refused={}",
                self.segmented[d],
                self.gso_dropped[d],
                self.ports[1 - d].tx_dropped
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for SwitchStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        writeln!(
            f,
            "switch {}: learned={} flooded={} dropped_vlan={} mld={} by_group={}",
            self.id.0, c.learned, c.flooded, c.dropped_vlan, c.mld_messages, c.group_forwarded
        )?;
        for (number, p) in &self.ports {
            write!(f, "  port {number} {}:", p.name)?;
            write_count(f, "rx", &p.rx)?;
            write_count(f, "tx", &p.tx)?;
            writeln!(f, " tx-refused={} no-buffer={}", p.tx_dropped, p.rx_no_buffer)?;
        }
        Ok(())
    }
}

impl fmt::Display for EngineStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.links {
            write!(f, "{l}")?;
        }
        for s in &self.switches {
            write!(f, "{s}")?;
        }
        writeln!(f, "pool: {} of {} slots in use", self.pool_in_use, self.pool_slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::{Offload, QueuePort};

    fn frame(src: u8, dst: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    fn wait_for(mut done: impl FnMut() -> bool) {
        let start = std::time::Instant::now();
        while !done() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "timed out");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_link_delays_each_direction_and_a_live_change_keeps_frames() {
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let (a, ha) = QueuePort::new("a").expect("port");
        let (b, hb) = QueuePort::new("b").expect("port");
        let mut ab = DirectionParams::ideal(1);
        ab.delay_ms = 20.0;
        let id = engine.add_link(Box::new(a), Box::new(b), ab, DirectionParams::ideal(2)).expect("link");
        let start = std::time::Instant::now();
        ha.inject(&frame(1, 2));
        // Lengthen the delay while the first frame is in flight: it keeps
        // its schedule, the next one gets the new delay.
        engine
            .set_link_params(id, Direction::AToB, ParamsUpdate { delay_ms: Some(40.0), ..ParamsUpdate::default() })
            .expect("update");
        ha.inject(&frame(1, 3));
        hb.inject(&frame(2, 1));
        let mut at_b = Vec::new();
        wait_for(|| {
            at_b.extend(hb.drain_sent());
            at_b.len() == 2
        });
        assert!(start.elapsed() >= std::time::Duration::from_millis(40));
        assert_eq!(at_b[0].0, frame(1, 2));
        assert_eq!(at_b[1].0, frame(1, 3));
        assert_eq!(ha.drain_sent(), vec![(frame(2, 1), Offload::NONE)]);
        let stats = engine.shutdown().expect("stats");
        assert_eq!(stats.links[0].counters[0].sent.frames, 2);
        assert_eq!(stats.pool_in_use, 0);
    }

    #[test]
    fn a_hub_floods_and_a_switch_learns() {
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let (ports, handles): (Vec<_>, Vec<_>) =
            (0..3).map(|i| QueuePort::new(&format!("p{i}")).expect("port")).unzip();
        let ports: Vec<Box<dyn Port>> = ports.into_iter().map(|p| Box::new(p) as Box<dyn Port>).collect();
        engine.add_switch(SwitchMode::Learning, ports).expect("switch");
        handles[0].inject(&frame(1, 2));
        wait_for(|| !handles[2].drain_sent().is_empty());
        assert_eq!(handles[1].drain_sent().len(), 1, "unknown destination is flooded");
        handles[1].inject(&frame(2, 1));
        wait_for(|| !handles[0].drain_sent().is_empty());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(handles[2].drain_sent().is_empty(), "learnt destination is not flooded");
        let stats = engine.stats().expect("stats");
        assert_eq!(stats.switches[0].counters.learned, 2);
    }

    #[test]
    fn a_shaping_link_segments_super_frames() {
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let (a, ha) = QueuePort::new("a").expect("port");
        let (b, hb) = QueuePort::new("b").expect("port");
        let mut ab = DirectionParams::ideal(1);
        ab.bandwidth_kbit = 1_000_000;
        engine.add_link(Box::new(a), Box::new(b), ab, DirectionParams::ideal(2)).expect("link");
        let mut f = vec![0u8; 54 + 4000];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[46] = 5 << 4;
        ha.inject_with(&f, Offload { flags: NEEDS_CSUM, gso_type: 1, gso_size: 1448, ..Offload::NONE });
        let mut out = Vec::new();
        wait_for(|| {
            out.extend(hb.drain_sent());
            out.len() == 3
        });
        assert_eq!(out.iter().map(|(f, _)| f.len()).collect::<Vec<_>>(), [1502, 1502, 54 + 1104]);
        assert!(out.iter().all(|(_, o)| !o.is_gso() && o.flags == NEEDS_CSUM));
    }

    #[test]
    fn a_capture_records_departures_of_both_directions() {
        use capture::{Capture, CaptureConfig, CaptureSetup, Interface};
        use pcap_file::pcapng::{Block, PcapNgReader};

        let dir = tempfile::tempdir().expect("tempdir");
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let (a, ha) = QueuePort::new("a").expect("port");
        let (b, hb) = QueuePort::new("b").expect("port");
        let mut ab = DirectionParams::ideal(1);
        ab.lossratio_percent = 100.0;
        let id = engine.add_link(Box::new(a), Box::new(b), ab, DirectionParams::ideal(2)).expect("link");
        let setup =
            CaptureSetup::new(vec![Interface::named("a->b"), Interface::named("b->a")], dir.path().join("ring"));
        let config = CaptureConfig { enabled: true, ..CaptureConfig::tomato_default() };
        let (capture, tap) = Capture::start(setup, config).expect("capture");
        engine.set_link_capture(id, Some(tap)).expect("tap");
        // A->B loses everything, so only what B sends is captured, as it
        // leaves the link towards A.
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        for i in 0..3 {
            ha.inject(&frame(1, 2));
            hb.inject(&frame(2, 10 + i));
        }
        let mut at_a = 0;
        wait_for(|| {
            at_a += ha.drain_sent().len();
            at_a == 3
        });
        assert!(capture.sync(std::time::Duration::from_secs(5)));
        let out = dir.path().join("merged.pcapng");
        capture.merge(None, &out).expect("merge");
        let mut reader = PcapNgReader::new(std::fs::File::open(&out).expect("open")).expect("pcapng");
        let mut packets = Vec::new();
        let mut names = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.expect("block") {
                Block::EnhancedPacket(p) => packets.push((p.interface_id, p.timestamp.as_nanos(), p.data.to_vec())),
                Block::InterfaceDescription(i) => names.push(format!("{:?}", i.options)),
                _ => {}
            }
        }
        assert_eq!(names.len(), 2);
        assert_eq!(packets.len(), 3);
        assert!(packets.iter().all(|(iface, _, _)| *iface == 1));
        assert!(packets.iter().all(|(_, stamp, _)| *stamp >= before), "stamps are wall-clock times");
        assert_eq!(packets.iter().map(|(_, _, data)| data[5]).collect::<Vec<_>>(), [10, 11, 12]);
        // Closing the capture lets the engine drop its tap.
        capture.close().expect("close");
        hb.inject(&frame(2, 20));
        wait_for(|| !ha.drain_sent().is_empty());
    }

    #[test]
    fn links_meet_a_switch_at_junctions() {
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let sw = engine.add_switch(SwitchMode::Learning, Vec::new()).expect("switch");
        let (a, ha) = QueuePort::new("a").expect("port");
        let (b, hb) = QueuePort::new("b").expect("port");
        let (c, hc) = QueuePort::new("c").expect("port");
        let mut slow = DirectionParams::ideal(1);
        slow.delay_ms = 20.0;
        let la = engine
            .add_link_ends(LinkEnd::Port(Box::new(a)), LinkEnd::Switch(sw), slow, DirectionParams::ideal(2))
            .expect("link a");
        engine
            .add_link_ends(
                LinkEnd::Port(Box::new(b)),
                LinkEnd::Switch(sw),
                DirectionParams::ideal(3),
                DirectionParams::ideal(4),
            )
            .expect("link b");
        assert_eq!(engine.add_switch_port(sw, Box::new(c)).expect("port c"), 3);
        let start = std::time::Instant::now();
        ha.inject(&frame(1, 0xff));
        let mut at_b = Vec::new();
        wait_for(|| {
            at_b.extend(hb.drain_sent());
            !at_b.is_empty()
        });
        assert!(start.elapsed() >= std::time::Duration::from_millis(20), "a's link delays before the switch");
        wait_for(|| !hc.drain_sent().is_empty());
        // b answers a: learnt, so only a's link gets it, with no delay B->A.
        hb.inject(&frame(2, 1));
        wait_for(|| !ha.drain_sent().is_empty());
        assert!(hc.drain_sent().is_empty());
        let stats = engine.stats().expect("stats");
        let numbers: Vec<u16> = stats.switches[0].ports.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(stats.switches[0].ports[0].1.name, "link 0");
        assert_eq!(stats.links[0].ports[1].name, "switch 0 port 1");
        assert_eq!(stats.switches[0].ports[0].1.rx.frames, 1);
        // Removing a's link frees switch port 1; the next port takes it.
        engine.remove_link(la).expect("removed");
        let (d, _hd) = QueuePort::new("d").expect("port");
        assert_eq!(engine.add_switch_port(sw, Box::new(d)).expect("port d"), 1);
        let removed = engine.remove_switch_port(sw, 3).expect("port c removed");
        assert_eq!(removed.name, "c");
        assert!(matches!(engine.remove_switch_port(sw, 3), Err(EngineError::NoSuchSwitchPort(_, 3))));
        let stats = engine.shutdown().expect("stats");
        assert_eq!(stats.pool_in_use, 0);
    }
}
