//! `tomato topology validate|convert|import|plan`: topology files offline.

use std::process::ExitCode;

use crate::client::Remote;
use anyhow::Context;
use clap::Subcommand;
use model::file::{self, Format, Loaded};
use model::{ComponentId, State, States, Topology, TopologyAction, check_update, plan, problem};

/// Subcommands of `tomato topology`.
#[derive(Subcommand)]
pub enum TopologyCommand {
    /// Check files (YAML, JSON or ToMaTo exports); prints every problem.
    Validate {
        /// Topology files; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<String>,
        /// Also check the files as changes to this (running) topology.
        #[arg(long, value_name = "CURRENT")]
        against: Option<String>,
        /// The state the components of CURRENT are in.
        #[arg(long, default_value = "started", requires = "against", value_parser = parse_state)]
        state: State,
    },
    /// Convert a file (ours, ToMaTo's, or a topdl layout with its regions expanded) to the normalized YAML, JSON, ToMaTo's export format or topdl.
    Convert {
        /// The topology file; `-` reads standard input.
        file: String,
        /// Output format.
        #[arg(long, default_value = "yaml", value_parser = parse_format)]
        to: Format,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<String>,
    },
    /// Show the ordered component actions of a topology action.
    Plan {
        /// The topology file.
        file: String,
        /// prepare, start, stop or destroy.
        #[arg(value_parser = parse_action)]
        action: TopologyAction,
        /// The state all components are in now.
        #[arg(long, default_value = "created", value_parser = parse_state)]
        state: State,
    },
    /// List your topologies on the backend (after `tomato login`).
    List {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a topology on the backend: elements, connections, states.
    Info {
        /// The topology's id or name.
        topology: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Prepare a topology on the backend.
    Prepare(Which),
    /// Start a topology on the backend (prepares first).
    Start(Which),
    /// Stop a topology on the backend.
    Stop(Which),
    /// Destroy a topology on the backend (stops first).
    Destroy(Which),
    /// Remove a destroyed topology from the backend.
    Remove(Which),
    /// Create a topology on the backend from a file in one `topology_import` call (a ToMaTo export as it is, other formats converted), not started.
    #[command(alias = "upload")]
    Import {
        /// The topology file.
        file: String,
    },
    /// Write a topology on the backend as a file (component names from `tomato up`).
    Export {
        /// The topology's id or name.
        topology: String,
        /// Output format.
        #[arg(long, default_value = "yaml", value_parser = parse_format)]
        to: Format,
    },
}

/// Which topology on the backend.
#[derive(clap::Args)]
pub struct Which {
    /// The topology's id or name.
    topology: String,
}

fn parse_state(s: &str) -> Result<State, String> {
    State::parse(s).ok_or_else(|| format!("`{s}` is not a state; allowed: created, prepared, started"))
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("`{s}` is not a format; allowed: {}", Format::NAMES.join(", ")))
}

fn parse_action(s: &str) -> Result<TopologyAction, String> {
    TopologyAction::parse(s)
        .ok_or_else(|| format!("`{s}` is not a topology action; allowed: prepare, start, stop, destroy"))
}

/// Runs a `tomato topology` subcommand.
pub fn run(cmd: TopologyCommand) -> anyhow::Result<ExitCode> {
    let action = |w: Which, action| crate::client::topology(Remote::Action { topology: w.topology, action });
    match cmd {
        TopologyCommand::List { json } => crate::client::topology(Remote::List { json }),
        TopologyCommand::Info { topology, json } => crate::client::topology(Remote::Info { topology, json }),
        TopologyCommand::Prepare(w) => action(w, "prepare"),
        TopologyCommand::Start(w) => action(w, "start"),
        TopologyCommand::Stop(w) => action(w, "stop"),
        TopologyCommand::Destroy(w) => action(w, "destroy"),
        TopologyCommand::Remove(w) => crate::client::topology(Remote::Remove { topology: w.topology }),
        TopologyCommand::Export { topology, to } => crate::client::topology(Remote::Export { topology, to }),
        TopologyCommand::Import { file } => crate::client::topology(Remote::Import { file }),
        TopologyCommand::Validate { files, against, state } => {
            let current = match &against {
                Some(path) => match load_valid(path)? {
                    Some(loaded) => Some(loaded.topology),
                    None => return Ok(ExitCode::from(1)),
                },
                None => None,
            };
            let mut ok = true;
            for path in &files {
                let Some(loaded) = load_valid(path)? else {
                    ok = false;
                    continue;
                };
                let t = &loaded.topology;
                let children: usize = t.elements.iter().map(|e| e.children.len()).sum();
                if let Some(current) = &current {
                    match check_update(current, &uniform_states(current, state), t) {
                        Ok(changes) => println!(
                            "{path}: ok as a change of {} while {state}: {} change(s)",
                            against.as_deref().unwrap_or_default(),
                            changes.len()
                        ),
                        Err(problems) => {
                            eprintln!(
                                "{path}: {} change(s) not allowed while {state}\n{}",
                                problems.len(),
                                indent(&problem::report(&problems))
                            );
                            ok = false;
                        }
                    }
                } else {
                    println!(
                        "{path}: ok ({} format, {} elements with {children} interfaces/endpoints, {} connections)",
                        loaded.format,
                        t.elements.len(),
                        t.connections.len()
                    );
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        TopologyCommand::Convert { file: path, to, output } => {
            let Some(Loaded { topology, .. }) = load_valid(&path)? else { return Ok(ExitCode::from(1)) };
            let text = file::write(&topology, to);
            match output {
                Some(out) => std::fs::write(&out, text).with_context(|| format!("writing {out}"))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        TopologyCommand::Plan { file: path, action, state } => {
            let Some(Loaded { topology, .. }) = load_valid(&path)? else { return Ok(ExitCode::from(1)) };
            for (n, step) in plan(&topology, &uniform_states(&topology, state), action).iter().enumerate() {
                println!("{:>4}. {:<9} {} ({} -> {})", n + 1, step.action, step.component, step.from, step.to);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Every component in `state`, or the closest state its kind has.
fn uniform_states(topology: &Topology, state: State) -> States {
    let mut states = States::new();
    for (path, el) in topology.walk() {
        let s = if el.kind.states.contains(&state) {
            state
        } else {
            el.kind.states.iter().copied().filter(|s| *s <= state).max().unwrap_or(el.kind.initial_state())
        };
        states.insert(ComponentId::Element(path), s);
    }
    for con in &topology.connections {
        states.insert(con.id(), if state == State::Started { State::Started } else { State::Created });
    }
    states
}

fn read(path: &str) -> anyhow::Result<Loaded> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
    };
    let hint = Format::from_path(path);
    Ok(file::load(&text, hint))
}

/// Loads a file and prints its notes and problems; `None` when it has problems.
fn load_valid(path: &str) -> anyhow::Result<Option<Loaded>> {
    let loaded = read(path)?;
    print_notes(path, &loaded);
    if loaded.problems.is_empty() {
        Ok(Some(loaded))
    } else {
        eprintln!("{path}: {} problem(s)\n{}", loaded.problems.len(), indent(&problem::report(&loaded.problems)));
        Ok(None)
    }
}

fn print_notes(path: &str, loaded: &Loaded) {
    if loaded.format == Format::Topdl {
        for note in &loaded.notes {
            eprintln!("{path}: note: {note}");
        }
    } else if !loaded.notes.is_empty() {
        eprintln!("{path}: note: {} runtime field(s) of the ToMaTo export dropped", loaded.notes.len());
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}
