//! What `host_info` reports about the machine, read from /proc and statvfs.

use std::path::Path;

use serde_json::{Value, json};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Total and free bytes of the file system holding `path`.
fn disk(path: &Path) -> Value {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return Value::Null };
    // SAFETY: an all-zero statvfs is valid output space.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid path string and `st` is writable.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Value::Null;
    }
    let block = st.f_frsize;
    json!({
        "total": st.f_blocks * block,
        "free": st.f_bavail * block,
        "used": (st.f_blocks - st.f_bfree) * block,
    })
}

/// CPUs, memory, load, disk, uptime and system facts in ToMaTo's shape.
pub fn host_info(data_dir: &Path) -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let field = |line: &str| line.split_once(':').map(|(_, v)| v.trim().to_string());
    let bogomips: Vec<f64> = cpuinfo
        .lines()
        .filter(|l| l.starts_with("bogomips"))
        .filter_map(field)
        .filter_map(|v| v.parse().ok())
        .collect();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(field).unwrap_or_default();
    let count = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let meminfo = read("/proc/meminfo");
    let kb = |key: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    let (total, available) = (kb("MemTotal:"), kb("MemAvailable:"));
    let loadavg: Vec<f64> = read("/proc/loadavg").split_whitespace().take(3).filter_map(|v| v.parse().ok()).collect();
    let uptime: f64 = read("/proc/uptime").split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let os_release = read("/etc/os-release");
    let distribution = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    json!({
        "resources": {
            "cpus_present": {
                "count": count,
                "bogomips_avg": if bogomips.is_empty() { 0.0 } else { bogomips.iter().sum::<f64>() / bogomips.len() as f64 },
                "model": model,
            },
            "memory": {"total": total, "used": total.saturating_sub(available)},
            "loadavg": loadavg,
            "diskspace": {"root": disk(Path::new("/")), "data": disk(data_dir)},
        },
        "uptime": uptime,
        "system": {
            "kernel": read("/proc/sys/kernel/osrelease").trim(),
            "distribution": distribution,
            "hostmanager": env!("CARGO_PKG_VERSION"),
        },
        "dumps": 0,
    })
}
