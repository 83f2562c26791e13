//! `tomato dataplane link|switch`: joins existing interfaces with the data
//! plane in the foreground, before the hostmanager exists.
//!
//! The command opens AF_PACKET ports on the named interfaces (which must
//! exist and be up), runs an engine until SIGINT or SIGTERM, and prints the
//! counters. Optionally it serves a VDE console on a unix socket and
//! captures a link to a pcapng file or a live stream. It changes nothing on
//! the interfaces that outlives it: the promiscuous membership belongs to
//! its sockets and ends with them; the console socket and the capture's
//! ring directory are removed when it stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use capture::{Capture, CaptureConfig, CaptureMode, CaptureSetup, Interface};
use clap::{Args, Subcommand};
use dataplane::{EngineConfig, EngineHandle, LinkId, Port, PortSpec, sys};

/// Subcommands of `tomato dataplane`.
#[derive(Subcommand)]
pub enum DataplaneCommand {
    /// Joins ports A and B with an emulated link until Ctrl-C.
    ///
    /// A port is an existing interface (`veth1`), a tap this command creates
    /// (`tap:NAME`), QEMU's unix datagram netdev (`dgram:LOCAL=REMOTE`) or an
    /// encrypted UDP tunnel to another host (`udp:BIND=PEER,key=HEX64` or
    /// `udp:BIND=PEER,keyfile=PATH`).
    ///
    /// Attributes use the model's names for a `bridge` connection between
    /// [PORT_A, PORT_B]: `*_from` shapes frames A -> B, `*_to` frames
    /// B -> A, with the model's defaults (including bandwidth 10000
    /// kbit/s each way) for those not given; e.g.
    /// `tomato dataplane link veth1 veth2 delay_to=10 lossratio_from=1`.
    /// `tomato capabilities bridge` lists them all.
    Link(Box<LinkArgs>),
    /// Joins ports with a learning switch (or a hub) until Ctrl-C; ports
    /// are named as for `link`.
    Switch {
        /// The ports, at least two.
        #[arg(required = true, num_args = 2.., value_name = "PORT")]
        interfaces: Vec<PortSpec>,
        /// Flood every frame to every other port instead of learning.
        #[arg(long)]
        hub: bool,
        /// Open interfaces, create taps and bind tunnels in this network
        /// namespace (`ip netns` name or a path).
        #[arg(long)]
        netns: Option<String>,
        /// Serve a `vde_switch` console on this unix socket (`socat - UNIX-CONNECT:PATH`).
        #[arg(long, value_name = "PATH")]
        console: Option<PathBuf>,
    },
}

