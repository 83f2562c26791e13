//! The crate's one error type: every variant names what was being done and
//! on which path or object.

use std::io;
use std::path::PathBuf;

/// What went wrong in a container operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec (id, paths, names, limits) cannot be used.
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// A file system or system call on a path failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A system call failed (no path involved).
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A step of the container's start failed inside the new namespaces.
    #[error("starting container {id}: {step} failed: {source}")]
    Start {
        /// The container.
        id: String,
        /// The step (e.g. `mount overlay`).
        step: &'static str,
        /// The errno it failed with.
        #[source]
        source: io::Error,
    },
    /// The container is not running (or its init is another process now).
    #[error("container process {pid} is not running")]
    NotRunning {
        /// The recorded init PID.
        pid: u32,
    },
    /// A netlink request failed.
    #[error("netlink: {what}: {message}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's or the library's message.
        message: String,
    },
    /// A template archive is wrong (digest, unsafe entry, missing busybox).
    #[error("template: {0}")]
    Template(String),
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { what, path: path.into(), source }
    }

    pub(crate) fn sys(what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys { what: what.into(), source }
    }
}
