//! The backend's periodic work, one pass at a time: poll the hosts, pull
//! and charge their accounting records, carry out topology timeouts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Backend, accounting, handlers, hosts, now};

/// One pass; each part's failure is logged and does not stop the others.
pub async fn run_once(backend: &Backend, now: i64) {
    if let Err(e) = hosts::poll_all(&backend.store, &backend.hosts, now).await {
        tracing::warn!("polling hosts: {e}");
    }
    if let Err(e) = accounting::pull_all(backend).await {
        tracing::warn!("accounting: {}", e.message);
    }
    if let Err(e) = handlers::carry_out_timeouts(backend, now).await {
        tracing::warn!("timeouts: {}", e.message);
    }
}

/// A pass every `every` until `stop` completes.
pub async fn run(backend: Arc<Backend>, every: Duration, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => run_once(&backend, now()).await,
            () = &mut stop => break,
        }
    }
}
