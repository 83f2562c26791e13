//! `tomato`: the one binary of ToMaTo-rs.
//!
//! Commands are thin: each turns flags into a call of a library crate and
//! prints the result. Exit codes: 0 success, 1 the input has problems (each
//! printed on its own line), 2 wrong usage, 3 `layout check-view` could not
//! decide in time.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod archive;
mod backend;
mod capabilities;
mod captures;
mod cert;
mod client;
mod console;
mod dataplane;
mod hostmanager;
mod layout;
mod serve;
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
    /// Topology files (validate, convert, plan) and topologies on the backend (list, info, start, ...).
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
    /// The whole testbed on this machine (root): backend on SQLite, a local hostmanager, first admin.
    Serve(serve::ServeArgs),
    /// Log in to a backend: checks the account and saves URL, user and password (mode 0600).
    Login(client::LoginArgs),
    /// Create a topology from a file on the backend and start it, one line per component.
    Up(client::UpArgs),
    /// Stop, destroy and remove a topology on the backend.
    Down(client::Which),
    /// Elements of a topology on the backend: run commands, show them.
    #[command(subcommand)]
    Element(client::ElementCommand),
    /// Connections of a topology on the backend: change a running link, show it.
    #[command(subcommand)]
    Connection(client::ConnectionCommand),
    /// Usage and monthly quota of your account (or another's, or a topology's).
    Usage(client::UsageArgs),
    /// Executable archives (nlXTP): upload to elements and run, status, download the results.
    #[command(subcommand)]
    Archive(archive::ArchiveCommand),
    /// Packet capture on a connection: start, stop, download, live to stdout.
    #[command(subcommand)]
    Capture(captures::CaptureCommand),
    /// Print the shell completion script: `tomato completions bash > /etc/bash_completion.d/tomato`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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
        Command::Serve(args) => serve::run(args),
        Command::Login(args) => client::login(args),
        Command::Up(args) => client::up(args),
        Command::Down(which) => client::down(which),
        Command::Element(cmd) => client::element(cmd),
        Command::Connection(cmd) => client::connection(cmd),
        Command::Usage(args) => client::usage(args),
        Command::Archive(cmd) => archive::run(cmd),
        Command::Capture(cmd) => captures::run(cmd),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tomato", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
