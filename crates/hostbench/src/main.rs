//! tomato-hostbench: the time from the first request to "all pingable" for
//! N containers on one switch, driven through the hostmanager's mTLS API
//! like a backend would, beside Mininet's star of the same size (Linux
//! bridge, no controller) measured in the same run; and the memory the
//! hostmanager and the containers add per container. It prints figures and
//! ratios, it asserts nothing (issue #4).
//!
//! "Pingable" is the same for both: one host (our container 0, Mininet's
//! h1) runs [`ping_script`], which pings every address once (64 at a time)
//! and again those that did not answer, until all have. The pings travel
//! the data plane (our switch and links; Mininet's bridge).
//!
//! Cleanup: the hostmanager runs in this process on loopback with a temp
//! data dir and a unique instance; its containers are removed through the
//! API and whatever is left is swept on drop (like its tests). The
//! neighbour table limits are raised for the run and restored by a guard
//! (drop, error, Ctrl-C). Mininet's own `net.stop()` removes its hosts
//! (by PID) and its bridge and links (by the names it gave them).

mod neigh;
mod ours;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "tomato-hostbench", about = "request to all pingable: hostmanager containers vs Mininet")]
struct Args {
    /// Topology sizes (hosts on one switch).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    sizes: Vec<usize>,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    /// Skip Mininet.
    #[arg(long)]
    no_mininet: bool,
}

/// One size's figures.
struct Row {
    n: usize,
    ours: Option<f64>,
    mininet: Option<f64>,
    hm_kib: Option<f64>,
    ct_kib: Option<f64>,
}

/// A POSIX sh script (busybox ash and dash) that pings 10.77.0.1 ..
/// (hosts 1..=n, /16) until all have answered once; prints the rounds
/// taken, how many never answered (after 30 rounds), and how many were
/// left after each round and when (the container's uptime clock).
pub fn ping_script(n: usize) -> String {
    format!(
        r#"left=""; i=1
while [ $i -le {n} ]; do left="$left 10.77.$((i/256)).$((i%256))"; i=$((i+1)); done
rounds=0; trace=""; start=$(cut -d' ' -f1 /proc/uptime)
while [ -n "$left" ] && [ $rounds -lt 30 ]; do
  rounds=$((rounds+1))
  left=$(k=0; for a in $left; do {{ ping -c1 -W1 $a >/dev/null 2>&1 || echo $a; }} & k=$((k+1)); if [ $k -ge 64 ]; then wait; k=0; fi; done; wait)
  left=$(echo $left)
  trace="$trace $(echo $left | wc -w)@$(cut -d' ' -f1 /proc/uptime)"
done
echo "rounds=$rounds left=$(echo $left | wc -w) (left@uptime after each round: start@$start$trace)"
"#
    )
}

/// The address of host `i` (1-based), as [`ping_script`] writes it.
pub fn address(i: usize) -> String {
    format!("10.77.{}.{}/16", i / 256, i % 256)
}

/// Whether the ping script's output says every host answered.
pub fn all_answered(output: &str) -> bool {
    output.contains(" left=0")
}

fn mininet_ready() -> Result<()> {
    let ok = std::process::Command::new("dpkg").args(["-s", "mininet"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        bail!("mininet is not installed (scripts/bench hosts installs it)");
    }
    // Our bridge and host names must be free: we remove only what we made.
    if std::path::Path::new("/sys/class/net/s1").exists() {
        bail!("an interface s1 exists already (another Mininet?); not touching it");
    }
    Ok(())
}

/// Mininet's star of `n` hosts; seconds to all pingable.
async fn mininet(n: usize) -> Result<f64> {
    mininet_ready()?;
    let dir = tempfile::tempdir()?;
    let star = dir.path().join("star.py");
    std::fs::write(&star, include_str!("star.py"))?;
    let script = dir.path().join("ping.sh");
    std::fs::write(&script, ping_script(n))?;
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg(&star)
        .arg(n.to_string())
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .context("python3 star.py")?;
    let pid = child.id();
    let out = tokio::select! {
        out = async {
            let mut stdout = child.stdout.take().context("stdout")?;
            let mut text = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await?;
            let status = child.wait().await?;
            anyhow::Ok((status, text))
        } => out?,
        _ = tokio::signal::ctrl_c() => {
            // Mininet got SIGINT from the terminal too; make sure, by PID,
            // and let its `finally: net.stop()` clean up.
            if let Some(pid) = pid { let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status(); }
            let _ = tokio::time::timeout(Duration::from_secs(120), child.wait()).await;
            bail!("interrupted");
        }
    };
    let (status, text) = out;
    if !status.success() {
        bail!("mininet star of {n}: {status}");
    }
    let line = text.lines().rev().find(|l| l.starts_with('{')).context("no result line from star.py")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let ping = v["ping"].as_str().unwrap_or_default();
    println!("  mininet n={n}: up {:.2} s, {}", v["up"].as_f64().unwrap_or(0.0), ping);
    if !all_answered(ping) {
        bail!("mininet star of {n}: not all hosts answered ({ping})");
    }
    v["seconds"].as_f64().context("no seconds")
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !dataplane_root() {
        bail!("tomato-hostbench needs root (containers, namespaces, sysctl)");
    }
    let max = args.sizes.iter().copied().max().unwrap_or(0);
    let _neigh = neigh::Raised::at_least(4 * max as u64)?;
    let mut rows = Vec::new();
    for &n in &args.sizes {
        println!("== {n} hosts on one switch");
        let mut row = Row { n, ours: None, mininet: None, hm_kib: None, ct_kib: None };
        let r = tokio::select! {
            r = ours::run(n, args.inflight) => r,
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted: cleaning up"); break; }
        };
        match r {
            Ok(f) => {
                row.ours = Some(f.seconds);
                row.hm_kib = Some(f.hostmanager_kib);
                row.ct_kib = Some(f.container_kib);
            }
            Err(e) => println!("  ours n={n}: no figure ({e:#})"),
        }
        if !args.no_mininet {
            match mininet(n).await {
                Ok(s) => row.mininet = Some(s),
                Err(e) if e.to_string() == "interrupted" => break,
                Err(e) => println!("  mininet n={n}: no figure ({e:#})"),
            }
        }
        rows.push(row);
    }
    println!(
        "== request to all pingable, one switch (ours: containers through the mTLS API; Mininet: LinuxBridge star)"
    );
    println!(
        "  {:>6}  {:>9}  {:>11}  {:>13}  {:>16}  {:>15}",
        "N", "ours (s)", "Mininet (s)", "ours/Mininet", "hostmgr KiB/ct", "cont. KiB/ct"
    );
    for r in &rows {
        let ratio = match (r.ours, r.mininet) {
            (Some(o), Some(m)) if m > 0.0 => Some(o / m),
            _ => None,
        };
        println!(
            "  {:>6}  {:>9}  {:>11}  {:>13}  {:>16}  {:>15}",
            r.n,
            fmt(r.ours, 2),
            fmt(r.mininet, 2),
            fmt(ratio, 2),
            fmt(r.hm_kib, 0),
            fmt(r.ct_kib, 0)
        );
    }
    println!("  target: ours/Mininet <= 1.00 (ours are full containers; Mininet's hosts are bare namespaces)");
    Ok(())
}

fn dataplane_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}
