//! `tomato-bench`: measures the data plane in one run and prints figures,
//! ending with one summary line. No assertion: it reports against the
//! targets and leaves the judgement to the reader.
//!
//! 1. Throughput: iperf3 TCP (one stream, MTU 1500) between two host
//!    namespaces through a Linux bridge, through `vde_switch` + `wirefilter`
//!    (two switches with taps, joined by an unimpaired wire), through one
//!    link of ours, and through four links of ours in series (veth pairs in
//!    the engine namespace between them; one engine, then one per link).
//! 2. Fidelity of ours at the Ethernet level with a frame probe (AF_PACKET
//!    in the two host namespaces, kernel receive stamps): one-way delay
//!    error at 0 and 10 ms, loss at 1 % against its binomial interval and
//!    the same frames lost for the same seed, and rate error at 10, 100 and
//!    1000 Mbit/s for saturating probe frames and for iperf3 TCP (the bytes
//!    the engine put on the wire per second). VDE's wirefilter gets the same
//!    probe at the same settings where it can.
//! 3. Memory per idle link and per switch port (the process's RSS delta).
//!
//! Everything it creates (namespaces, processes, sockets, directories) is
//! removed at the end, on panic and on Ctrl-C (see `guard.rs`).

mod cpu;
mod guard;
mod iperf;
mod probe;
mod stats;
mod vde;

use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use clap::Parser;
use dataplane::lab::{Lab, is_root};
use dataplane::{EngineConfig, EngineHandle, EngineStats, LinkEnd, Port, link_params_from_attrs, parse_assignments};
use netem::DirectionParams;

use crate::guard::{Guard, TempDir};
use crate::probe::{SendPlan, SendReport};
use crate::stats::{binomial_interval, error_percent, missing, percentile, steady_rate};

type Res<T> = Result<T, Box<dyn Error>>;

/// Frame length of the rate probe: a full 1500-byte-MTU Ethernet frame
/// without FCS, the length netem and wirefilter count.
const RATE_FRAME: usize = 1514;
/// Rates of the rate test, in Mbit/s.
const RATES_MBIT: [u32; 3] = [10, 100, 1000];
/// Delay of the delay test, in ms.
const DELAY_MS: f64 = 10.0;
/// The saturating sender offers this much more than the link's rate.
const OVERLOAD: f64 = 1.1;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "tomato-bench", about = "Measures the data plane against a Linux bridge and VDE (needs root)")]
struct Args {
    /// Seconds of each iperf3 run and of each probe rate run.
    #[arg(long, default_value_t = 4)]
    secs: u32,
    /// Engine spin margin before a deadline, in µs (default: the engine's).
    #[arg(long)]
    spin_us: Option<u64>,
    /// Frames of each loss run.
    #[arg(long, default_value_t = 100_000)]
    loss_frames: u64,
    /// Frames of each delay run (sent at 2000 per second).
    #[arg(long, default_value_t = 5_000)]
    delay_frames: u64,
    /// Seed of our link in the loss runs.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Parts to run (memory runs first, on a fresh heap).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "memory,throughput,delay,loss,rate")]
    parts: Vec<Part>,
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// RSS per idle link and per switch port.
    Memory,
    /// iperf3 TCP through the bridge, VDE, one and four links of ours.
    Throughput,
    /// One-way delay error at 0 and 10 ms.
    Delay,
    /// Loss at 1 % and the same frames for the same seed.
    Loss,
    /// Rate error at 10, 100 and 1000 Mbit/s.
    Rate,
}

