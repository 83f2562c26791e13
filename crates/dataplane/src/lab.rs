//! Throwaway network namespaces for integration tests and benchmarks.
//!
//! A [`Lab`] creates one namespace for the joined interfaces (`x`) and one
//! per host (`h0`, `h1`, ...), each host with a veth whose other end sits in
//! `x`, all named `tmt-<pid>-<n>-...` so parallel runs never collide. It
//! touches nothing outside its own namespaces, and removes them when
//! dropped, also while a failing test unwinds. It shells out to `ip`
//! (iproute2), as the tests' users would.

use std::io;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{PacketPort, sys};

static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// A set of namespaces that disappears on drop.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    hosts: usize,
}

/// Runs a command and fails with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(program).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// Whether this process may create namespaces and raw sockets (euid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Lab {
    /// Creates the engine namespace and `hosts` host namespaces; host `i`
    /// has interface `e<i>` with address `10.77.0.<i+1>/24`, and its peer
    /// `j<i>` is up in the engine namespace.
    pub fn new(hosts: usize) -> io::Result<Lab> {
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("tmt-{}-{n}", std::process::id());
        let mut lab = Lab { prefix, namespaces: Vec::new(), hosts };
        let x = lab.ns_x();
        lab.add_ns(&x)?;
        for i in 0..hosts {
            let h = lab.ns_host(i);
            lab.add_ns(&h)?;
            let (e, j) = (format!("e{i}"), format!("j{i}"));
            run("ip", &["link", "add", &e, "netns", &h, "type", "veth", "peer", "name", &j, "netns", &x])?;
            run("ip", &["-n", &h, "addr", "add", &format!("10.77.0.{}/24", i + 1), "dev", &e])?;
            run("ip", &["-n", &h, "link", "set", "lo", "up"])?;
            run("ip", &["-n", &h, "link", "set", &e, "up"])?;
            run("ip", &["-n", &x, "link", "set", &j, "up"])?;
        }
        Ok(lab)
    }

    fn add_ns(&mut self, name: &str) -> io::Result<()> {
        run("ip", &["netns", "add", name])?;
        self.namespaces.push(name.to_string());
        Ok(())
    }

    /// The namespace holding the joined ends `j<i>`.
    pub fn ns_x(&self) -> String {
        format!("{}-x", self.prefix)
    }

    /// The namespace of host `i`.
    pub fn ns_host(&self, i: usize) -> String {
        format!("{}-h{i}", self.prefix)
    }

    /// The address of host `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// Opens a packet port on `j<i>` inside the engine namespace.
    pub fn port(&self, i: usize) -> io::Result<PacketPort> {
        let name = format!("j{i}");
        sys::in_netns(&format!("/run/netns/{}", self.ns_x()), move || PacketPort::open(&name))?
    }

    /// Opens a packet port on any interface `name` inside the engine
    /// namespace (e.g. one end of a veth made by [`Lab::add_veth_x`]).
    pub fn port_named(&self, name: &str) -> io::Result<PacketPort> {
        let name = name.to_string();
        sys::in_netns(&format!("/run/netns/{}", self.ns_x()), move || PacketPort::open(&name))?
    }

    /// Creates a veth pair `a`/`b` with both ends up inside the engine
    /// namespace, to join links of ours in series.
    pub fn add_veth_x(&self, a: &str, b: &str) -> io::Result<()> {
        let x = self.ns_x();
        run("ip", &["-n", &x, "link", "add", a, "type", "veth", "peer", "name", b])?;
        run("ip", &["-n", &x, "link", "set", a, "up"])?;
        run("ip", &["-n", &x, "link", "set", b, "up"]).map(|_| ())
    }

    /// Turns IPv6 off in every namespace of the lab (existing and future
    /// interfaces), so no router solicitation or neighbour discovery frame
    /// crosses a link under measurement and draws from its random streams.
    pub fn disable_ipv6(&self) -> io::Result<()> {
        for ns in &self.namespaces {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
        }
        Ok(())
    }

    /// Runs `program args` inside host `i`'s namespace.
    pub fn exec(&self, i: usize, program: &str, args: &[&str]) -> io::Result<Output> {
        let ns = self.ns_host(i);
        let mut all = vec!["netns", "exec", ns.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that runs `program args` inside host `i`'s namespace, for
    /// background processes.
    pub fn command(&self, i: usize, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns_host(i), program]).args(args);
        c
    }

    /// Joins `j<i>` of every host in a Linux bridge in the engine
    /// namespace, for comparisons.
    pub fn linux_bridge(&self) -> io::Result<()> {
        let x = self.ns_x();
        run("ip", &["-n", &x, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &x, "link", "set", "br0", "up"])?;
        for i in 0..self.hosts {
            run("ip", &["-n", &x, "link", "set", &format!("j{i}"), "master", "br0"])?;
        }
        Ok(())
    }

    /// Removes the Linux bridge again.
    pub fn remove_linux_bridge(&self) -> io::Result<()> {
        run("ip", &["-n", &self.ns_x(), "link", "del", "br0"]).map(|_| ())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends, and with them the
        // peers in the other namespaces.
        for ns in self.namespaces.iter().rev() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Parses `rtt min/avg/max/mdev = a/b/c/d ms` from ping's output.
pub fn ping_rtt(output: &str) -> Option<(f64, f64, f64)> {
    let line = output.lines().find(|l| l.contains("min/avg/max"))?;
    let values = line.split('=').nth(1)?.trim().split(' ').next()?;
    let mut it = values.split('/').map(|v| v.parse::<f64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Parses `N packets transmitted, M received` from ping's output.
pub fn ping_counts(output: &str) -> Option<(u32, u32)> {
    let line = output.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line.split(',').map(|part| part.split_whitespace().next().and_then(|n| n.parse().ok()));
    Some((nums.next()??, nums.next()??))
}

/// Runs an iperf3 TCP test from host `client` to host `server` for `secs`
/// seconds and returns the receiver's rate in bit/s.
pub fn iperf3(lab: &Lab, client: usize, server: usize, secs: u32) -> io::Result<f64> {
    let mut srv = lab.command(server, "iperf3", &["-s", "-1", "-B", &lab.addr(server)]).spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = lab.exec(client, "iperf3", &["-c", &lab.addr(server), "-t", &secs.to_string(), "-f", "m"]);
    let _ = srv.kill();
    let _ = srv.wait();
    let text = String::from_utf8_lossy(&out?.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("receiver"))
        .ok_or_else(|| io::Error::other(format!("no receiver line in iperf3 output:\n{text}")))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at =
        words.iter().position(|w| *w == "Mbits/sec").ok_or_else(|| io::Error::other(format!("no rate in: {line}")))?;
    let mbit: f64 = words[at - 1].parse().map_err(|_| io::Error::other(format!("bad rate in: {line}")))?;
    Ok(mbit * 1e6)
}
