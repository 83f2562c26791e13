//! iperf3 TCP runs between two namespaces, read from iperf3's JSON report
//! (`-J`), with a hook that runs while the client is sending so counters
//! can be sampled over a steady window.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::guard::Proc;

/// What one iperf3 TCP run reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpResult {
    /// Receiver's goodput in bit/s.
    pub received_bps: f64,
    /// Sender's retransmitted segments.
    pub retransmits: u64,
}

/// Reads the receiver's rate and the sender's retransmissions from
/// iperf3's `-J` output; an `error` field becomes the error.
pub fn parse_json(text: &str) -> Result<TcpResult, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("iperf3 JSON: {e}"))?;
    if let Some(error) = v.get("error").and_then(Value::as_str) {
        return Err(format!("iperf3: {error}"));
    }
    let end = v.get("end").ok_or("iperf3 JSON has no `end`")?;
    let received_bps = end
        .pointer("/sum_received/bits_per_second")
        .and_then(Value::as_f64)
        .ok_or("iperf3 JSON has no end.sum_received.bits_per_second")?;
    let retransmits = end.pointer("/sum_sent/retransmits").and_then(Value::as_u64).unwrap_or(0);
    Ok(TcpResult { received_bps, retransmits })
}

/// A command that runs `program args` in namespace `ns`.
pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]).args(args);
    c
}

/// iperf3's default port.
const PORT: u16 = 5201;

/// Whether process `pid` sees a TCP socket listening on [`PORT`] in its
/// network namespace (`/proc/PID/net/tcp` shows the process's namespace).
fn listening(pid: u32) -> bool {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let port = format!(":{PORT:04X}");
    // Columns: sl, local address (hex ip:port), remote address, state (0A = LISTEN).
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() > 3 && cols[1].ends_with(&port) && cols[3] == "0A"
    })
}

/// Runs one TCP stream for `secs` seconds from namespace `client_ns` to a
/// server bound to `server_addr` in `server_ns`. `during` is called once
/// the client runs, with the client's start time, and its result returned
/// (it should end before the test does).
pub fn tcp<T>(
    client_ns: &str,
    server_ns: &str,
    server_addr: &str,
    secs: u32,
    logs: &Path,
    during: impl FnOnce(Instant) -> T,
) -> io::Result<(TcpResult, T)> {
    let log = logs.join("iperf3-server.log");
    let mut server = Proc::spawn(in_ns(server_ns, "iperf3", &["-s", "-1", "-B", server_addr]), "iperf3 -s", &log)?;
    // `ip netns exec` execs iperf3 in place, so the pid is the server's.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !listening(server.pid()) {
        if server.has_exited() || Instant::now() > deadline {
            return Err(io::Error::other(format!("iperf3 server did not start; see {}", log.display())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = Proc::spawn_captured(
        in_ns(client_ns, "iperf3", &["-c", server_addr, "-t", &secs.to_string(), "-J"]),
        "iperf3 -c",
    )?;
    let hook = during(Instant::now());
    let text = client.wait_output()?;
    let result = parse_json(&text).map_err(io::Error::other)?;
    Ok((result, hook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_receiver_rate_and_retransmissions() {
        let text = r#"{"start": {}, "intervals": [],
            "end": {"sum_sent": {"bytes": 10, "bits_per_second": 9.5e9, "retransmits": 12},
                    "sum_received": {"bytes": 9, "bits_per_second": 9.25e9}}}"#;
        assert_eq!(parse_json(text), Ok(TcpResult { received_bps: 9.25e9, retransmits: 12 }));
    }

    #[test]
    fn reports_iperf3_errors_and_missing_fields() {
        let e = parse_json(r#"{"start": {}, "end": {}, "error": "unable to connect to server"}"#);
        assert_eq!(e, Err("iperf3: unable to connect to server".to_string()));
        assert!(parse_json(r#"{"end": {}}"#).expect_err("no rate").contains("sum_received"));
        assert!(parse_json("not json").expect_err("bad").starts_with("iperf3 JSON"));
    }
}
