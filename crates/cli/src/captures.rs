//! `tomato capture start|stop|download|live`: packet capture on a
//! connection through its attributes (`capturing`, `capture_filter`,
//! `capture_mode`), as ToMaTo's connection dialog set them. `download` is
//! the connection action `download_grant` and a GET of the grant from the
//! host's fileserver (pcapng, newest packets first kept within
//! `--limit`); `live` reads the host's live stream (`capture_mode` `net`,
//! ToMaTo's `wireshark -k -i <(nc host port)`) and writes it to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::client::{Api, connection_id};

/// ToMaTo's capture modes.
#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// A ring of files on the host, fetched with `capture download`.
    File,
    /// A live stream on the host, read with `capture live`.
    Net,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::File => "file",
            Mode::Net => "net",
        }
    }
}

/// Subcommands of `tomato capture`.
#[derive(Subcommand)]
pub enum CaptureCommand {
    /// Start capturing on a connection: `tomato capture start lan/pc1.eth0 --filter icmp`.
    Start {
        /// The connection's id, or TOPOLOGY/END where END is one of its ends (pc1.eth0).
        connection: String,
        /// A pcap filter expression (tcpdump syntax); everything when not given.
        #[arg(long)]
        filter: Option<String>,
        /// Where packets go.
        #[arg(long, value_enum, default_value = "file")]
        mode: Mode,
    },
    /// Stop capturing (a file capture stays downloadable until the connection goes).
    Stop {
        /// The connection's id, or TOPOLOGY/END.
        connection: String,
    },
    /// Download what a file capture holds as a pcapng file (tshark and Wireshark read it).
    Download {
        /// The connection's id, or TOPOLOGY/END.
        connection: String,
        /// Where to write it.
        out: PathBuf,
        /// Keep only the newest packets within this many bytes.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Write the live capture to stdout (pcapng): `tomato capture live lan/pc1.eth0 | tshark -r -`.
    /// Switches the connection to capture_mode net if it is not.
    Live {
        /// The connection's id, or TOPOLOGY/END.
        connection: String,
        /// A pcap filter expression, when live starts the capture.
        #[arg(long)]
        filter: Option<String>,
        /// Stop after this many seconds (otherwise at Ctrl-C or when the reader goes).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

/// Runs `tomato capture ...`.
pub fn run(cmd: CaptureCommand) -> anyhow::Result<ExitCode> {
    let api = Api::connect()?;
    match cmd {
        CaptureCommand::Start { connection, filter, mode } => {
            let id = connection_id(&api, &connection)?;
            let info = start(&api, id, filter, mode)?;
            println!("connection {id}: capturing ({})", capture_attrs(&info));
        }
        CaptureCommand::Stop { connection } => {
            let id = connection_id(&api, &connection)?;
            let info = api.call("connection_modify", json!([id, {"capturing": false}]))?;
            println!("connection {id}: not capturing ({})", capture_attrs(&info));
        }
        CaptureCommand::Download { connection, out, limit } => {
            let id = connection_id(&api, &connection)?;
            let info = api.call("connection_info", json!([id, false]))?;
            let params = match limit {
                Some(l) => json!({"limitSize": l}),
                None => json!({}),
            };
            let grant = api.call("connection_action", json!([id, "download_grant", params]))?;
            let bytes = api.download(&info, &grant, &out)?;
            println!("connection {id}: capture written to {} ({bytes} bytes, pcapng)", out.display());
        }
        CaptureCommand::Live { connection, filter, seconds } => {
            let id = connection_id(&api, &connection)?;
            live(&api, id, filter, seconds.map(Duration::from_secs))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Turns capturing on in `mode` (with `filter` if given); the answer.
fn start(api: &Api, id: i64, filter: Option<String>, mode: Mode) -> anyhow::Result<Value> {
    let mut attrs = json!({"capturing": true, "capture_mode": mode.name()});
    if let Some(f) = filter {
        attrs["capture_filter"] = json!(f);
    }
    api.call("connection_modify", json!([id, attrs]))
}

fn capture_attrs(info: &Value) -> String {
    ["capture_mode", "capture_filter"].iter().map(|k| format!("{k}={}", info["attrs"][k])).collect::<Vec<_>>().join(" ")
}

fn live(api: &Api, id: i64, filter: Option<String>, seconds: Option<Duration>) -> anyhow::Result<()> {
    let mut info = api.call("connection_info", json!([id, true]))?;
    let attrs = &info["attrs"];
    if attrs["capturing"] != json!(true) || attrs["capture_mode"] != json!("net") || filter.is_some() {
        eprintln!("connection {id}: capturing in capture_mode net (stop it with `tomato capture stop {id}`)");
        start(api, id, filter, Mode::Net)?;
        info = api.call("connection_info", json!([id, true]))?;
    }
    let port = info["attrs"]["capture_port"]
        .as_u64()
        .with_context(|| format!("connection {id}: the host reports no capture_port (is the connection started?)"))?;
    let address = info["host_info"]["address"]
        .as_str()
        .with_context(|| format!("connection {id}: the backend gives no host_info.address"))?
        .to_string();
    let until = seconds.map(|s| Instant::now() + s);
    api.block_on(async move {
        let mut tcp = tokio::net::TcpStream::connect((address.as_str(), u16::try_from(port)?))
            .await
            .with_context(|| format!("live capture at {address}:{port}"))?;
        let mut stdout = std::io::stdout().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = match until {
                Some(t) => match tokio::time::timeout_at(t.into(), tcp.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => break,
                },
                None => tcp.read(&mut buf).await,
            };
            let n = read.with_context(|| format!("live capture at {address}:{port}"))?;
            if n == 0 {
                break;
            }
            // The reader went away (`tshark -c N`): the capture's end, not an error.
            if stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()).is_err() {
                break;
            }
        }
        Ok::<_, anyhow::Error>(())
    })
}
