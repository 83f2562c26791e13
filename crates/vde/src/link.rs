//! The `wirefilter` console: commands, value syntax, and the mapping onto
//! `netem` parameters.
//!
//! A value is `[LR|RL]<v>[+<plus>][K|M|G][U|N][[node]]`: no prefix sets
//! both directions, `K/M/G` multiply by 2^10/2^20/2^30, `+plus` makes the
//! value vary per packet, uniformly in `v ± plus` (`U`, the default) or
//! normally with σ = plus/3 (`N`). `[0]` names the only Markov node we have.
//! Setting a value replaces value, spread and distribution together, as in
//! wirefilter (`delay 20` clears an earlier jitter).
//!
//! Mapping onto [`netem::DirectionParams`] (LR is the link's `*_from`
//! direction, from the first element to the second; RL is `*_to`):
//! `loss` → `lossratio_percent`, `lostburst` → `lossburst_frames`, `delay`
//! → `delay_ms` with the spread as `jitter_ms` (uniform: plus; normal:
//! plus/3, netem's σ) and `distribution`, `dup` → `duplicate_percent`,
//! `bandwidth` and `speed` (bytes/s) → `bandwidth_kbit` (rounded to whole
//! kbit/s), `noise` → `noise_bits_per_mbyte`, `mtu` → `mtu`, `chanbufsize`
//! → `queue_bytes`. Only `delay` may have a spread; netem draws the other
//! values once, so `loss 1+0.5` is refused with EOPNOTSUPP. Values are
//! checked with netem's own validation before anything changes, and a
//! two-direction change is checked for both directions first.

use netem::{DirectionParams, Distribution, ParamsUpdate};

use crate::reply::{Errno, Outcome, Reply, TargetError};
use crate::text::{c_g, split_line};

/// The banner sent when a client connects.
pub const BANNER: &str =
    "\nVDE wirefilter V.2.3.2 (ToMaTo-rs)\n(C) ToMaTo-rs, a VDE-compatible management console - AGPL-3.0-or-later\n";
/// The prompt sent after every reply.
pub const PROMPT: &str = "\nVDEwf$ ";

/// One direction of a link, in wirefilter's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Left to right: from the connection's first element (`*_from`).
    LeftRight,
    /// Right to left: towards the first element (`*_to`).
    RightLeft,
}

/// Which directions a value applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dirs {
    /// No prefix: both.
    Both,
    /// `LR` or `RL`.
    One(Direction),
}

impl Dirs {
    fn list(self) -> &'static [Direction] {
        match self {
            Dirs::Both => &[Direction::LeftRight, Direction::RightLeft],
            Dirs::One(Direction::LeftRight) => &[Direction::LeftRight],
            Dirs::One(Direction::RightLeft) => &[Direction::RightLeft],
        }
    }
}

/// A wirefilter parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkParam {
    /// `loss`, percent.
    Loss,
    /// `lostburst`, mean burst length in frames.
    LostBurst,
    /// `delay`, ms.
    Delay,
    /// `dup`, percent.
    Dup,
    /// `bandwidth` (`band`), bytes/s.
    Bandwidth,
    /// `speed`, bytes/s.
    Speed,
    /// `noise`, damaged bits per MiB.
    Noise,
    /// `mtu`, bytes.
    Mtu,
    /// `chanbufsize` (`capacity`), bytes.
    ChanBufSize,
}

/// The spread's distribution letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// `U`: uniform in `v ± plus`.
    Uniform,
    /// `N`: normal, σ = plus/3.
    Normal,
    /// `P` (ours): netem's Pareto, jitter = plus.
    Pareto,
    /// `Q` (ours): netem's Pareto-normal mix, jitter = plus.
    Paretonormal,
}

/// A parsed value: `v`, its spread and distribution, units applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireValue {
    /// The value.
    pub value: f64,
    /// The spread (0 = fixed).
    pub plus: f64,
    /// How the spread is drawn.
    pub algo: Algo,
}

/// One `wirefilter` management command.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkCommand {
    /// `help`.
    Help,
    /// `showinfo [0]`.
    ShowInfo,
    /// `logout`.
    Logout,
    /// `shutdown`: refused, the testbed owns the link.
    Shutdown,
    /// `fifo 0|1`.
    Fifo(bool),
    /// `loss`, `delay`, ... with a value.
    Set {
        /// Which parameter.
        param: LinkParam,
        /// Which directions.
        dirs: Dirs,
        /// The new value.
        value: WireValue,
    },
}

/// Queue state of one direction, for `showinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// Bytes waiting in the delay queue.
    pub queued_bytes: u64,
    /// Frames waiting in the delay queue.
    pub queued_frames: u64,
}

