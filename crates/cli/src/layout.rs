//! `tomato layout expand|views|check-view`: DETER layouts (topdl) offline.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use model::file::topdl::{self, Topdl, WriteConfig};
use model::layout::{Budget, ExpandConfig, View, ViewCheck, check_view, view, views};
use model::problem;

/// Exit code when the isomorphism check could not decide in time.
pub const UNDECIDED: u8 = 3;

/// Subcommands of `tomato layout`.
#[derive(Subcommand)]
pub enum LayoutCommand {
    /// Expand a layout's regions, or show another of its views, as topdl.
    Expand {
        /// The layout (topdl XML); `-` reads standard input.
        file: String,
        /// full (full_layout), minimal (minimal_layout), fragment/NAME, or a
        /// region path like /site1 (the names its expansion gave).
        #[arg(long, default_value = "full", value_parser = View::parse)]
        view: View,
        /// The outer XML element of the output.
        #[arg(long, default_value = topdl::DEFAULT_OUTER)]
        outer: String,
        /// Most elements and substrates the expansion may create.
        #[arg(long, default_value_t = model::layout::expand::DEFAULT_MAX_VERTICES)]
        max_vertices: usize,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<String>,
    },
    /// List the views of a layout.
    Views {
        /// The layout (topdl XML).
        file: String,
    },
    /// Check that VIEW describes the same layout as LAYOUT (isomorphic after
    /// expansion; names both chose must match); prints the name mapping.
    /// Exit codes: 0 isomorphic, 1 not (or a broken file), 3 undecided in time.
    CheckView {
        /// The current layout.
        layout: String,
        /// The proposed view.
        view: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Give up after this many search steps.
        #[arg(long, default_value_t = u64::MAX)]
        max_steps: u64,
    },
}

fn read(path: &str) -> anyhow::Result<Option<Topdl>> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
    };
    match topdl::read(&text) {
        Ok(doc) => Ok(Some(doc)),
        Err(problems) => {
            report(path, &problems);
            Ok(None)
        }
    }
}

fn report(path: &str, problems: &[model::Problem]) {
    let text = problem::report(problems).lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n");
    eprintln!("{path}: {} problem(s)\n{text}", problems.len());
}

/// Runs a `tomato layout` subcommand.
pub fn run(cmd: LayoutCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LayoutCommand::Expand { file, view: which, outer, max_vertices, output } => {
            let Some(doc) = read(&file)? else { return Ok(ExitCode::from(1)) };
            let shown = match view(&doc, &which, &ExpandConfig { max_vertices }) {
                Ok(t) => t,
                Err(problems) => {
                    report(&file, &problems);
                    return Ok(ExitCode::from(1));
                }
            };
            let text = topdl::write(&shown, &WriteConfig { outer: &outer });
            match output {
                Some(out) => std::fs::write(&out, text).with_context(|| format!("writing {out}"))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        LayoutCommand::Views { file } => {
            let Some(doc) = read(&file)? else { return Ok(ExitCode::from(1)) };
            match views(&doc, &ExpandConfig::default()) {
                Ok(names) => {
                    for n in names {
                        println!("{n}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    report(&file, &problems);
                    Ok(ExitCode::from(1))
                }
            }
        }
        LayoutCommand::CheckView { layout, view: view_path, timeout, max_steps } => {
            let (Some(current), Some(candidate)) = (read(&layout)?, read(&view_path)?) else {
                return Ok(ExitCode::from(1));
            };
            let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
            let mut keep_going = |_steps: u64| Instant::now() < deadline;
            let mut budget = Budget { max_steps, keep_going: Some(&mut keep_going) };
            let started = Instant::now();
            let answer = match check_view(&current, &candidate, &ExpandConfig::default(), &mut budget) {
                Ok(answer) => answer,
                Err(problems) => {
                    report(&format!("{layout} or {view_path}"), &problems);
                    return Ok(ExitCode::from(1));
                }
            };
            let took = started.elapsed().as_secs_f64() * 1000.0;
            match answer {
                ViewCheck::Isomorphic(pairs) => {
                    println!(
                        "isomorphic ({} elements and substrates, {took:.1} ms); view name -> layout name:",
                        pairs.len()
                    );
                    for (v, l) in pairs {
                        println!("  {v} -> {l}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                ViewCheck::NotIsomorphic(why) => {
                    println!("not isomorphic: {why}");
                    Ok(ExitCode::from(1))
                }
                ViewCheck::Undecided(steps) => {
                    println!(
                        "could not decide in time: stopped after {steps} steps and {took:.1} ms \
                         (raise --timeout or --max-steps)"
                    );
                    Ok(ExitCode::from(UNDECIDED))
                }
            }
        }
    }
}
