//! VDE as it is usually used for an emulated link: two `vde_switch`
//! processes, each with a tap (`-t`) created inside one host namespace,
//! joined by `wirefilter -v sock0:sock1`. Every process is ours, ended by
//! its pid; the sockets live in a directory of ours that is removed.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dataplane::lab::run;

use crate::guard::{Proc, TempDir};
use crate::iperf::in_ns;

/// Name of the tap in host `i`'s namespace.
pub fn tap(i: usize) -> String {
    format!("vt{i}")
}

/// A running VDE pair of switches and the wire between them.
#[derive(Debug)]
pub struct Vde {
    // Field order is drop order: the wire, then the switches, then the
    // directory with their sockets.
    wire: Option<Proc>,
    switches: Vec<Proc>,
    dir: TempDir,
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("timed out waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

impl Vde {
    /// Starts a switch with tap `vt<i>` in each of `namespaces` (address
    /// `addrs[i]`/24, up) and an unimpaired wirefilter between them.
    pub fn start(namespaces: [&str; 2], addrs: [&str; 2]) -> io::Result<Vde> {
        let dir = TempDir::new("vde")?;
        let mut vde = Vde { wire: None, switches: Vec::new(), dir };
        for (i, ns) in namespaces.iter().enumerate() {
            let sock = vde.sock(i);
            let sock_str = sock.to_string_lossy().to_string();
            let log = vde.dir.path().join(format!("switch{i}.log"));
            let tap = tap(i);
            let mut p = Proc::spawn(in_ns(ns, "vde_switch", &["-s", &sock_str, "-t", &tap]), "vde_switch", &log)?;
            wait_for(&format!("vde_switch {sock_str}"), Duration::from_secs(3), || {
                p.has_exited() || sock.join("ctl").exists()
            })?;
            if p.has_exited() {
                return Err(io::Error::other(format!("vde_switch ended; see {}", log.display())));
            }
            vde.switches.push(p);
            run("ip", &["-n", ns, "addr", "add", &format!("{}/24", addrs[i]), "dev", &tap])?;
            run("ip", &["-n", ns, "link", "set", &tap, "up"])?;
        }
        vde.set_wire(&[])?;
        Ok(vde)
    }

    fn sock(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("switch{i}"))
    }

    /// Replaces the wirefilter by one with these options (e.g. `-d 10`);
    /// none gives an unimpaired wire.
    pub fn set_wire(&mut self, options: &[String]) -> io::Result<()> {
        self.wire = None;
        let plugs = format!("{}:{}", self.sock(0).display(), self.sock(1).display());
        let mut args = vec!["-v", plugs.as_str()];
        args.extend(options.iter().map(String::as_str));
        let mut command = std::process::Command::new("wirefilter");
        command.args(&args);
        let log = self.dir.path().join("wirefilter.log");
        let mut wire = Proc::spawn(command, "wirefilter", &log)?;
        // wirefilter reports nothing once both plugs are connected, so give
        // it a moment and check that it still runs (it exits when a plug
        // fails).
        std::thread::sleep(Duration::from_millis(300));
        if wire.has_exited() {
            return Err(io::Error::other(format!("wirefilter ended; see {}", log.display())));
        }
        self.wire = Some(wire);
        Ok(())
    }
}