/// What the console needs from a link. The data plane implements it;
/// [`crate::memory::MemoryLink`] does for tests.
pub trait LinkTarget {
    /// The parameters in force in `dir`.
    fn params(&self, dir: Direction) -> DirectionParams;
    /// The queue state of `dir`.
    fn status(&self, dir: Direction) -> LinkStatus;
    /// Applies a change to `dir`; the console has validated it with
    /// [`DirectionParams::validate`].
    fn apply(&mut self, dir: Direction, update: &ParamsUpdate) -> Result<(), TargetError>;
}

/// A line that is not a valid command: its errno, and whether the command
/// prints a data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// Why.
    pub errno: Errno,
    /// Whether an empty data block precedes the status.
    pub data: bool,
}

const HELP: &[(&str, &str)] = &[
    ("help", "print a summary of mgmt commands"),
    ("showinfo", "show status and parameter values"),
    ("loss", "set loss percentage"),
    ("lostburst", "mean length of lost packet bursts"),
    ("delay", "set delay ms"),
    ("dup", "set dup packet percentage"),
    ("bandwidth", "set channel bandwidth bytes/sec"),
    ("speed", "set interface speed bytes/sec (same as bandwidth here)"),
    ("noise", "set noise factor bits/Mbyte"),
    ("mtu", "set channel MTU (bytes)"),
    ("chanbufsize", "set channel buffer size (bytes)"),
    ("fifo", "set channel fifoness (only 1 unless reordering is on)"),
    ("shutdown", "shut the channel down (refused: the testbed owns it)"),
    ("logout", "log out from this mgmt session"),
];

/// Parses one line; `Ok(None)` for an empty or comment line.
pub fn parse(line: &str) -> Result<Option<LinkCommand>, ParseError> {
    let Some((word, rest)) = split_line(line) else {
        return Ok(None);
    };
    let data = matches!(word, "help" | "showinfo");
    parse_command(word, rest).map(Some).map_err(|errno| ParseError { errno, data })
}

fn parse_command(word: &str, rest: &str) -> Result<LinkCommand, Errno> {
    let param = match word {
        "help" => return Ok(LinkCommand::Help),
        // wirefilter's `showinfo N` shows Markov node N; we have node 0 only.
        "showinfo" => {
            return if rest.is_empty() || rest == "0" { Ok(LinkCommand::ShowInfo) } else { Err(Errno::Inval) };
        }
        "logout" => return Ok(LinkCommand::Logout),
        "shutdown" => return Ok(LinkCommand::Shutdown),
        "fifo" => {
            return match rest {
                "0" => Ok(LinkCommand::Fifo(false)),
                "1" => Ok(LinkCommand::Fifo(true)),
                _ => Err(Errno::Inval),
            };
        }
        "loss" => LinkParam::Loss,
        "lostburst" => LinkParam::LostBurst,
        "delay" => LinkParam::Delay,
        "dup" => LinkParam::Dup,
        "bandwidth" | "band" => LinkParam::Bandwidth,
        "speed" => LinkParam::Speed,
        "noise" => LinkParam::Noise,
        "mtu" => LinkParam::Mtu,
        "chanbufsize" | "capacity" => LinkParam::ChanBufSize,
        _ => return Err(Errno::NoSys),
    };
    let (dirs, value) = parse_value(rest)?;
    Ok(LinkCommand::Set { param, dirs, value })
}

/// Parses wirefilter's value syntax (see the module docs).
pub fn parse_value(text: &str) -> Result<(Dirs, WireValue), Errno> {
    let mut s = text.trim();
    if let Some(inner) = s.strip_suffix(']') {
        let (head, node) = inner.rsplit_once('[').ok_or(Errno::Inval)?;
        if node.trim() != "0" {
            return Err(Errno::Inval);
        }
        s = head.trim_end();
    }
    let mut algo = Algo::Uniform;
    if let Some(last) = s.chars().last() {
        let found = match last.to_ascii_uppercase() {
            'U' => Some(Algo::Uniform),
            'N' => Some(Algo::Normal),
            'P' => Some(Algo::Pareto),
            'Q' => Some(Algo::Paretonormal),
            _ => None,
        };
        if let Some(found) = found {
            algo = found;
            s = s[..s.len() - 1].trim_end();
        }
    }
    let mut mult = 1.0;
    if let Some(last) = s.chars().last() {
        let found = match last.to_ascii_uppercase() {
            'K' => Some(1024.0),
            'M' => Some(1_048_576.0),
            'G' => Some(1_073_741_824.0),
            _ => None,
        };
        if let Some(found) = found {
            mult = found;
            s = &s[..s.len() - 1];
        }
    }
    let (dirs, s) = if let Some(rest) = s.strip_prefix("LR") {
        (Dirs::One(Direction::LeftRight), rest)
    } else if let Some(rest) = s.strip_prefix("RL") {
        (Dirs::One(Direction::RightLeft), rest)
    } else {
        (Dirs::Both, s)
    };
    let s = s.trim();
    // The spread starts at the first '+' that is neither a leading sign nor
    // an exponent's sign (`1e+3`).
    let bytes = s.as_bytes();
    let split = (1..bytes.len()).find(|&i| bytes[i] == b'+' && !matches!(bytes[i - 1], b'e' | b'E'));
    let (value, plus) = match split {
        Some(i) => (number(&s[..i])?, number(&s[i + 1..])?),
        None => (number(s)?, 0.0),
    };
    Ok((dirs, WireValue { value: value * mult, plus: plus * mult, algo }))
}

