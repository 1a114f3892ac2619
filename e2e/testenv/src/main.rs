//! `haven-testenv`: the environment image of the real-node tests, one static binary.
//!
//! - `serve` (the image's default): answers HTTP `GET /` with the pod's name and echoes
//!   WebSocket messages on `/ws`, on the IDE port, as Jupyter or RStudio would be reached.
//! - `probe`: what a test asks from inside a pod — a TCP connection, a DNS lookup, a file
//!   write — printed as one JSON line, so a test tells "blocked" from "broken".
//! - `pause`: sleeps until SIGTERM; the node's sandbox (pause) image runs this.
//! - `count`, `copy`: analyses the federation tests run at data sites as tasks (`task.rs`).

mod task;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use axum::{
    Router,
    extract::ws::{Message, WebSocket, WebSocketUpgrade},
    response::IntoResponse,
    routing::get,
};
use clap::{Parser, Subcommand};
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP and WebSocket (the default).
    Serve {
        #[arg(long, env = "HAVEN_TESTENV_PORT", default_value_t = 8888)]
        port: u16,
    },
    /// Open a TCP connection to HOST:PORT; exit 0 when it connected.
    Connect {
        address: String,
        #[arg(long, default_value = "3")]
        timeout_seconds: u64,
    },
    /// Send an HTTP GET to HOST:PORT and print the first line of the answer; exit 0 on any answer.
    Get {
        address: String,
        #[arg(long, default_value = "3")]
        timeout_seconds: u64,
    },
    /// Hold one keep-alive HTTP connection to HOST:PORT, a request every 200 ms, for up to
    /// SECONDS; print how long it lasted and why it ended (a user's session being cut).
    Hold {
        address: String,
        #[arg(long, default_value = "300")]
        seconds: u64,
    },
    /// Resolve NAME through the pod's resolver; exit 0 when it resolved.
    Resolve { name: String },
    /// Create PATH and write a line to it; exit 0 when it could.
    Write { path: PathBuf },
    /// Read PATH and print its size and SHA-256; exit 0 when it could.
    Read { path: PathBuf },
    /// List the names in directory PATH; exit 0 when it could.
    List { path: PathBuf },
    /// Print the process's identity: uid, gid, no_new_privs, effective capabilities.
    Whoami,
    /// Sleep until SIGTERM or SIGINT.
    Pause,
    /// Write `COLUMN,n` to OUTPUT: the number of rows of the CSV INPUT per value of COLUMN,
    /// sorted (an aggregate, as a federated analysis returns).
    Count {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        by: String,
        #[arg(long)]
        output: PathBuf,
    },
    /// Copy INPUT to OUTPUT byte for byte (an analysis that tries to take row-level data out).
    Copy {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let ok = match cli.command.unwrap_or(Command::Serve { port: 8888 }) {
        Command::Serve { port } => serve(port).await,
        Command::Connect { address, timeout_seconds } => connect(&address, timeout_seconds).await,
        Command::Get { address, timeout_seconds } => get_root(&address, timeout_seconds).await,
        Command::Hold { address, seconds } => hold(&address, seconds).await,
        Command::Resolve { name } => resolve(&name).await,
        Command::Write { path } => write(&path),
        Command::Read { path } => read(&path),
        Command::List { path } => list(&path),
        Command::Whoami => whoami(),
        Command::Pause => pause().await,
        Command::Count { input, by, output } => task::count(&input, &by, &output),
        Command::Copy { input, output } => task::copy(&input, &output),
    };
    std::process::exit(if ok { 0 } else { 1 });
}

async fn serve(port: u16) -> bool {
    let app = Router::new()
        .route("/", get(hello))
        .route("/headers", get(headers).post(headers))
        .route("/ws", get(echo_upgrade));
    let listener = match tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await {
        Ok(listener) => listener,
        Err(error) => {
            return reported(false, json!({"serve": port, "error": error.to_string()}));
        }
    };
    let shutdown = async { wait_for_termination().await };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.is_ok()
}

async fn hello() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    format!("haven-testenv {}\n", host.trim())
}

/// The request headers as the environment received them: what a gateway let through.
async fn headers(received: axum::http::HeaderMap) -> String {
    let pairs: Vec<(String, String)> = received
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    json!(pairs).to_string()
}

