//! `tomato archive upload|status|download`: executable archives (nlXTP)
//! as ToMaTo's web UI and `upload_and_use_rextfv` moved them: the element
//! action `rextfv_upload_grant`, the file POSTed to the host's fileserver
//! with the grant, then `rextfv_upload_use`; `--wait` polls
//! `rextfv_run_status` until the run is done. Downloads are
//! `rextfv_download_grant` and a GET of the grant.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Api, Progress, find_element, topology_id};

/// How often `--wait` asks for the run status.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Subcommands of `tomato archive`.
#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Upload an executable archive (a tar.gz with auto_exec.sh, or a directory to pack) to elements and run it:
    /// `tomato archive upload lan pc1 pc2 basic.tar.gz --wait`.
    Upload {
        /// The topology's id or name.
        topology: String,
        /// The elements (names in the file, or ids), then the archive: ELEMENT... FILE; with --all only FILE.
        #[arg(required = true, value_name = "ELEMENT... FILE")]
        args: Vec<String>,
        /// Upload to every element of the topology that runs executable archives.
        #[arg(long)]
        all: bool,
        /// Wait until every run is done; print each custom status and exit code (exit 1 if one failed).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Show an element's run status (ToMaTo's rextfv_run_status).
    Status {
        /// The topology's id or name.
        topology: String,
        /// The element's name in its file (pc1) or its id.
        element: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download an element's archive directory (script, outputs, exec_status/) as a tar.gz.
    Download {
        /// The topology's id or name.
        topology: String,
        /// The element's name in its file (pc1) or its id.
        element: String,
        /// Where to write the tar.gz.
        out: PathBuf,
    },
}

/// Runs `tomato archive ...`.
pub fn run(cmd: ArchiveCommand) -> anyhow::Result<ExitCode> {
    let api = Api::connect()?;
    match cmd {
        ArchiveCommand::Upload { topology, args, all, wait, timeout } => {
            upload(&api, &topology, args, all, wait, Duration::from_secs(timeout))
        }
        ArchiveCommand::Status { topology, element, json } => {
            let (name, id) = element_id(&api, &topology, &element)?;
            let info = api.call("element_info", json!([id, true]))?;
            let status = info["attrs"]["rextfv_run_status"].clone();
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{name}: {}", describe(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        ArchiveCommand::Download { topology, element, out } => {
            let (name, id) = element_id(&api, &topology, &element)?;
            let info = api.call("element_info", json!([id, false]))?;
            let grant = api.call("element_action", json!([id, "rextfv_download_grant"]))?;
            let bytes = api.download(&info, &grant, &out)?;
            println!("{name}: archive directory written to {} ({bytes} bytes)", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The element `which` of topology `topology`: its name for messages and
/// its id.
fn element_id(api: &Api, topology: &str, which: &str) -> anyhow::Result<(String, i64)> {
    let tid = topology_id(api, topology)?;
    let info = api.call("topology_info", json!([tid, true]))?;
    let e = find_element(&info, which)?;
    Ok((which.to_string(), e["id"].as_i64().context("topology_info: an element without id")?))
}

/// A run status in words: the custom status and the exit code matter most.
fn describe(status: &Value) -> String {
    if status.is_null() {
        return "this element does not run executable archives (no rextfv_run_status)".into();
    }
    if status["readable"] != json!(true) {
        return "no run yet (nothing uploaded, or the archive waits for the element to start)".into();
    }
    let custom = match status["custom"].as_str() {
        Some(c) => format!("; custom status: {c}"),
        None => "; no custom status".into(),
    };
    if status["done"] == json!(true) {
        let code = match status["exit_code"].as_i64() {
            Some(0) => "exit code 0".to_string(),
            Some(n) => format!("FAILED, exit code {n}"),
            None => "exit code unknown".into(),
        };
        format!("done, {code}{custom}")
    } else if status["isAlive"] == json!(true) {
        format!("running{custom}")
    } else {
        format!("stale: the monitor stopped reporting for 10 minutes{custom}")
    }
}

/// The archive's bytes: a tar.gz as it is, or a directory packed (its
/// contents at the archive's top, as `tar -C DIR .` would).
fn archive_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("archive `{}`", path.display()))?;
    if meta.is_dir() {
        if !path.join("auto_exec.sh").is_file() {
            bail!("archive `{}`: the directory has no auto_exec.sh, the script an archive runs", path.display());
        }
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        // Entry by entry, so the archive holds no `.` entry of its own.
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", path.display()))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let (name, full) = (entry.file_name(), entry.path());
            let packed = if entry.file_type()?.is_dir() {
                tar.append_dir_all(&name, &full)
            } else {
                tar.append_path_with_name(&full, &name)
            };
            packed.with_context(|| format!("packing {}", full.display()))?;
        }
        return Ok(tar.into_inner()?.finish()?);
    }
    let bytes = std::fs::read(path).with_context(|| format!("archive `{}`", path.display()))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        bail!(
            "archive `{}`: not gzip-compressed; allowed: a .tar.gz with auto_exec.sh at its top, or a directory",
            path.display()
        );
    }
    Ok(bytes)
}

/// The elements of topology `info` that run executable archives (their
/// kind has `rextfv_upload_grant`).
fn archive_elements(info: &Value) -> Vec<Value> {
    let registry = model::registry();
    info["elements"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|e| {
                    e["type"]
                        .as_str()
                        .and_then(|t| registry.get(t))
                        .is_some_and(|k| k.action("rextfv_upload_grant").is_some())
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn label(e: &Value) -> String {
    e["attrs"]["_name"].as_str().map(String::from).unwrap_or_else(|| format!("element {}", e["id"]))
}

fn upload(
    api: &Api,
    topology: &str,
    mut args: Vec<String>,
    all: bool,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let file = PathBuf::from(args.pop().context("FILE: the archive to upload is missing")?);
    let tid = topology_id(api, topology)?;
    let info = api.call("topology_info", json!([tid, true]))?;
    let elements: Vec<Value> = match (all, args.is_empty()) {
        (true, true) => {
            let found = archive_elements(&info);
            if found.is_empty() {
                bail!("--all: topology {tid} has no element that runs executable archives");
            }
            found
        }
        (true, false) => bail!("--all: give only FILE after the topology, not elements ({})", args.join(", ")),
        (false, true) => {
            bail!("ELEMENT: no element named before FILE `{}`; name one or more, or use --all", file.display())
        }
        (false, false) => args.iter().map(|w| find_element(&info, w).cloned()).collect::<anyhow::Result<_>>()?,
    };
    let body = archive_bytes(&file)?;
    let progress = Progress::new(elements.iter().map(label).collect());
    let mut uploaded = Vec::new();
    let mut failed = false;
    for (i, e) in elements.iter().enumerate() {
        let id = e["id"].clone();
        let step = || -> anyhow::Result<Value> {
            progress.set(i, "granting");
            let full = api.call("element_info", json!([id, true]))?;
            if let Some(max) = full["attrs"]["rextfv_max_size"].as_u64()
                && body.len() as u64 > max
            {
                bail!("{} bytes: larger than this element's rextfv_max_size, {max} bytes", body.len());
            }
            let grant = api.call("element_action", json!([id, "rextfv_upload_grant"]))?;
            progress.set(i, &format!("uploading {} bytes", body.len()));
            let t0 = Instant::now();
            api.upload(&full, &grant, body.clone())?;
            let took = t0.elapsed();
            progress.set(i, "unpacking");
            api.call("element_action", json!([id, "rextfv_upload_use"]))?;
            let state = full["state"].as_str().unwrap_or("").to_string();
            let when = if state == "started" { "running" } else { "runs at the next start" };
            progress.set(i, &format!("uploaded in {:.0} ms; {when}", took.as_secs_f64() * 1000.0));
            Ok(json!(state))
        };
        match step() {
            Ok(state) => uploaded.push((i, id, state)),
            Err(e) => {
                failed = true;
                progress.set(i, &format!("error: {e:#}"));
            }
        }
    }
    if wait {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<(usize, Value)> = Vec::new();
        for (i, id, state) in uploaded {
            if state == json!("started") {
                pending.push((i, id));
            } else {
                failed = true;
                progress.set(i, &format!("cannot wait: the element is {state}; the archive runs at its next start"));
            }
        }
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (i, id) in pending {
                let status = api.call("element_info", json!([id, true]))?["attrs"]["rextfv_run_status"].clone();
                let text = describe(&status);
                if status["done"] == json!(true) {
                    failed |= status["exit_code"] != json!(0);
                    progress.set(i, &text);
                } else if status["readable"] == json!(true) && status["isAlive"] != json!(true) {
                    failed = true;
                    progress.set(i, &text);
                } else {
                    still.push((i, id));
                }
            }
            pending = still;
            if !pending.is_empty() {
                if Instant::now() >= deadline {
                    for (i, _) in &pending {
                        progress.set(*i, &format!("still running after {} s (--timeout)", timeout.as_secs()));
                    }
                    failed = true;
                    break;
                }
                std::thread::sleep(POLL_EVERY);
            }
        }
    }
    progress.finish();
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_words() {
        assert!(describe(&json!({"readable": false})).starts_with("no run yet"));
        let done = json!({"readable": true, "done": true, "isAlive": false, "custom": "ok", "exit_code": 0});
        assert_eq!(describe(&done), "done, exit code 0; custom status: ok");
        let bad = json!({"readable": true, "done": true, "isAlive": false, "custom": null, "exit_code": 3});
        assert_eq!(describe(&bad), "done, FAILED, exit code 3; no custom status");
        let running = json!({"readable": true, "done": false, "isAlive": true, "custom": null});
        assert_eq!(describe(&running), "running; no custom status");
    }

    #[test]
    fn archives_are_gzip_or_directories() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.tar");
        std::fs::write(&plain, b"not gzip").unwrap();
        let e = archive_bytes(&plain).unwrap_err().to_string();
        assert!(e.contains("not gzip-compressed") && e.contains("allowed"), "{e}");
        let e = archive_bytes(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no auto_exec.sh"), "{e}");
        std::fs::write(dir.path().join("auto_exec.sh"), b"#!/bin/sh\necho hi\n").unwrap();
        std::fs::remove_file(&plain).unwrap();
        let packed = archive_bytes(dir.path()).unwrap();
        let mut names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(&packed[..]))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["auto_exec.sh"]);
    }
}
