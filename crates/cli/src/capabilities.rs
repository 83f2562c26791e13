//! `tomato capabilities [TYPE] [--json]`.

use std::process::ExitCode;

use clap::Args;
use model::capabilities;
use model::registry::registry;

/// Options of `tomato capabilities`.
#[derive(Args)]
pub struct CapabilitiesArgs {
    /// An element or connection type (ToMaTo names and aliases work too).
    r#type: Option<String>,
    /// Print ToMaTo's `capabilities_element` shape as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints all types, or one type's attributes and actions.
pub fn run(args: CapabilitiesArgs) -> anyhow::Result<ExitCode> {
    match (args.r#type, args.json) {
        (None, false) => print!("{}", capabilities::summary()),
        (None, true) => println!("{}", serde_json::to_string_pretty(&capabilities::all())?),
        (Some(name), json) => {
            let Some(kind) = registry().get(&name) else {
                let known: Vec<&str> = registry().kinds().iter().map(|k| k.name).collect();
                eprintln!("error: unknown type `{name}`; known types: {}", known.join(", "));
                return Ok(ExitCode::from(1));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&kind.capabilities())?);
            } else {
                print!("{}", capabilities::describe(kind));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
