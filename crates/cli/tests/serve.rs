//! `tomato serve` as a user meets it: the real binary as a child process
//! on a free port with a temporary data directory and its own instance;
//! `tomato login` with the generated password, `tomato up` of two
//! containers joined by a link with 10 ms each way, ping through
//! `tomato element exec` (RTT ≥ 20 ms), `tomato connection set` on the
//! running link (RTT ≥ 60 ms), a restart of `tomato serve` that keeps the
//! topology and its running containers, `tomato down`, and nothing left on
//! the machine afterwards. Needs root; skipped otherwise.

#![allow(clippy::unwrap_used, missing_docs)]

mod serve_harness;
use serve_harness::{Serve, is_root, min_rtt, write_pair};

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_a_topology_for_the_cli_and_keeps_it_over_a_restart() {
    if !is_root() {
        return;
    }
    let mut serve = Serve::new();
    // Chores every second: the host samples usage, the backend pulls it.
    serve.flags = vec!["--chores-every".into(), "1".into()];
    let first = serve.start();
    let password_file = serve.data().join("admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_string();
    assert!(first.contains(&password), "the first run shows the password:\n{first}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&password_file).unwrap().permissions().mode() & 0o777, 0o600);
    let url = format!("http://127.0.0.1:{}", serve.port);

    // A wrong password is refused and saves nothing.
    let wrong = serve.tomato(&["login", &url, "admin"], Some("not-the-password\n"));
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("account_info"), "{wrong:?}");
    let login = serve.dir.path().join("config/tomato/login.json");
    assert!(!login.exists());
    let ok = serve.tomato(&["login", &url, "admin"], Some(&format!("{password}\n")));
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(std::fs::metadata(&login).unwrap().permissions().mode() & 0o777, 0o600);

    let file = write_pair(serve.dir.path(), "pair", "{delay_to: 10, delay_from: 10}");
    let up = serve.ok(&["up", file.to_str().unwrap()]);
    assert!(up.contains("topology 1 started (5 steps)"), "{up}");
    assert!(up.lines().any(|l| l.starts_with("a.eth0 -- b.eth0 (bridge)") && l.contains("started")), "{up}");
    let list = serve.ok(&["topology", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "pair");
    assert_eq!(list[0]["state_max"], "started");

    let ping = serve.ok(&["element", "exec", "pair", "a", "ping", "-c", "3", "10.0.0.2"]);
    assert!(ping.contains("3 packets received"), "{ping}");
    let before = min_rtt(&ping);
    assert!((20.0..40.0).contains(&before), "RTT {before} ms with 10 ms each way:\n{ping}");

    // `tomato usage`: the pings were sampled, pulled and charged to the
    // topology and to admin, whose quota they count against.
    let mut usage = serde_json::Value::Null;
    for _ in 0..40 {
        let out = serve.ok(&["usage", "--topology", "pair", "--json"]);
        usage = serde_json::from_str(&out).unwrap();
        if usage["records"]["single"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["usage"]["traffic"].as_f64() > Some(0.0)))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(usage["records"]["single"].as_array().is_some_and(|r| !r.is_empty()), "{usage}");
    let mine: serde_json::Value = serde_json::from_str(&serve.ok(&["usage", "--json"])).unwrap();
    assert!(mine["quota"]["used"]["memory"].as_f64().unwrap() > 0.0, "{mine}");
    assert_eq!(mine["quota"]["monthly"]["cputime"], 12_960_000.0, "{mine}");
    let table = serve.ok(&["usage"]);
    assert!(table.contains("account admin") && table.contains("memory") && table.contains("single"), "{table}");

    let set = serve.ok(&["connection", "set", "pair/a.eth0", "delay_to=50"]);
    assert!(set.contains("delay_to=50"), "{set}");
    let ping = serve.ok(&["element", "exec", "pair", "a", "ping", "-c", "3", "10.0.0.2"]);
    let after = min_rtt(&ping);
    assert!(after >= 60.0, "RTT {after} ms after delay_to=50:\n{ping}");

    // Errors name the field and what is allowed.
    let bad = serve.tomato(&["element", "exec", "pair", "nope", "true"], None);
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && text.contains("element `nope`") && text.contains("a.eth0"), "{text}");

    // Stopped, the containers keep running; started again, all is there.
    serve.stop();
    let running = serve.leftovers().await;
    assert_eq!(running.ids.len(), 2, "{running:?}");
    let second = serve.start();
    assert!(!second.contains(&password), "the password is shown only once:\n{second}");
    let info = serve.ok(&["topology", "info", "pair"]);
    assert!(info.contains("topology 1 `pair`: started"), "{info}");
    let ping = serve.ok(&["element", "exec", "pair", "b", "ping", "-c", "2", "10.0.0.1"]);
    assert!(ping.contains("2 packets received") && min_rtt(&ping) >= 60.0, "{ping}");

    // The same file uploaded through `topology_import`: created, not
    // started, its components named as in the file; exported back, it
    // carries the file's attributes.
    let import = serve.ok(&["topology", "import", file.to_str().unwrap()]);
    assert!(import.contains("topology 2 imported from") && import.contains("4 elements, 1 connections"), "{import}");
    let info = serve.ok(&["topology", "info", "2"]);
    assert!(info.contains("topology 2 `pair`: created") && info.contains("a.eth0 -- b.eth0"), "{info}");
    let exported = serve.ok(&["topology", "export", "2", "--to", "json"]);
    assert!(exported.contains("\"delay_to\": 10") && exported.contains("10.0.0.2/24"), "{exported}");
    let bad = serve.tomato(&["topology", "upload", "/nonexistent.yaml"], None);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.yaml"), "{bad:?}");
    serve.ok(&["topology", "remove", "2"]);

    let down = serve.ok(&["down", "pair"]);
    assert!(down.contains("topology 1 removed"), "{down}");
    let list = serve.ok(&["topology", "list", "--json"]);
    assert_eq!(list.trim(), "[]");
    serve.stop();
    let left = serve.leftovers().await;
    assert!(left.is_empty(), "{left:?}");
    // With no container left, a clean stop removes the instance's cgroups.
    let parent = format!("tomato/{}", serve.instance);
    let kept: Vec<_> =
        container::CgroupKind::host().roots().iter().map(|r| r.join(&parent)).filter(|d| d.exists()).collect();
    assert!(kept.is_empty(), "cgroup directories left: {kept:?}");
}
