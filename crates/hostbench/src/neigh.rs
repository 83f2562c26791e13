//! The kernel's neighbour table limits (`gc_thresh1/2/3`, IPv4 and IPv6).
//! They are global in the initial namespace: every container's entries
//! count against them, and at about 1,000 hosts on one segment the table
//! overflows (`neighbour table overflow`, lost ARP). [`Raised`] lifts them
//! for the run and puts the old values back when dropped, and on SIGINT or
//! SIGTERM before the process exits.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};

const KNOBS: [&str; 6] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh1",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
    "/proc/sys/net/ipv6/neigh/default/gc_thresh1",
    "/proc/sys/net/ipv6/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv6/neigh/default/gc_thresh3",
];

/// Old values to restore, shared with the signal path.
static SAVED: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

fn restore() {
    let saved = std::mem::take(&mut *SAVED.lock().unwrap_or_else(|e| e.into_inner()));
    // In reverse: thresh3 comes down after thresh2 and thresh1.
    for (path, old) in saved.iter().rev() {
        if let Err(e) = std::fs::write(path, old) {
            eprintln!("neighbour table: could not restore {} to {old}: {e}", path.display());
        }
    }
    if !saved.is_empty() {
        println!("  neighbour table limits restored");
    }
}

/// The raised limits; dropping it restores them.
pub struct Raised;

impl Raised {
    /// Raises gc_thresh1/2/3 to at least want/4, want/2, want (never lowers).
    pub fn at_least(want: u64) -> Result<Raised> {
        let targets = [want / 4, want / 2, want];
        let mut changed = Vec::new();
        for (i, knob) in KNOBS.iter().enumerate() {
            let path = PathBuf::from(knob);
            let old = std::fs::read_to_string(&path).with_context(|| format!("read {knob}"))?.trim().to_string();
            let now: u64 = old.parse().unwrap_or(0);
            let target = targets[i % 3];
            if target > now {
                SAVED.lock().unwrap_or_else(|e| e.into_inner()).push((path.clone(), old.clone()));
                std::fs::write(&path, target.to_string()).with_context(|| format!("write {knob}"))?;
                changed.push(format!("{} {old}->{target}", knob.trim_start_matches("/proc/sys/net/")));
            }
        }
        if !changed.is_empty() {
            println!("  neighbour table limits raised for the run: {}", changed.join(", "));
        }
        // SIGINT/SIGTERM: restore before the process goes. The main task
        // also reacts to Ctrl-C (and drops the guard); restoring twice is
        // harmless.
        tokio::spawn(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {
                    restore();
                    std::process::exit(143);
                }
            }
            restore();
        });
        Ok(Raised)
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        restore();
    }
}
