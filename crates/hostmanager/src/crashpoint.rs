//! Deterministic crash points, a test hook (like the `fail` crate's
//! failpoints, without the dependency).
//!
//! When the environment variable `TOMATO_CRASHPOINT` equals a point's name
//! (read once, at the first point reached), the process sends itself
//! SIGKILL right there: a real `kill -9` at that instant, with no unwinding,
//! no destructors and no flushing. Tests use it to show that recovery at the
//! next start leaves the host consistent. Unset (as in production) a point
//! costs one comparison.
//!
//! Points: `before:<action>` (pending written, driver not yet run),
//! `after:<action>` (driver done, new state not yet written),
//! `start:after-container` (container running, interfaces not yet set up),
//! `remove:before-delete` (driver removed it, store row not yet deleted),
//! `rextfv:old-moved-out` and `rextfv:half-moved-in` (an executable
//! archive's swap, old contents out, new ones partly in).

use std::sync::OnceLock;

/// The environment variable naming the point to crash at.
pub const VAR: &str = "TOMATO_CRASHPOINT";

/// Kills this process with SIGKILL if `TOMATO_CRASHPOINT` is `name`.
pub fn hit(name: &str) {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    if WANTED.get_or_init(|| std::env::var(VAR).ok()).as_deref() == Some(name) {
        tracing::warn!("crash point {name}: SIGKILL");
        // SAFETY: getpid and kill take plain integers and touch no memory.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}
