//! `tomato-apibench` (run by `scripts/bench api`): `element_info`
//! requests per second and latency against the backend's real HTTP server
//! on loopback, over JSON (`POST /api/element_info`) and XML-RPC
//! (`POST /RPC2`), on SQLite and on PostgreSQL (a throwaway cluster, as the
//! tests start it), and the same load against the floor, a handler on the
//! same HTTP stack that does no work, all in one run.
//!
//! - `fixture.rs`: the store's rows, the real server and the floor.
//! - `load.rs`: the load generator (keep-alive clients, fixed window).
//!
//! It prints figures and asserts nothing; it is not part of `scripts/test`.

mod fixture;
mod load;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use hyper::header::HeaderValue;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "tomato-apibench", about = "element_info req/s and latency on SQLite, PostgreSQL and the HTTP floor")]
struct Args {
    /// Seconds measured per target and transport.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Seconds of load before measuring (the first login's argon2 check
    /// falls in here).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Concurrent keep-alive client connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// What to measure, in order: floor, sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "floor,sqlite,postgres")]
    targets: Vec<String>,
    /// Transports: json, xmlrpc.
    #[arg(long, value_delimiter = ',', default_value = "json,xmlrpc")]
    transports: Vec<String>,
    /// Worker threads of the server's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Worker threads of the clients' runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Pairs of containers (with an interface each and a link) in the
    /// topology; element_info reads the topology's elements and links.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
}

/// One measured line of the report.
struct Row {
    target: String,
    transport: &'static str,
    measured: load::Measured,
}

fn json_body(id: i64) -> Bytes {
    Bytes::from(format!("{{\"id\": {id}}}"))
}

fn xml_body(id: i64) -> Bytes {
    Bytes::from(format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>element_info</methodName>\n<params>\n<param>\n\
         <value><int>{id}</int></value>\n</param>\n</params>\n</methodCall>\n"
    ))
}

fn json_ok(body: &[u8]) -> bool {
    body.starts_with(b"{\"result\"")
}

fn xml_ok(body: &[u8]) -> bool {
    body.starts_with(b"<?xml") && !body.windows(7).any(|w| w == b"<fault>")
}

/// The target of `transport` on `addr` asking about `ids`.
fn target(addr: SocketAddr, transport: &str, ids: &[i64]) -> load::Target {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", fixture::USER, fixture::PASSWORD));
    let authorization = HeaderValue::from_str(&format!("Basic {basic}")).ok();
    if transport == "xmlrpc" {
        load::Target {
            addr,
            path: "/RPC2",
            content_type: "text/xml",
            authorization,
            bodies: ids.iter().map(|&id| xml_body(id)).collect(),
            check: xml_ok,
        }
    } else {
        load::Target {
            addr,
            path: "/api/element_info",
            content_type: "application/json",
            authorization,
            bodies: ids.iter().map(|&id| json_body(id)).collect(),
            check: json_ok,
        }
    }
}

/// One request through the real server, its answer's body.
async fn answer_of(addr: SocketAddr, transport: &str, id: i64) -> anyhow::Result<Bytes> {
    let t = target(addr, transport, &[id]);
    let mut sender = load::connect(addr).await.map_err(anyhow::Error::msg)?;
    let body = t.bodies[0].clone();
    load::one_request(&mut sender, &t, body).await.map_err(|e| anyhow::anyhow!("{transport} element_info({id}): {e}"))
}

struct Runtimes {
    server: tokio::runtime::Runtime,
    clients: tokio::runtime::Runtime,
}

impl Runtimes {
    /// Runs the load in the clients' runtime; `None` when interrupted.
    fn measure(&self, args: &Args, t: load::Target) -> Option<load::Measured> {
        let run = load::run(
            Arc::new(t),
            args.connections,
            Duration::from_secs_f64(args.warmup),
            Duration::from_secs_f64(args.secs),
        );
        self.clients.block_on(async {
            tokio::select! {
                m = run => Some(m),
                _ = tokio::signal::ctrl_c() => None,
            }
        })
    }
}

fn print_row(row: &Row) {
    let m = &row.measured;
    println!(
        "{:<10} {:<7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
        row.target,
        row.transport,
        m.rate(),
        m.quantile_ms(0.5),
        m.quantile_ms(0.99),
        m.quantile_ms(0.999),
        m.quantile_ms(1.0),
        m.errors
    );
    if let Some(e) = &m.first_error {
        println!("           first error: {e}");
    }
}

fn transports(args: &Args) -> Vec<&'static str> {
    let mut out = Vec::new();
    for t in &args.transports {
        match t.as_str() {
            "json" => out.push("json"),
            "xmlrpc" => out.push("xmlrpc"),
            _ => {}
        }
    }
    out
}