/// Arguments of `tomato dataplane link` (boxed: the capture options make it large).
#[derive(Args)]
pub struct LinkArgs {
    /// The first port (A).
    #[arg(value_name = "PORT_A")]
    pub if_a: PortSpec,
    /// The second port (B).
    #[arg(value_name = "PORT_B")]
    pub if_b: PortSpec,
    /// Attributes as key=value.
    pub attrs: Vec<String>,
    /// Open interfaces, create taps and bind tunnels in this network
    /// namespace (`ip netns` name or a path).
    #[arg(long)]
    pub netns: Option<String>,
    /// Serve a `wirefilter` console on this unix socket (`socat - UNIX-CONNECT:PATH`).
    #[arg(long, value_name = "PATH")]
    pub console: Option<PathBuf>,
    /// What to capture.
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// Capture options of `tomato dataplane link`.
#[derive(Args)]
pub struct CaptureArgs {
    /// Capture the frames leaving the link (both directions) and write them
    /// to this pcapng file when stopped; like ToMaTo, a ring of 5 x 10 MB
    /// keeps the latest frames.
    #[arg(long, value_name = "FILE", conflicts_with = "capture_stream")]
    capture: Option<PathBuf>,
    /// Serve the frames leaving the link as a live pcapng stream on this
    /// TCP address, e.g. 127.0.0.1:4000 (`wireshark -k -i <(nc HOST PORT)`).
    #[arg(long, value_name = "ADDR")]
    capture_stream: Option<SocketAddr>,
    /// Capture only frames matching this filter (tcpdump syntax).
    #[arg(long, value_name = "EXPR", default_value = "")]
    capture_filter: String,
}

/// Ring directories are `<tmp>/tomato-capture-<pid>-<link>`.
const RING_PREFIX: &str = "tomato-capture-";

/// Removes ring directories left by commands that were killed (their PID is
/// gone), so a crash leaves no debris beyond the next run.
fn remove_stale_rings() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(RING_PREFIX).and_then(|rest| rest.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A running capture and where its file goes.
struct LinkCapture {
    capture: Capture,
    file: Option<PathBuf>,
}

impl CaptureArgs {
    /// Starts the capture these options ask for on link `id`, if any.
    fn start(&self, engine: &EngineHandle, id: LinkId, if_a: &str, if_b: &str) -> anyhow::Result<Option<LinkCapture>> {
        let mode = match (&self.capture, self.capture_stream) {
            (None, None) if self.capture_filter.is_empty() => return Ok(None),
            (None, None) => anyhow::bail!("--capture-filter needs --capture FILE or --capture-stream ADDR"),
            (Some(_), _) => CaptureMode::File,
            (None, Some(_)) => CaptureMode::Net,
        };
        let interfaces =
            vec![Interface::named(format!("{if_a} -> {if_b}")), Interface::named(format!("{if_b} -> {if_a}"))];
        remove_stale_rings();
        let ring = std::env::temp_dir().join(format!("{RING_PREFIX}{}-{}", std::process::id(), id.0));
        let mut setup = CaptureSetup::new(interfaces, ring);
        if let Some(addr) = self.capture_stream {
            setup.listen = addr;
        }
        let config = CaptureConfig {
            enabled: true,
            filter: self.capture_filter.clone(),
            mode,
            ..CaptureConfig::tomato_default()
        };
        let (capture, tap) =
            Capture::start(setup, config).context("starting the capture (--capture-filter is tcpdump syntax)")?;
        engine.set_link_capture(id, Some(tap))?;
        if let Some(addr) = capture.stream_addr() {
            eprintln!("capture stream on {addr}: wireshark -k -i <(nc {} {})", addr.ip(), addr.port());
        }
        Ok(Some(LinkCapture { capture, file: self.capture.clone() }))
    }
}

impl LinkCapture {
    /// Writes the file (file mode) and closes the capture.
    fn finish(self) -> anyhow::Result<()> {
        // After the writer has drained the queue, so the counts are final.
        self.capture.sync(std::time::Duration::from_secs(5));
        let counters = self.capture.counters();
        if let Some(file) = &self.file {
            let summary = self.capture.merge(None, file).with_context(|| format!("writing {}", file.display()))?;
            eprintln!("capture: {} frames written to {} ({summary:?})", counters.written, file.display());
        } else {
            eprintln!("capture: {} frames streamed, {} dropped", counters.written, counters.dropped);
        }
        self.capture.close()?;
        Ok(())
    }
}

fn serve_console(
    path: &Path,
    serve: impl FnOnce(PathBuf) -> Result<vde::server::Server, vde::server::ServerError>,
) -> anyhow::Result<vde::server::Server> {
    let server = serve(path.to_path_buf()).with_context(|| format!("--console {}", path.display()))?;
    eprintln!("console on {} (socat - UNIX-CONNECT:{})", path.display(), path.display());
    Ok(server)
}

fn open(spec: &PortSpec, netns: Option<&str>) -> anyhow::Result<Box<dyn Port>> {
    spec.open(netns).with_context(|| format!("opening port {spec}"))
}

/// Runs a `tomato dataplane` subcommand.
pub fn run(cmd: DataplaneCommand) -> anyhow::Result<ExitCode> {
    // Before any thread starts, so the engine thread inherits the mask and
    // the signals wait for `wait_for_termination`.
    sys::block_termination_signals()?;
    let engine = EngineHandle::spawn(EngineConfig::standard())?;
    let mut capture = None;
    let console_server = match cmd {
        DataplaneCommand::Link(args) => {
            let LinkArgs { if_a, if_b, attrs, netns, console, capture: capture_args } = *args;
            let attrs = dataplane::parse_assignments(attrs.iter().map(String::as_str)).map_err(anyhow::Error::msg)?;
            let (ab, ba) = match dataplane::link_params_from_attrs(&attrs) {
                Ok(params) => params,
                Err(problem) => {
                    eprintln!("error: {problem}");
                    return Ok(ExitCode::from(1));
                }
            };
            let seed = ab.seed;
            let a = open(&if_a, netns.as_deref())?;
            let b = open(&if_b, netns.as_deref())?;
            let id = engine.add_link(a, b, ab, ba)?;
            capture = capture_args.start(&engine, id, &if_a.to_string(), &if_b.to_string())?;
            let server = match console {
                Some(path) => Some(serve_console(&path, |p| dataplane::console::serve_link(engine.control(), id, p))?),
                None => None,
            };
            eprintln!("link {if_a} <-> {if_b} running (seed {seed}); Ctrl-C stops it");
            server
        }
        DataplaneCommand::Switch { interfaces, hub, netns, console } => {
            let ports = interfaces.iter().map(|i| open(i, netns.as_deref())).collect::<anyhow::Result<Vec<_>>>()?;
            let mode = if hub { netem::SwitchMode::Hub } else { netem::SwitchMode::Learning };
            let id = engine.add_switch(mode, ports)?;
            let server = match console {
                Some(path) => {
                    Some(serve_console(&path, |p| dataplane::console::serve_switch(engine.control(), id, p))?)
                }
                None => None,
            };
            eprintln!(
                "{} of {} running; Ctrl-C stops it",
                if hub { "hub" } else { "switch" },
                interfaces.iter().map(PortSpec::to_string).collect::<Vec<_>>().join(", ")
            );
            server
        }
    };
    let signal = sys::wait_for_termination()?;
    drop(console_server);
    let stats = engine.shutdown()?;
    eprintln!("stopped by signal {signal}");
    print!("{stats}");
    if let Some(capture) = capture {
        capture.finish()?;
    }
    Ok(ExitCode::SUCCESS)
}