fn number(text: &str) -> Result<f64, Errno> {
    let text = text.trim();
    // Rust also parses "inf" and "nan"; wirefilter's sscanf would too, but
    // no link can use them.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b".+-eE".contains(&b)) {
        return Err(Errno::Inval);
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or(Errno::Inval)
}

/// The netem update for `param = value`, or why it cannot be expressed.
pub fn to_update(param: LinkParam, value: WireValue) -> Result<ParamsUpdate, Errno> {
    let mut update = ParamsUpdate::default();
    if param == LinkParam::Delay {
        let (jitter, distribution) = match value.algo {
            Algo::Uniform => (value.plus, Distribution::Uniform),
            // wirefilter draws within ±plus with σ = plus/3; netem's σ is
            // the jitter itself.
            Algo::Normal => (value.plus / 3.0, Distribution::Normal),
            Algo::Pareto => (value.plus, Distribution::Pareto),
            Algo::Paretonormal => (value.plus, Distribution::Paretonormal),
        };
        update.delay_ms = Some(value.value);
        update.jitter_ms = Some(jitter);
        update.distribution = Some(distribution);
        return Ok(update);
    }
    if value.plus != 0.0 || value.algo != Algo::Uniform {
        return Err(Errno::OpNotSupp);
    }
    let v = value.value;
    match param {
        LinkParam::Loss => update.lossratio_percent = Some(v),
        LinkParam::LostBurst => update.lossburst_frames = Some(v),
        LinkParam::Dup => update.duplicate_percent = Some(v),
        LinkParam::Noise => update.noise_bits_per_mbyte = Some(v),
        LinkParam::Bandwidth | LinkParam::Speed => {
            let kbit = (v * 8.0 / 1000.0).round();
            // A tiny positive rate must not round to 0, which means
            // unlimited.
            let kbit = if v > 0.0 { kbit.max(1.0) } else { kbit };
            update.bandwidth_kbit = Some(whole(kbit)?);
        }
        LinkParam::Mtu => update.mtu = Some(whole(v.round())?),
        LinkParam::ChanBufSize => update.queue_bytes = Some(whole(v.round())?),
        LinkParam::Delay => unreachable!("handled above"),
    }
    Ok(update)
}

fn whole(v: f64) -> Result<u32, Errno> {
    if (0.0..=f64::from(u32::MAX)).contains(&v) { Ok(v as u32) } else { Err(Errno::Inval) }
}

/// Parses and executes one line.
pub fn handle_line<T: LinkTarget + ?Sized>(target: &mut T, line: &str) -> Outcome {
    match parse(line) {
        Ok(None) => Outcome::Nothing,
        Ok(Some(command)) => execute(target, &command),
        Err(ParseError { errno, data: true }) => Outcome::Reply(Reply::data(Vec::new(), Err(errno))),
        Err(ParseError { errno, data: false }) => Outcome::Reply(Reply::error(errno)),
    }
}

