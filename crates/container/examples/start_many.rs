//! Starts N busybox containers with one interface each and prints how long
//! it took, what a container costs in memory, and how long stopping took.
//! A benchmark: prints figures, asserts nothing. As root:
//!
//! ```sh
//! cargo run -p container --example start_many --release -- 100 [THREADS]
//! ```
//!
//! Everything it makes (directory under /tmp, cgroups under
//! `tomato-bench/<pid>`, a network namespace for the host ends) is removed
//! at the end, also on a panic.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use container::{ContainerSpec, InterfaceSpec, Limits};

/// Removes what the run made.
struct Guard {
    root: PathBuf,
    parent: String,
    netns: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let ns = PathBuf::from(format!("/run/netns/{}", self.netns));
        if let Err(e) = rt.block_on(container::sweep(&self.root.join("ct"), &self.parent, Some(&ns), &[])) {
            eprintln!("cleanup: {e}");
        }
        let _ = container::remove_cgroup_parent(&self.parent);
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("start_many needs root");
        std::process::exit(2);
    }
    container::become_subreaper().expect("subreaper");
    let pid = std::process::id();
    let guard = Guard {
        root: format!("/tmp/tomato-start-many-{pid}").into(),
        parent: format!("tomato-bench/{pid}"),
        netns: format!("tmsm-{pid}"),
    };
    let status = Command::new("ip").args(["netns", "add", &guard.netns]).status().expect("ip");
    assert!(status.success(), "ip netns add");
    let ns = PathBuf::from(format!("/run/netns/{}", guard.netns));
    let rootfs = guard.root.join("tpl/busybox");
    std::fs::create_dir_all(&guard.root).expect("root");

    let t = Instant::now();
    let archive = guard.root.join("busybox.tar.gz");
    let info = container::build_busybox_template(&archive).expect("template");
    let built = t.elapsed();
    container::unpack_template(&archive, &info.sha256, &rootfs).expect("unpack");
    println!(
        "template: {} bytes, sha256 {}, built in {:.1} ms, unpacked in {:.1} ms",
        info.size,
        info.sha256,
        ms(built),
        ms(t.elapsed() - built)
    );

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let specs: Vec<ContainerSpec> = (0..n)
        .map(|i| ContainerSpec {
            id: format!("sm{i}"),
            dir: guard.root.join("ct").join(format!("sm{i}")),
            rootfs: rootfs.clone(),
            hostname: format!("sm{i}"),
            limits: Limits { ram_mb: Some(64), cpus: Some(0.5), diskspace_mb: None, pids: Some(100) },
            cgroup_parent: guard.parent.clone(),
            binds: Vec::new(),
        })
        .collect();
    // Started from several threads, as a hostmanager's spawn_blocking pool
    // would: moving a process into a v1 cgroup waits for an RCU grace
    // period, which concurrent starts share.
    let threads: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let all = Instant::now();
    let mut results: Vec<(usize, container::Running, Duration, Duration)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(spec) = specs.get(i) else { return done };
                        let t = Instant::now();
                        let r = container::start(spec).expect("start");
                        let in_start = t.elapsed();
                        let t = Instant::now();
                        let iface = InterfaceSpec {
                            name: "eth0".into(),
                            mac: [2, 0, 0, 0, (i >> 8) as u8, i as u8],
                            host_name: container::host_end_name(&spec.id, 0),
                            ip4: Some((Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8 + 1), 16)),
                            ip6: None,
                            dhcp: false,
                        };
                        rt.handle().block_on(container::add_interface(&r, &iface, &ns)).expect("interface");
                        done.push((i, r, in_start, t.elapsed()));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    let took = all.elapsed();
    results.sort_by_key(|r| r.0);
    let in_start: Duration = results.iter().map(|r| r.2).sum();
    let in_iface: Duration = results.iter().map(|r| r.3).sum();
    let running: Vec<container::Running> = results.iter().map(|r| r.1).collect();
    println!(
        "started {n} containers with one interface each from {threads} threads in {:.1} ms: {:.2} ms per container \
         (latency of one: start {:.2} ms, interface {:.2} ms)",
        ms(took),
        ms(took) / n as f64,
        ms(in_start) / n as f64,
        ms(in_iface) / n as f64
    );

    // Let every init settle (busybox init runs rcS) before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let last = running.last().expect("at least one");
    let out = container::execute(last, "ip -o addr show eth0; ps | wc -l", Duration::from_secs(5)).expect("exec");
    println!("last container: {}", String::from_utf8_lossy(&out.stdout).trim().replace('\n', " | "));
    let mut cgroup_mem = 0;
    let mut rss = 0;
    for (spec, r) in specs.iter().zip(&running) {
        cgroup_mem += container::usage(spec, Some(r)).expect("usage").memory_bytes;
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", r.pid)).unwrap_or_default();
        rss += statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096;
    }
    println!(
        "memory per container: {:.0} KiB charged to its cgroup, init RSS {:.0} KiB (shared busybox pages included)",
        cgroup_mem as f64 / n as f64 / 1024.0,
        rss as f64 / n as f64 / 1024.0
    );

    let t = Instant::now();
    for spec in &specs {
        container::stop(spec).expect("stop");
    }
    let stopped = t.elapsed();
    let t = Instant::now();
    for spec in &specs {
        container::destroy(spec).expect("destroy");
    }
    println!(
        "stopped {n} in {:.1} ms ({:.2} ms each), destroyed in {:.1} ms",
        ms(stopped),
        ms(stopped) / n as f64,
        ms(t.elapsed())
    );
    drop(guard);
}
