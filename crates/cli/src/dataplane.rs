//! `tomato dataplane link|switch`: joins existing interfaces with the data
//! plane in the foreground, before the hostmanager exists.
//!
//! The command opens AF_PACKET ports on the named interfaces (which must
//! exist and be up), runs an engine until SIGINT or SIGTERM, and prints the
//! counters. It changes nothing on the interfaces that outlives it: the
//! promiscuous membership belongs to its sockets and ends with them.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use dataplane::{EngineConfig, EngineHandle, PacketPort, Port, sys};

/// Subcommands of `tomato dataplane`.
#[derive(Subcommand)]
pub enum DataplaneCommand {
    /// Joins IF_A and IF_B with an emulated link until Ctrl-C.
    ///
    /// Attributes use the model's names for a `bridge` connection between
    /// [IF_A, IF_B]: `*_from` shapes frames IF_A -> IF_B, `*_to` frames
    /// IF_B -> IF_A, with the model's defaults (including bandwidth 10000
    /// kbit/s each way) for those not given; e.g.
    /// `tomato dataplane link veth1 veth2 delay_to=10 lossratio_from=1`.
    /// `tomato capabilities bridge` lists them all.
    Link {
        /// The first interface (A).
        if_a: String,
        /// The second interface (B).
        if_b: String,
        /// Attributes as key=value.
        attrs: Vec<String>,
        /// Open the interfaces in this network namespace (`ip netns` name).
        #[arg(long)]
        netns: Option<String>,
    },
    /// Joins interfaces with a learning switch (or a hub) until Ctrl-C.
    Switch {
        /// The interfaces, at least two.
        #[arg(required = true, num_args = 2..)]
        interfaces: Vec<String>,
        /// Flood every frame to every other port instead of learning.
        #[arg(long)]
        hub: bool,
        /// Open the interfaces in this network namespace (`ip netns` name).
        #[arg(long)]
        netns: Option<String>,
    },
}

fn open(name: &str, netns: Option<&str>) -> anyhow::Result<Box<dyn Port>> {
    let port = match netns {
        None => PacketPort::open(name),
        Some(ns) => {
            let owned = name.to_string();
            sys::in_netns(&format!("/run/netns/{ns}"), move || PacketPort::open(&owned))?
        }
    };
    Ok(Box::new(port.with_context(|| format!("opening interface {name}"))?))
}

/// Runs a `tomato dataplane` subcommand.
pub fn run(cmd: DataplaneCommand) -> anyhow::Result<ExitCode> {
    // Before any thread starts, so the engine thread inherits the mask and
    // the signals wait for `wait_for_termination`.
    sys::block_termination_signals()?;
    let engine = EngineHandle::spawn(EngineConfig::standard())?;
    match cmd {
        DataplaneCommand::Link { if_a, if_b, attrs, netns } => {
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
            engine.add_link(a, b, ab, ba)?;
            eprintln!("link {if_a} <-> {if_b} running (seed {seed}); Ctrl-C stops it");
        }
        DataplaneCommand::Switch { interfaces, hub, netns } => {
            let ports = interfaces.iter().map(|i| open(i, netns.as_deref())).collect::<anyhow::Result<Vec<_>>>()?;
            let mode = if hub { netem::SwitchMode::Hub } else { netem::SwitchMode::Learning };
            engine.add_switch(mode, ports)?;
            eprintln!("{} of {} running; Ctrl-C stops it", if hub { "hub" } else { "switch" }, interfaces.join(", "));
        }
    }
    let signal = sys::wait_for_termination()?;
    let stats = engine.shutdown()?;
    eprintln!("stopped by signal {signal}");
    print!("{stats}");
    Ok(ExitCode::SUCCESS)
}
