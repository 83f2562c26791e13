//! The `tomato-guest` binary's root, compiled by `build.rs` with rustc
//! (static, std only); the modules are the library's own files.

#[allow(dead_code)]
mod conf;
#[allow(dead_code)]
mod program;
#[allow(dead_code)]
mod status;

fn main() {
    std::process::exit(program::run(std::env::args_os().collect()));
}
