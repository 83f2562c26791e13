//! Builds the static `tomato-guest` binary into `OUT_DIR` with the rustc
//! Cargo uses, `-C target-feature=+crt-static` for it alone (a Cargo
//! binary target cannot be static without making every binary and proc
//! macro of the workspace static too).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    for file in ["src/main_static.rs", "src/program.rs", "src/status.rs", "src/conf.rs"] {
        println!("cargo:rerun-if-changed={file}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("tomato-guest");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let status = Command::new(rustc)
        .arg(manifest.join("src/main_static.rs"))
        .args(["--crate-name", "tomato_guest", "--crate-type", "bin", "--edition", "2024", "--target", &target])
        .args(["-C", "opt-level=s", "-C", "panic=abort", "-C", "codegen-units=1", "-C", "strip=symbols"])
        .args(["-C", "target-feature=+crt-static", "-C", "debuginfo=0"])
        .env("CARGO_PKG_VERSION", std::env::var("CARGO_PKG_VERSION").unwrap_or_default())
        .arg("-o")
        .arg(&out)
        .status()
        .expect("running rustc for tomato-guest");
    assert!(status.success(), "building the static tomato-guest binary failed");
}