/// Opens the store for `target` (the PostgreSQL database lives as long as
/// the returned guard), fills it and starts the real server.
async fn real_server(
    target: &str,
    pairs: usize,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, Vec<i64>, backend::store::Store, DbGuard)> {
    let (url, guard) = match target {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("backend.sqlite").display());
            (url, DbGuard::Sqlite(dir))
        }
        _ => {
            let db = testdb::PgDatabase::create().await;
            (db.url().to_string(), DbGuard::Postgres(db))
        }
    };
    let store = backend::store::Store::open(&url).await.with_context(|| format!("open {target}"))?;
    let fixture = fixture::fill(&store, pairs).await?;
    let addr = fixture::serve(store.clone(), stop).await?;
    Ok((addr, fixture.elements, store, guard))
}

/// Keeps a benchmark database alive: the SQLite file's directory, or the
/// PostgreSQL database (and with the last one the throwaway cluster).
enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] testdb::PgDatabase),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = |threads: usize| tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build();
    let runtimes = Runtimes { server: rt(args.server_threads)?, clients: rt(args.client_threads)? };
    let transports = transports(&args);
    println!(
        "element_info over HTTP/1.1 keep-alive on loopback: {} connections, {} s warm-up, {} s measured per line, \
         server {} threads, clients {} threads, {} CPUs",
        args.connections,
        args.warmup,
        args.secs,
        args.server_threads,
        args.client_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // The floor answers what the real server answers, captured once from
    // a store on SQLite.
    let mut captured: Option<(Bytes, Bytes)> = None;
    let mut rows = Vec::new();
    let mut interrupted = false;
    for name in &args.targets {
        if interrupted {
            break;
        }
        let stop = CancellationToken::new();
        match name.as_str() {
            "floor" => {
                if captured.is_none() {
                    let (addr, ids, store, guard) =
                        runtimes.server.block_on(real_server("sqlite", args.pairs, stop.clone()))?;
                    let answers = runtimes.server.block_on(async {
                        Ok::<_, anyhow::Error>((
                            answer_of(addr, "json", ids[0]).await?,
                            answer_of(addr, "xmlrpc", ids[0]).await?,
                        ))
                    })?;
                    stop.cancel();
                    runtimes.server.block_on(store.close());
                    drop(guard);
                    captured = Some(answers);
                }
                let (json, xml) = captured.clone().context("captured answers")?;
                println!(
                    "floor: a fixed answer of {} bytes (JSON) / {} bytes (XML-RPC), no parsing, no login",
                    json.len(),
                    xml.len()
                );
                let stop = CancellationToken::new();
                let addr = runtimes.server.block_on(fixture::serve_floor(json, xml, stop.clone()))?;
                for &transport in &transports {
                    let Some(measured) = runtimes.measure(&args, target(addr, transport, &[1])) else {
                        interrupted = true;
                        break;
                    };
                    rows.push(Row { target: "floor".into(), transport, measured });
                }
                stop.cancel();
            }
            "sqlite" | "postgres" => {
                let (addr, ids, store, guard) =
                    runtimes.server.block_on(real_server(name, args.pairs, stop.clone()))?;
                for &transport in &transports {
                    let first = runtimes.server.block_on(answer_of(addr, transport, ids[0]))?;
                    if captured.is_none() && transport == "json" {
                        println!(
                            "{name}: element_info answers {} bytes (JSON), e.g. {}",
                            first.len(),
                            String::from_utf8_lossy(&first)
                        );
                    }
                    let Some(measured) = runtimes.measure(&args, target(addr, transport, &ids)) else {
                        interrupted = true;
                        break;
                    };
                    rows.push(Row { target: name.clone(), transport, measured });
                }
                stop.cancel();
                runtimes.server.block_on(store.close());
                drop(guard);
            }
            other => bail!("unknown target `{other}`; known: floor, sqlite, postgres"),
        }
    }

    println!();
    println!(
        "{:<10} {:<7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "target", "via", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
    );
    for row in &rows {
        print_row(row);
    }
    println!();
    for row in rows.iter().filter(|r| r.target != "floor") {
        let floor = rows.iter().find(|f| f.target == "floor" && f.transport == row.transport);
        let ratio = floor.map_or(String::from("no floor measured"), |f| {
            format!("{:.2} of the floor's req/s", row.measured.rate() / f.measured.rate())
        });
        // Issue #5 sets the target for SQLite, the default database.
        let verdict = if row.target != "sqlite" {
            String::new()
        } else if row.measured.rate() >= 5000.0 && row.measured.quantile_ms(0.99) < 10.0 {
            "; target >= 5000 req/s and p99 < 10 ms: met".into()
        } else {
            "; target >= 5000 req/s and p99 < 10 ms: missed".into()
        };
        println!(
            "{} {}: {:.0} req/s, p99 {:.2} ms, {} errors; {ratio}{verdict}",
            row.target,
            row.transport,
            row.measured.rate(),
            row.measured.quantile_ms(0.99),
            row.measured.errors,
        );
    }
    if interrupted {
        println!("interrupted");
    }
    Ok(())
}