/// Programs the benchmark runs, and the Debian package of each.
const TOOLS: &[(&str, &str)] =
    &[("ip", "iproute2"), ("sysctl", "procps"), ("iperf3", "iperf3"), ("vde_switch", "vde2"), ("wirefilter", "vde2")];

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Refuses to run without root or without a tool, naming what is missing.
fn preflight() -> Result<(), String> {
    if !is_root() {
        return Err("needs root (network namespaces, AF_PACKET sockets, taps); run it as root \
                    (scripts/bench does the setup)"
            .into());
    }
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(program, _)| !in_path(program))
        .map(|(program, package)| format!("{program} (Debian package {package})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing: {}; install with apt-get install --no-install-recommends <package>",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// The run's shared state.
struct Bench {
    args: Args,
    lab: Lab,
    logs: TempDir,
    engine_config: EngineConfig,
}

impl Bench {
    fn engine(&self) -> Res<EngineHandle> {
        Ok(EngineHandle::spawn(self.engine_config.clone())?)
    }

    fn h(&self, i: usize) -> String {
        self.lab.ns_host(i)
    }

    /// One link of ours with these attributes between `j0` and `j1`.
    fn linked(&self, attrs: &[&str]) -> Res<EngineHandle> {
        let engine = self.engine()?;
        let (ab, ba) = params(attrs)?;
        engine.add_link(Box::new(self.lab.port(0)?), Box::new(self.lab.port(1)?), ab, ba)?;
        Ok(engine)
    }

    /// iperf3 TCP from host 0 to `addr` in host 1, with the CPU use and
    /// the frames the `engines` received per second over the middle of the
    /// run.
    fn tcp(&self, addr: &str, engines: &[&EngineHandle]) -> Res<(iperf::TcpResult, Load)> {
        let secs = self.args.secs;
        let rx_frames = || -> u64 {
            engines
                .iter()
                .filter_map(|e| e.stats().ok())
                .flat_map(|s| s.links.into_iter().flat_map(|l| l.ports))
                .map(|p| p.rx.frames)
                .sum()
        };
        let (r, load) = iperf::tcp(&self.h(0), &self.h(1), addr, secs, self.logs.path(), |start| {
            std::thread::sleep(Duration::from_millis(500));
            let (c1, f1) = (cpu::sample(), rx_frames());
            std::thread::sleep(Duration::from_secs_f64(f64::from(secs) - 0.7).saturating_sub(start.elapsed()));
            let (c2, f2) = (cpu::sample(), rx_frames());
            let usage = cpu::Usage::between(&c1, &c2);
            let secs = (c2.at() - c1.at()).as_secs_f64();
            Load { usage, frames_per_sec: (f2 - f1) as f64 / secs }
        })?;
        Ok((r, load))
    }

    /// Probe frames from host 0's `tx_if` to host 1's `rx_if`, with the
    /// CPU use meanwhile (a busy host shows in the delay tail).
    fn probe(&self, tx_if: &str, rx_if: &str, plan: &SendPlan) -> Res<(SendReport, Vec<probe::Rx>, Load)> {
        let linger = Duration::from_millis(300);
        let before = cpu::sample();
        let (report, frames) = probe::run((&self.h(0), tx_if), (&self.h(1), rx_if), plan, linger)?;
        let usage = cpu::Usage::between(&before, &cpu::sample());
        Ok((report, frames, Load { usage, frames_per_sec: 0.0 }))
    }
}

fn params(attrs: &[&str]) -> Res<(DirectionParams, DirectionParams)> {
    Ok(link_params_from_attrs(&parse_assignments(attrs.iter().copied())?)?)
}

/// Gbit/s of a bit rate.
fn gbit(bps: f64) -> f64 {
    bps / 1e9
}

/// CPU use and the engines' frame rate during a run.
#[derive(Debug, Clone, Copy)]
struct Load {
    usage: cpu::Usage,
    /// Frames (super-frames count once) received by all engine ports.
    frames_per_sec: f64,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = &self.usage;
        if u.engine_cores > 0.0 {
            write!(f, "engine CPU {:.2} cores, ", u.engine_cores)?;
        }
        write!(f, "host busy {:.2} of {} cores", u.host_cores, cpu::n_cpus())?;
        if self.frames_per_sec > 0.0 {
            write!(
                f,
                ", engine ports rx {:.0} kframes/s, {:.2} us engine CPU per frame",
                self.frames_per_sec / 1e3,
                u.engine_cores * 1e6 / self.frames_per_sec
            )?;
        }
        Ok(())
    }
}

/// Throughput figures.
struct Throughput {
    bridge: f64,
    vde: f64,
    ours: f64,
    chain_one_engine: f64,
    chain_per_link: f64,
    chain_switched: f64,
}

/// The four links of the chain: engine-namespace interfaces A and B of
/// each, joined in series by the veth pairs `c<k>a`/`c<k>b`.
const CHAIN: [(&str, &str); 4] = [("j0", "c1a"), ("c1b", "c2a"), ("c2b", "c3a"), ("c3b", "j1")];

fn chain(b: &Bench, engine_per_link: bool) -> Res<(f64, Load)> {
    let mut engines = vec![b.engine()?];
    for (k, (a, z)) in CHAIN.iter().enumerate() {
        if engine_per_link && k > 0 {
            engines.push(b.engine()?);
        }
        let (ab, ba) = params(&["emulation=false"])?;
        let engine = engines.last().expect("one engine at least");
        engine.add_link(Box::new(b.lab.port_named(a)?), Box::new(b.lab.port_named(z)?), ab, ba)?;
    }
    let refs: Vec<&EngineHandle> = engines.iter().collect();
    let (r, load) = b.tcp(&b.lab.addr(1), &refs)?;
    Ok((r.received_bps, load))
}

/// Four links in series joined by three switches inside one engine (the
/// shape the hostmanager builds for a chain of switches): only the two
/// outer ends are sockets, the rest meet at junctions.
fn switched_chain(b: &Bench) -> Res<(f64, Load)> {
    let engine = b.engine()?;
    let mut switches = Vec::new();
    for _ in 0..3 {
        switches.push(engine.add_switch(netem::SwitchMode::Learning, Vec::new())?);
    }
    let mut ends = vec![LinkEnd::Port(Box::new(b.lab.port(0)?))];
    for sw in &switches {
        ends.push(LinkEnd::Switch(*sw));
        ends.push(LinkEnd::Switch(*sw));
    }
    ends.push(LinkEnd::Port(Box::new(b.lab.port(1)?)));
    let mut ends = ends.into_iter();
    while let (Some(a), Some(z)) = (ends.next(), ends.next()) {
        let (ab, ba) = params(&["emulation=false"])?;
        engine.add_link_ends(a, z, ab, ba)?;
    }
    let (r, load) = b.tcp(&b.lab.addr(1), &[&engine])?;
    Ok((r.received_bps, load))
}

fn throughput(b: &Bench, vde: &mut vde::Vde) -> Res<Throughput> {
    println!("== throughput: iperf3 TCP, one stream, {} s each, MTU 1500", b.args.secs);
    b.lab.linux_bridge()?;
    let bridge = b.tcp(&b.lab.addr(1), &[]);
    b.lab.remove_linux_bridge()?;
    let (bridge, load) = bridge?;
    println!(
        "  Linux bridge                              {:6.2} Gbit/s  (retransmits {}; {load})",
        gbit(bridge.received_bps),
        bridge.retransmits
    );

    vde.set_wire(&[])?;
    let (v, load) = b.tcp(VDE_ADDRS[1], &[])?;
    println!(
        "  vde_switch + wirefilter + vde_switch      {:6.2} Gbit/s  (retransmits {}; {load})",
        gbit(v.received_bps),
        v.retransmits
    );

    let engine = b.linked(&["emulation=false"])?;
    let (ours, load) = b.tcp(&b.lab.addr(1), &[&engine])?;
    let stats = engine.shutdown()?;
    println!(
        "  ours, 1 link                              {:6.2} Gbit/s  (retransmits {}; {load}; {})",
        gbit(ours.received_bps),
        ours.retransmits,
        port_summary(&stats)
    );

    for k in 1..4 {
        b.lab.add_veth_x(&format!("c{k}a"), &format!("c{k}b"))?;
    }
    let (one, load) = chain(b, false)?;
    println!("  ours, 4 links in series, one engine       {:6.2} Gbit/s  ({load})", gbit(one));
    let (per_link, load) = chain(b, true)?;
    println!("  ours, 4 links in series, engine per link  {:6.2} Gbit/s  ({load})", gbit(per_link));
    let (switched, load) = switched_chain(b)?;
    println!("  ours, 4 links joined by 3 switches        {:6.2} Gbit/s  ({load})", gbit(switched));
    let t = Throughput {
        bridge: bridge.received_bps,
        vde: v.received_bps,
        ours: ours.received_bps,
        chain_one_engine: one,
        chain_per_link: per_link,
        chain_switched: switched,
    };
    println!(
        "  ours/bridge = {:.2} (target >= 0.5)   ours/vde = {:.1} (target >= 10)   4 hops/1 hop = {:.2}, \
         engine per link {:.2}, through switches {:.2} (target >= 0.8)",
        t.ours / t.bridge,
        t.ours / t.vde,
        t.chain_one_engine / t.ours,
        t.chain_per_link / t.ours,
        t.chain_switched / t.ours
    );
    Ok(t)
}

/// Receive-side losses of the engine's ports, which should stay zero.
fn port_summary(stats: &EngineStats) -> String {
    let mut s = String::new();
    for l in &stats.links {
        let refused: u64 = l.ports.iter().map(|p| p.tx_dropped).sum();
        let no_buf: u64 = l.ports.iter().map(|p| p.rx_no_buffer).sum();
        let _ = write!(s, "engine: segmented {} tx-refused {refused} no-buffer {no_buf}", l.segmented[0]);
    }
    s
}

/// Addresses of the VDE taps in hosts 0 and 1 (a subnet of their own,
/// beside the lab's veths).
const VDE_ADDRS: [&str; 2] = ["10.78.0.1", "10.78.0.2"];

/// Delay figures of one run, in µs of error against the configured delay.
#[derive(Debug, Clone, Copy)]
struct DelayErr {
    p50: f64,
    p99: f64,
    max: f64,
    received: usize,
    sent: u64,
}

fn delay_plan(b: &Bench) -> SendPlan {
    SendPlan { frames: b.args.delay_frames, fps: 2000.0, len: 128, retry_refused: true }
}

fn delay_errors(report: &SendReport, frames: &[probe::Rx], delay_ms: f64) -> Res<DelayErr> {
    let mut errs: Vec<i64> = frames.iter().map(|f| f.rx_ns as i64 - f.tx_ns as i64 - (delay_ms * 1e6) as i64).collect();
    errs.sort_unstable();
    let us = |q: f64| percentile(&errs, q).map(|v| v as f64 / 1e3).ok_or("no probe frame arrived");
    Ok(DelayErr { p50: us(0.5)?, p99: us(0.99)?, max: us(1.0)?, received: frames.len(), sent: report.sent })
}

fn print_delay(label: &str, d: &DelayErr, load: &Load) {
    println!(
        "  {label:<18} p50 {:+8.1} us  p99 {:+8.1} us  max {:+8.1} us  ({} of {} frames; {load})",
        d.p50, d.p99, d.max, d.received, d.sent
    );
}

/// Loss figures of one run.
struct LossRun {
    lost: Vec<u64>,
    sent: u64,
}

impl LossRun {
    fn percent(&self) -> f64 {
        self.lost.len() as f64 * 100.0 / self.sent as f64
    }
}

fn loss_plan(b: &Bench) -> SendPlan {
    SendPlan { frames: b.args.loss_frames, fps: 50_000.0, len: 64, retry_refused: true }
}

fn loss_run(report: &SendReport, frames: &[probe::Rx]) -> LossRun {
    let seqs: Vec<u64> = frames.iter().map(|f| f.seq).collect();
    LossRun { lost: missing(&seqs, report.sent), sent: report.sent }
}

/// Rate of a saturating probe run over its steady window, in bit/s, and
/// the rate offered.
fn probe_rate(report: &SendReport, frames: &[probe::Rx]) -> Res<(f64, f64)> {
    let first_rx = frames.first().ok_or("no probe frame arrived")?.rx_ns;
    let timed: Vec<(u64, u32)> = frames.iter().map(|f| (f.rx_ns, f.len)).collect();
    // Skip the first half second (the queue fills) and stop before the
    // sender did, so the link is busy all through the window.
    let from = first_rx + 500_000_000;
    let to = report.last_ns.saturating_sub(100_000_000);
    let rate = steady_rate(&timed, from, to).ok_or("the steady window holds no frames")?;
    let span = (report.last_ns - report.first_ns) as f64 / 1e9;
    let offered = report.sent as f64 * RATE_FRAME as f64 * 8.0 / span;
    Ok((rate, offered))
}

fn rate_plan(b: &Bench, mbit: u32) -> SendPlan {
    let fps = OVERLOAD * f64::from(mbit) * 1e6 / (RATE_FRAME as f64 * 8.0);
    let secs = f64::from(b.args.secs.max(3));
    SendPlan { frames: (fps * secs) as u64, fps, len: RATE_FRAME, retry_refused: false }
}

/// Queue of the rate links, in frames: 20 ms at the rate, at least 64, so
/// a sender's or the engine's scheduling hiccup never empties it (the
/// model's automatic queue is 10 frames at delay 0).
fn rate_queue(mbit: u32) -> u32 {
    let frames = (0.02 * f64::from(mbit) * 1e6 / (RATE_FRAME as f64 * 8.0)).ceil() as u32;
    frames.max(64)
}

/// Bytes the engine sent on port B of its first link.
fn b_tx_bytes(stats: &EngineStats) -> u64 {
    stats.links.first().map_or(0, |l| l.ports[1].tx.bytes)
}

/// The engine's counters and when it read them: the middle of a request
/// that took under 200 µs (retried a few times), since on a busy host the
/// asking thread may wait milliseconds for a CPU before or after asking.
fn timed_stats(engine: &EngineHandle) -> Option<(Instant, EngineStats)> {
    let mut best: Option<(Duration, Instant, EngineStats)> = None;
    for _ in 0..20 {
        let before = Instant::now();
        let stats = engine.stats().ok()?;
        let took = before.elapsed();
        let mid = before + took / 2;
        if best.as_ref().is_none_or(|(t, _, _)| took < *t) {
            best = Some((took, mid, stats));
        }
        if took < Duration::from_micros(200) {
            break;
        }
    }
    best.map(|(_, mid, stats)| (mid, stats))
}

/// Frames held in the A→B direction of the first link (queued or in
/// delay): a link whose queue never empties runs at its full rate.
fn in_link(stats: &EngineStats) -> u64 {
    stats.links.first().map_or(0, |l| {
        let c = &l.counters[0];
        (c.received.frames + c.duplicated.frames)
            .saturating_sub(c.sent.frames + c.dropped_loss.frames + c.dropped_queue.frames + c.dropped_mtu.frames)
    })
}

/// One-way delay error of ours at 0 and 10 ms, and of wirefilter.
fn delay(b: &Bench, vde: &mut vde::Vde) -> Res<DelayErr> {
    println!(
        "-- one-way delay, {} frames of 128 B at 2000/s, error against the configured delay (nothing subtracted)",
        b.args.delay_frames
    );
    let mut ours_delay = None;
    for delay in [0.0, DELAY_MS] {
        let d = format!("delay_from={delay}");
        let engine = b.linked(&[&d, "bandwidth_from=0", "bandwidth_to=0"])?;
        let (report, frames, load) = b.probe("e0", "e1", &delay_plan(b))?;
        drop(engine);
        let e = delay_errors(&report, &frames, delay)?;
        print_delay(&format!("ours, {delay} ms"), &e, &load);
        ours_delay = Some(e);
    }
    for delay in [0.0, DELAY_MS] {
        let options = if delay > 0.0 { vec!["-d".to_string(), format!("{delay}")] } else { Vec::new() };
        vde.set_wire(&options)?;
        let (report, frames, load) = b.probe(&vde::tap(0), &vde::tap(1), &delay_plan(b))?;
        let e = delay_errors(&report, &frames, delay)?;
        print_delay(&format!("wirefilter, {delay} ms"), &e, &load);
    }
    println!("  target: ours p99 error <= 50 us at {DELAY_MS} ms");
    Ok(ours_delay.ok_or("no delay run")?)
}

/// Loss figures for the summary.
struct Loss {
    percent: f64,
    inside: bool,
    same_frames: bool,
}

/// Loss of ours at 1 % twice with one seed, and of wirefilter.
fn loss(b: &Bench, vde: &mut vde::Vde) -> Res<Loss> {
    let n = b.args.loss_frames;
    let (lo, hi) = binomial_interval(n, 0.01, 0.95);
    let pct = |k: u64| k as f64 * 100.0 / n as f64;
    println!(
        "-- loss 1 %, {n} frames of 64 B at 50 000/s; 95 % binomial interval {lo}..{hi} frames = {:.3}..{:.3} %",
        pct(lo),
        pct(hi)
    );
    let seed = format!("seed={}", b.args.seed);
    let mut runs = Vec::new();
    for k in 1..=2 {
        let engine = b.linked(&["lossratio_from=1", "bandwidth_from=0", "bandwidth_to=0", &seed])?;
        let (report, frames, _) = b.probe("e0", "e1", &loss_plan(b))?;
        let stats = engine.shutdown()?;
        let run = loss_run(&report, &frames);
        let link = stats.links.first().ok_or("no link")?;
        let by_netem = link.counters[0].dropped_loss.frames;
        let inside = (lo..=hi).contains(&(run.lost.len() as u64));
        println!(
            "  ours run {k} ({seed}): lost {} = {:.3} % ({}), netem dropped {by_netem}, lost elsewhere {}, \
             refused by the sender's interface {}",
            run.lost.len(),
            run.percent(),
            if inside { "inside" } else { "OUTSIDE" },
            run.lost.len() as i64 - by_netem as i64,
            report.refused
        );
        runs.push(run);
    }
    let same_frames = runs[0].lost == runs[1].lost && runs[0].sent == runs[1].sent;
    let differing = runs[0].lost.iter().filter(|s| !runs[1].lost.contains(s)).count()
        + runs[1].lost.iter().filter(|s| !runs[0].lost.contains(s)).count();
    println!(
        "  same seed, same frames lost: {} ({differing} sequence numbers differ)",
        if same_frames { "yes" } else { "NO" }
    );
    vde.set_wire(&["-l".to_string(), "1".to_string()])?;
    let (report, frames, _) = b.probe(&vde::tap(0), &vde::tap(1), &loss_plan(b))?;
    let v = loss_run(&report, &frames);
    let inside = (lo..=hi).contains(&(v.lost.len() as u64));
    println!(
        "  wirefilter -l 1 (no seed): lost {} = {:.3} % ({})",
        v.lost.len(),
        v.percent(),
        if inside { "inside" } else { "OUTSIDE" }
    );
    let inside = (lo..=hi).contains(&(runs[0].lost.len() as u64));
    Ok(Loss { percent: runs[0].percent(), inside, same_frames: same_frames && runs[0].sent == n })
}

/// Rate error of ours (probe and TCP) at each rate, and of wirefilter
/// (probe); returns the largest error of ours, in percent, signed.
fn rate(b: &Bench, vde: &mut vde::Vde) -> Res<f64> {
    println!(
        "-- rate: {RATE_FRAME}-byte frames counted whole (no FCS, as netem and wirefilter count); \
         probe offers {OVERLOAD}x the rate, measured at the receiver over [first+0.5 s, end-0.1 s]; \
         TCP: bytes the engine sent on j1 over [1 s, {}-0.5 s] of iperf3",
        b.args.secs
    );
    let mut rate_err_max: f64 = 0.0;
    for mbit in RATES_MBIT {
        let rate_bps = f64::from(mbit) * 1e6;
        let bw = format!("bandwidth_from={}", mbit * 1000);
        let queue = format!("queue_from={}", rate_queue(mbit));
        let engine = b.linked(&[&bw, &queue, "bandwidth_to=0"])?;
        let (report, frames, load) = b.probe("e0", "e1", &rate_plan(b, mbit))?;
        let stats = engine.shutdown()?;
        let (rate, offered) = probe_rate(&report, &frames)?;
        let err = error_percent(rate, rate_bps);
        rate_err_max = if err.abs() > rate_err_max.abs() { err } else { rate_err_max };
        let link = stats.links.first().ok_or("no link")?;
        println!(
            "  {mbit:>4} Mbit/s ours probe: {:9.3} Mbit/s  error {err:+.3} %  (offered {:.1} Mbit/s, {queue}, \
             queue drops {}, refused by sender's interface {}; {load})",
            rate / 1e6,
            offered / 1e6,
            link.counters[0].dropped_queue.frames,
            report.refused
        );

        let engine = b.linked(&[&bw, &queue, "bandwidth_to=0"])?;
        let secs = b.args.secs;
        let (tcp, window) = iperf::tcp(&b.h(0), &b.h(1), &b.lab.addr(1), secs, b.logs.path(), |start| {
            let sample = |at: Duration| -> Option<(Instant, cpu::Sample, u64, u64)> {
                std::thread::sleep(at.saturating_sub(start.elapsed()));
                let (when, stats) = timed_stats(&engine)?;
                Some((when, cpu::sample(), b_tx_bytes(&stats), in_link(&stats)))
            };
            let first = sample(Duration::from_secs(1));
            let last = sample(Duration::from_secs_f64(f64::from(secs) - 0.5));
            first.zip(last)
        })?;
        drop(engine);
        let ((t1, c1, b1, q1), (t2, c2, b2, q2)) = window.ok_or("engine stats failed during iperf3")?;
        let wire = (b2 - b1) as f64 * 8.0 / (t2 - t1).as_secs_f64();
        let load = Load { usage: cpu::Usage::between(&c1, &c2), frames_per_sec: 0.0 };
        let err = error_percent(wire, rate_bps);
        rate_err_max = if err.abs() > rate_err_max.abs() { err } else { rate_err_max };
        println!(
            "  {mbit:>4} Mbit/s ours TCP:   {:9.3} Mbit/s  error {err:+.3} %  (iperf3 goodput {:.3} Mbit/s, \
             retransmits {}, frames queued in the link at the window's ends {q1} and {q2}; {load})",
            wire / 1e6,
            tcp.received_bps / 1e6,
            tcp.retransmits
        );

        vde.set_wire(&["-b".to_string(), format!("{}", mbit * 1_000_000 / 8)])?;
        let (report, frames, load) = b.probe(&vde::tap(0), &vde::tap(1), &rate_plan(b, mbit))?;
        match probe_rate(&report, &frames) {
            Ok((rate, offered)) => println!(
                "  {mbit:>4} Mbit/s wirefilter:  {:9.3} Mbit/s  error {:+.3} %  (offered {:.1} Mbit/s, -b {} bytes/s; \
                 {load})",
                rate / 1e6,
                error_percent(rate, rate_bps),
                offered / 1e6,
                mbit * 1_000_000 / 8
            ),
            Err(e) => println!("  {mbit:>4} Mbit/s wirefilter: no figure ({e})"),
        }
    }
    println!("  target: |rate error| <= 0.5 % for the probe and TCP");
    Ok(rate_err_max)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory per idle link and per switch port, in KiB.
struct Memory {
    per_link_kib: f64,
    per_port_kib: f64,
    link_reserved_kib: f64,
    port_reserved_kib: f64,
}

/// Measures memory per idle link and per switch port.
fn memory(b: &Bench) -> Res<Memory> {
    let n = 50;
    println!("== memory: {n} idle links, then one switch of {} ports, on real packet ports", 2 * n);
    let lab = Lab::new(2 * n)?;
    lab.disable_ipv6()?;
    let engine = b.engine()?;
    let ports: Vec<_> = (0..2 * n).map(|i| lab.port(i)).collect::<Result<_, _>>()?;
    let before = rss_kib();
    let mut ports = ports.into_iter();
    while let (Some(a), Some(z)) = (ports.next(), ports.next()) {
        let (ab, ba) = params(&["delay_to=10", "delay_from=10"])?;
        engine.add_link(Box::new(a), Box::new(z), ab, ba)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    let stats = engine.shutdown()?;
    let heap = stats.links.iter().map(|l| l.heap_bytes).sum::<usize>() / n;
    let frames: u64 = stats.links.iter().flat_map(|l| l.ports.iter()).map(|p| p.rx.frames).sum();
    let per_link = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "  idle links: RSS +{} KiB = {per_link:.1} KiB per link; netem's queues and log reserve {heap} B per link; \
         {frames} frames crossed them",
        after.saturating_sub(before)
    );

    let engine = b.engine()?;
    let ports: Vec<Box<dyn Port>> =
        (0..2 * n).map(|i| lab.port(i).map(|p| Box::new(p) as Box<dyn Port>)).collect::<Result<_, _>>()?;
    let before = rss_kib();
    engine.add_switch(netem::SwitchMode::Learning, ports)?;
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    let stats = engine.shutdown()?;
    let per_port = after.saturating_sub(before) as f64 / (2 * n) as f64;
    let switch_heap = stats.switches.first().map_or(0, |s| s.heap_bytes);
    println!(
        "  switch: RSS +{} KiB = {per_port:.2} KiB per port; the switch reserves {switch_heap} B = {:.2} KiB per port \
         (its table, resident once touched)",
        after.saturating_sub(before),
        switch_heap as f64 / 1024.0 / (2 * n) as f64
    );
    println!("  (user-space RSS of this process; the kernel's socket buffers are not in it)");
    Ok(Memory {
        per_link_kib: per_link,
        per_port_kib: per_port,
        link_reserved_kib: heap as f64 / 1024.0,
        port_reserved_kib: switch_heap as f64 / 1024.0 / (2 * n) as f64,
    })
}

fn bench(args: Args) -> Res<String> {
    let lab = Lab::new(2)?;
    lab.disable_ipv6()?;
    let mut engine_config = EngineConfig::standard();
    if let Some(us) = args.spin_us {
        engine_config.spin_nanos = us * 1000;
    }
    println!(
        "tomato-bench: engine spin {} us, {} CPUs, namespaces {}..",
        engine_config.spin_nanos / 1000,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        lab.ns_x().trim_end_matches("-x")
    );
    let b = Bench { args, lab, logs: TempDir::new("logs")?, engine_config };
    // Memory first: later runs leave freed but resident heap behind (glibc
    // reuses an ended thread's arena), which would hide the growth.
    let parts = &b.args.parts;
    let mut summary = vec!["summary:".to_string()];
    if parts.contains(&Part::Memory) {
        let m = memory(&b)?;
        summary.push(format!(
            "mem/link={:.1}KiB({:.1}KiB reserved) mem/port={:.2}KiB({:.2}KiB reserved)",
            m.per_link_kib, m.link_reserved_kib, m.per_port_kib, m.port_reserved_kib
        ));
    }
    let mut vde = vde::Vde::start([&b.h(0), &b.h(1)], VDE_ADDRS)?;
    if parts.contains(&Part::Throughput) {
        let t = throughput(&b, &mut vde)?;
        summary.insert(
            1,
            format!(
                "ours/bridge={:.2} ours/vde={:.1} 4hop/1hop={:.2}(engine per link {:.2}, via switches {:.2})",
                t.ours / t.bridge,
                t.ours / t.vde,
                t.chain_one_engine / t.ours,
                t.chain_per_link / t.ours,
                t.chain_switched / t.ours
            ),
        );
    }
    let fidelity = [Part::Delay, Part::Loss, Part::Rate];
    if fidelity.iter().any(|p| parts.contains(p)) {
        println!("== fidelity at the Ethernet level: probe frames from h0 to h1, kernel receive stamps");
    }
    // Fidelity figures go before memory in the line, as in the output.
    let at = summary.len() - usize::from(parts.contains(&Part::Memory));
    let mut figures = Vec::new();
    if parts.contains(&Part::Delay) {
        figures.push(format!("delay_p99_err={:.0}us", delay(&b, &mut vde)?.p99));
    }
    if parts.contains(&Part::Loss) {
        let l = loss(&b, &mut vde)?;
        figures.push(format!(
            "loss={:.3}%({}, {})",
            l.percent,
            if l.inside { "in CI" } else { "OUT of CI" },
            if l.same_frames { "same frames" } else { "NOT same frames" }
        ));
    }
    if parts.contains(&Part::Rate) {
        figures.push(format!("rate_err_max={:+.2}%", rate(&b, &mut vde)?));
    }
    drop(vde);
    summary.splice(at..at, figures);
    Ok(summary.join(" "))
}

fn main() {
    let args = Args::parse();
    if let Err(e) = preflight() {
        eprintln!("tomato-bench: {e}");
        std::process::exit(2);
    }
    let guard = match Guard::install() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("tomato-bench: cannot install the signal handler: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let result = bench(args);
    // Everything is removed before the verdict is printed.
    drop(guard);
    match result {
        Ok(summary) => {
            println!("(took {:.0} s)", started.elapsed().as_secs_f64());
            println!("{summary}");
        }
        Err(e) => {
            eprintln!("tomato-bench: {e}");
            std::process::exit(if guard::signalled() { 130 } else { 1 });
        }
    }
}