/// Executes a command against `target`.
pub fn execute<T: LinkTarget + ?Sized>(target: &mut T, command: &LinkCommand) -> Outcome {
    let reply = match command {
        LinkCommand::Logout => return Outcome::Logout,
        LinkCommand::Help => {
            let mut lines = vec![format!("{:<12} {}", "COMMAND", "HELP"), "------------ ------------".to_owned()];
            lines.extend(HELP.iter().map(|(name, help)| format!("{name:<12} {help}")));
            Reply::data(lines, Ok(()))
        }
        LinkCommand::ShowInfo => Reply::data(showinfo(target), Ok(())),
        LinkCommand::Shutdown => Reply::data(
            vec!["shutdown refused: the testbed owns this link; stop it through ToMaTo".to_owned()],
            Err(Errno::Perm),
        ),
        LinkCommand::Fifo(true) => {
            let update = ParamsUpdate { reorder_percent: Some(0.0), ..ParamsUpdate::default() };
            apply_checked(target, Dirs::Both, &update)
        }
        LinkCommand::Fifo(false) => {
            // netem keeps jittered frames in order; only `reorder` (set
            // through ToMaTo) lets frames overtake.
            if is_fifo(target) { Reply::error(Errno::OpNotSupp) } else { Reply::success() }
        }
        LinkCommand::Set { param, dirs, value } => match to_update(*param, *value) {
            Ok(update) => apply_checked(target, *dirs, &update),
            Err(errno) => Reply::error(errno),
        },
    };
    Outcome::Reply(reply)
}

fn is_fifo<T: LinkTarget + ?Sized>(target: &T) -> bool {
    Dirs::Both.list().iter().all(|d| target.params(*d).reorder_percent == 0.0)
}

/// Validates the change for every direction, then applies it.
fn apply_checked<T: LinkTarget + ?Sized>(target: &mut T, dirs: Dirs, update: &ParamsUpdate) -> Reply {
    if dirs.list().iter().any(|d| target.params(*d).updated(update).validate().is_err()) {
        return Reply::error(Errno::Inval);
    }
    for dir in dirs.list() {
        if let Err(error) = target.apply(*dir, update) {
            return Reply::target_error(&error);
        }
    }
    Reply::success()
}

/// wirefilter's `%g+%g%c` for one direction's value.
fn triple(value: f64, plus: f64, algo: char) -> String {
    format!("{}+{}{algo}", c_g(value), c_g(plus))
}

fn delay_triple(p: &DirectionParams) -> String {
    match p.distribution {
        Distribution::Uniform => triple(p.delay_ms, p.jitter_ms, 'U'),
        Distribution::Normal => triple(p.delay_ms, p.jitter_ms * 3.0, 'N'),
        Distribution::Pareto => triple(p.delay_ms, p.jitter_ms, 'P'),
        Distribution::Paretonormal => triple(p.delay_ms, p.jitter_ms, 'Q'),
    }
}

fn showinfo<T: LinkTarget + ?Sized>(target: &T) -> Vec<String> {
    let lr = target.params(Direction::LeftRight);
    let rl = target.params(Direction::RightLeft);
    let both =
        |label: &str, f: &dyn Fn(&DirectionParams) -> String| format!("{label} L->R {}   R->L {}", f(&lr), f(&rl));
    let fixed = |v: f64| triple(v, 0.0, 'U');
    let mut lines = vec![
        "WireFilter: bidirectional".to_owned(),
        both("Loss  ", &|p| fixed(p.lossratio_percent)),
        both("Lburst", &|p| fixed(p.lossburst_frames)),
        both("Delay ", &delay_triple),
        both("Dup   ", &|p| fixed(p.duplicate_percent)),
        both("Bandw ", &|p| fixed(f64::from(p.bandwidth_kbit) * 125.0)),
        // `speed` sets the same rate as `bandwidth` (see the module docs).
        both("Speed ", &|_| fixed(0.0)),
        both("Noise ", &|p| fixed(p.noise_bits_per_mbyte)),
        format!("MTU    L->R {}     R->L {}   ", c_g(f64::from(lr.mtu)), c_g(f64::from(rl.mtu))),
        both("Cap.  ", &|p| fixed(f64::from(p.queue_bytes))),
    ];
    // ToMaTo's attributes that wirefilter lacks, shown only when in use so
    // that a link configured through this console reads like wirefilter.
    if lr.corrupt_percent != 0.0 || rl.corrupt_percent != 0.0 {
        lines.push(both("Corrupt", &|p| c_g(p.corrupt_percent)));
    }
    if lr.reorder_percent != 0.0 || rl.reorder_percent != 0.0 {
        lines.push(both("Reorder", &|p| c_g(p.reorder_percent)));
    }
    if lr.queue_frames != 0 || rl.queue_frames != 0 {
        lines.push(both("Queue  ", &|p| format!("{} pkts", p.queue_frames)));
    }
    let (s_lr, s_rl) = (target.status(Direction::LeftRight), target.status(Direction::RightLeft));
    lines.push(format!("Current Delay Queue size:   L->R {}      R->L {}   ", s_lr.queued_bytes, s_rl.queued_bytes));
    lines.push(format!("Fifoness {}", if is_fifo(target) { "TRUE" } else { "FALSE" }));
    lines.push(format!("Waiting packets in delay queues {}", s_lr.queued_frames + s_rl.queued_frames));
    lines
}