async fn echo_upgrade(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(text),
            Message::Binary(bytes) => Message::Binary(bytes),
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn open(address: &str, timeout_seconds: u64) -> Result<tokio::net::TcpStream, String> {
    let attempt = tokio::net::TcpStream::connect(address);
    match tokio::time::timeout(Duration::from_secs(timeout_seconds), attempt).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn connect(address: &str, timeout_seconds: u64) -> bool {
    match open(address, timeout_seconds).await {
        Ok(_) => reported(true, json!({"connect": address, "connected": true})),
        Err(error) => reported(false, json!({"connect": address, "connected": false, "error": error})),
    }
}

async fn get_root(address: &str, timeout_seconds: u64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limit = Duration::from_secs(timeout_seconds);
    let answer = async {
        let mut stream = open(address, timeout_seconds).await?;
        let request = format!("GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut head = vec![0; 256];
        let read = tokio::time::timeout(limit, stream.read(&mut head))
            .await
            .map_err(|_| "timed out reading".to_owned())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&head[..read]).into_owned();
        Ok::<_, String>(text.lines().next().unwrap_or_default().to_owned())
    };
    match answer.await {
        Ok(status) => reported(true, json!({"get": address, "answered": true, "status": status})),
        Err(error) => reported(false, json!({"get": address, "answered": false, "error": error})),
    }
}

/// Exit 0 when the connection lasted the whole time; 1 when it was cut (the JSON says how).
async fn hold(address: &str, seconds: u64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let start = std::time::Instant::now();
    let mut stream = match open(address, 3).await {
        Ok(stream) => stream,
        Err(error) => {
            return reported(false, json!({"hold": address, "held_ms": 0, "requests": 0, "ended": error}));
        }
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let mut requests = 0u64;
    let mut buffer = vec![0; 4096];
    let ended = loop {
        if start.elapsed() >= Duration::from_secs(seconds) {
            break None;
        }
        if let Err(error) = stream.write_all(request.as_bytes()).await {
            break Some(error.to_string());
        }
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer)).await {
            Ok(Ok(0)) => break Some("closed by the other end".to_owned()),
            Ok(Ok(_)) => requests += 1,
            Ok(Err(error)) => break Some(error.to_string()),
            Err(_) => break Some("no answer for 2 s".to_owned()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let held_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    reported(
        ended.is_none(),
        json!({"hold": address, "held_ms": held_ms, "requests": requests, "ended": ended}),
    )
}

async fn resolve(name: &str) -> bool {
    let lookup = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((name, 0))).await;
    match lookup {
        Ok(Ok(found)) => {
            let addresses: Vec<String> = found.map(|a| a.ip().to_string()).collect();
            reported(!addresses.is_empty(), json!({"resolve": name, "addresses": addresses}))
        }
        Ok(Err(error)) => reported(false, json!({"resolve": name, "error": error.to_string()})),
        Err(_) => reported(false, json!({"resolve": name, "error": "timed out"})),
    }
}

fn write(path: &std::path::Path) -> bool {
    match std::fs::write(path, b"written by haven-testenv\n") {
        Ok(()) => reported(true, json!({"write": path, "written": true})),
        Err(error) => reported(false, json!({"write": path, "written": false, "error": error.to_string()})),
    }
}

fn read(path: &std::path::Path) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            reported(true, json!({"read": path, "bytes": bytes.len(), "sha256": sha256}))
        }
        Err(error) => reported(false, json!({"read": path, "error": error.to_string()})),
    }
}

fn list(path: &std::path::Path) -> bool {
    let names = std::fs::read_dir(path).and_then(|entries| {
        entries
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
    });
    match names {
        Ok(mut names) => {
            names.sort();
            reported(true, json!({"list": path, "names": names}))
        }
        Err(error) => reported(false, json!({"list": path, "error": error.to_string()})),
    }
}

/// uid, gid and the kernel's view of privileges, from /proc/self/status.
fn whoami() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
            .unwrap_or_default()
    };
    reported(
        true,
        json!({
            "uid": field("Uid:"),
            "gid": field("Gid:"),
            "groups": field("Groups:"),
            "no_new_privs": field("NoNewPrivs:"),
            "cap_eff": field("CapEff:"),
            "service_account_token": std::path::Path::new(SERVICE_ACCOUNT_TOKEN).exists(),
        }),
    )
}

const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

async fn pause() -> bool {
    wait_for_termination().await;
    true
}

async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Prints the probe's JSON line and passes its outcome on as the exit status.
fn reported(ok: bool, value: serde_json::Value) -> bool {
    println!("{value}");
    ok
}
