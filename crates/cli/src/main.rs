//! `tomato`: the one binary of ToMaTo-rs.
//!
//! Commands are thin: each turns flags into a call of a library crate and
//! prints the result. Exit codes: 0 success, 1 the input has problems (each
//! printed on its own line), 2 wrong usage, 3 `layout check-view` could not
//! decide in time.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backend;
mod capabilities;
mod cert;
mod console;
mod dataplane;
mod hostmanager;
mod layout;
mod topology;

/// ToMaTo-rs: a network experimentation testbed.
#[derive(Parser)]
#[command(name = "tomato", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with topology files: validate, convert, plan.
    #[command(subcommand)]
    Topology(topology::TopologyCommand),
    /// DETER layouts (topdl): expand regions, show views, check a new view.
    #[command(subcommand)]
    Layout(layout::LayoutCommand),
    /// Show element and connection types with their attributes and actions.
    Capabilities(capabilities::CapabilitiesArgs),
    /// Join existing interfaces with an emulated link or a switch (foreground).
    #[command(subcommand)]
    Dataplane(dataplane::DataplaneCommand),
    /// Certificates: the testbed CA, host and backend certificates, a host's accepted backends.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// The per-host daemon: containers, switches, links, fileserver, accounting.
    #[command(subcommand)]
    Hostmanager(hostmanager::HostmanagerCommand),
    /// Talk to one hostmanager as a backend: API calls and consoles.
    #[command(subcommand)]
    Host(hostmanager::HostCommand),
    /// The backend: the API server and its bootstrap (first accounts, hosts).
    #[command(subcommand)]
    Backend(backend::BackendCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topology(cmd) => topology::run(cmd),
        Command::Layout(cmd) => layout::run(cmd),
        Command::Capabilities(args) => capabilities::run(args),
        Command::Dataplane(cmd) => dataplane::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Hostmanager(cmd) => hostmanager::run(cmd),
        Command::Host(cmd) => hostmanager::run_client(cmd),
        Command::Backend(cmd) => backend::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
