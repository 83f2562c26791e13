//! A unix stream socket server for the consoles, one thread per client.
//!
//! [`Server::start`] binds the socket (mode 0600, as VDE's `-M` default),
//! sends each client the console's banner and prompt, then feeds it one line
//! at a time to a [`Console`] and writes back the framed reply and the
//! prompt; `logout` ends the session. A stale socket file (one nobody
//! listens on) is replaced; a live one or a file that is not a socket is
//! left alone and reported. [`Server::stop`] (or dropping the server) closes
//! every session and removes the socket file if it is still ours.
//!
//! The console decides; the server only moves bytes. Lines longer than
//! [`MAX_LINE`] bytes are refused with EINVAL and skipped, so a client
//! cannot make the server buffer without bound.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use thiserror::Error;

use crate::link::{self, LinkTarget};
use crate::reply::{Errno, Outcome, Reply};
use crate::switch::{self, SwitchTarget};

/// The longest command line accepted, in bytes.
pub const MAX_LINE: usize = 4096;

/// A console: what to greet with and how to answer a line. Implement it
/// directly to run commands on the owner's thread (e.g. by sending the line
/// over a channel); [`SwitchConsole`] and [`LinkConsole`] lock a shared
/// target instead.
pub trait Console: Send + Sync + 'static {
    /// Sent once when a client connects, before the first prompt.
    fn banner(&self) -> &str;
    /// Sent after every reply.
    fn prompt(&self) -> &str;
    /// Answers one line (without its newline).
    fn handle_line(&self, line: &str) -> Outcome;
}

/// A `vde_switch` console over a shared [`SwitchTarget`].
#[derive(Debug)]
pub struct SwitchConsole<T>(pub Arc<Mutex<T>>);

/// A `wirefilter` console over a shared [`LinkTarget`].
#[derive(Debug)]
pub struct LinkConsole<T>(pub Arc<Mutex<T>>);

/// Locks a target, carrying on after a panic elsewhere: the targets keep
/// their state consistent per call, and a console must stay usable.
fn lock<T>(target: &Mutex<T>) -> MutexGuard<'_, T> {
    target.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: SwitchTarget + Send + 'static> Console for SwitchConsole<T> {
    fn banner(&self) -> &str {
        switch::BANNER
    }

    fn prompt(&self) -> &str {
        switch::PROMPT
    }

    fn handle_line(&self, line: &str) -> Outcome {
        switch::handle_line(&mut *lock(&self.0), line)
    }
}

impl<T: LinkTarget + Send + 'static> Console for LinkConsole<T> {
    fn banner(&self) -> &str {
        link::BANNER
    }

    fn prompt(&self) -> &str {
        link::PROMPT
    }

    fn handle_line(&self, line: &str) -> Outcome {
        link::handle_line(&mut *lock(&self.0), line)
    }
}

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// Something already listens on the path.
    #[error("{path}: a console is already listening there")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The path exists and is not a socket; we do not remove it.
    #[error("{path}: exists and is not a socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What we were doing.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// Open sessions, so that `stop` can close them.
#[derive(Default)]
struct Sessions {
    streams: Mutex<HashMap<u64, UnixStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

/// A running console server; stops when dropped.
pub struct Server {
    path: PathBuf,
    /// Device and inode of the socket we bound, to remove only our own file.
    identity: (u64, u64),
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    sessions: Arc<Sessions>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `path` and serves `console` until stopped.
    pub fn start(path: impl Into<PathBuf>, console: Arc<dyn Console>) -> Result<Server, ServerError> {
        let path = path.into();
        let io_err = |op, source| ServerError::Io { path: path.clone(), op, source };
        remove_stale(&path)?;
        let listener = UnixListener::bind(&path).map_err(|e| io_err("bind", e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| io_err("chmod", e))?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io_err("stat", e))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(Sessions::default());
        let accept = {
            let (stopping, sessions) = (Arc::clone(&stopping), Arc::clone(&sessions));
            std::thread::Builder::new()
                .name("vde-console-accept".to_owned())
                .spawn(move || accept_loop(&listener, &console, &stopping, &sessions))
                .map_err(|e| io_err("spawn", e))?
        };
        Ok(Server { path, identity: (meta.dev(), meta.ino()), stopping, accept: Some(accept), sessions })
    }

    /// Binds `path` with a `vde_switch` console over `target`.
    pub fn start_switch<T: SwitchTarget + Send + 'static>(
        path: impl Into<PathBuf>,
        target: Arc<Mutex<T>>,
    ) -> Result<Server, ServerError> {
        Server::start(path, Arc::new(SwitchConsole(target)))
    }

    /// Binds `path` with a `wirefilter` console over `target`.
    pub fn start_link<T: LinkTarget + Send + 'static>(
        path: impl Into<PathBuf>,
        target: Arc<Mutex<T>>,
    ) -> Result<Server, ServerError> {
        Server::start(path, Arc::new(LinkConsole(target)))
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every session, stops accepting and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = UnixStream::connect(&self.path);
        let _ = accept.join();
        for stream in self.sessions.streams.lock().unwrap_or_else(PoisonError::into_inner).values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let threads = std::mem::take(&mut *self.sessions.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            let _ = thread.join();
        }
        // Someone may have replaced the file since; only remove ours.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes `path` if it is a socket nobody listens on.
fn remove_stale(path: &Path) -> Result<(), ServerError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket { path: path.to_owned() });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(ServerError::InUse { path: path.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|source| ServerError::Io { path: path.to_owned(), op: "remove stale socket", source }),
        Err(source) => Err(ServerError::Io { path: path.to_owned(), op: "probe existing socket", source }),
    }
}

fn accept_loop(listener: &UnixListener, console: &Arc<dyn Console>, stopping: &AtomicBool, sessions: &Arc<Sessions>) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // A failed accept (the client went away, or no file descriptors
            // left) concerns only that client; pause so that a persistent
            // error does not spin.
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        let id = sessions.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            sessions.streams.lock().unwrap_or_else(PoisonError::into_inner).insert(id, clone);
        }
        let (console, sessions_for_thread) = (Arc::clone(console), Arc::clone(sessions));
        let spawned = std::thread::Builder::new().name(format!("vde-console-{id}")).spawn(move || {
            // An I/O error ends the session; there is nobody to tell.
            let _ = serve_client(stream, &*console);
            sessions_for_thread.streams.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        });
        if let Ok(thread) = spawned {
            let mut threads = sessions.threads.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget sessions that ended, so the list stays short.
            threads.retain(|t| !t.is_finished());
            threads.push(thread);
        }
    }
}

fn serve_client(stream: UnixStream, console: &dyn Console) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(console.banner().as_bytes())?;
    writer.write_all(console.prompt().as_bytes())?;
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let outcome = if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            skip_line(&mut reader)?;
            Outcome::Reply(Reply::error(Errno::Inval))
        } else {
            console.handle_line(&String::from_utf8_lossy(&buf))
        };
        writer.write_all(outcome.render(console.prompt()).as_bytes())?;
        if outcome == Outcome::Logout {
            return Ok(());
        }
    }
}

/// Discards input up to and including the next newline.
fn skip_line(reader: &mut BufReader<UnixStream>) -> io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
}
