//! The accounting pull: each host's new `single` records
//! (`accounting_statistics`), mapped back to the backend's elements and
//! connections, charged up the chain by [`crate::rollup`] and stored with
//! the host's cursor in one transaction; and the month's usage of a user
//! for the quota check.

use std::collections::{BTreeMap, HashMap};

use accounting::{RecordType, Usage, UsageRecord};
use rpc::RpcError;
use serde_json::{Value, json};

use super::{Backend, fail};
use crate::quota::month_usage;
use crate::rollup::{Charged, Pulled, roll_up};
use crate::store::{Host, Placed, UsageClass};

/// Pulls and charges the new records of every host; a host that fails is
/// logged and tried again next time (its cursor did not move).
pub async fn pull_all(backend: &Backend) -> Result<(), RpcError> {
    let hosts = backend.store.hosts(None).await.map_err(fail)?;
    let placed = backend.store.placed_components().await.map_err(fail)?;
    let members = backend.store.memberships().await.map_err(fail)?;
    for host in hosts.iter().filter(|h| h.enabled) {
        if let Err(e) = pull(backend, host, &placed, &members).await {
            tracing::warn!("accounting: host {}: {}", host.name, e.message);
        }
    }
    Ok(())
}

/// Pulls the records of `host` newer than its cursor and charges them.
async fn pull(
    backend: &Backend,
    host: &Host,
    placed: &[Placed],
    members: &BTreeMap<i64, Vec<Charged>>,
) -> Result<(), RpcError> {
    let cursor = backend.store.accounting_cursor(&host.name).await.map_err(fail)?;
    let answer =
        backend.hosts.call(host, "accounting_statistics", vec![json!("single"), json!(cursor), Value::Null]).await?;
    let on_host: HashMap<(UsageClass, i64), &Placed> =
        placed.iter().filter(|p| p.host == host.name).map(|p| ((p.class, p.host_id), p)).collect();
    let mut pulled = Vec::new();
    let mut newest = cursor;
    for (class, field) in [(UsageClass::Element, "elements"), (UsageClass::Connection, "connections")] {
        let Some(by_id) = answer[field].as_object() else {
            return Err(RpcError::internal(format!("accounting_statistics of {}: no `{field}` map", host.name)));
        };
        for (hid, records) in by_id {
            let records: Vec<UsageRecord> = serde_json::from_value(records.clone()).map_err(|e| {
                RpcError::internal(format!("accounting_statistics of {}: {field}.{hid}: {e}", host.name))
            })?;
            // The host answers records ending at or after the cursor; the
            // one ending at it was charged last time.
            let records: Vec<UsageRecord> =
                records.into_iter().filter(|r| r.kind == RecordType::Single && r.end > cursor).collect();
            newest = records.iter().map(|r| r.end).fold(newest, f64::max);
            // Components the backend does not know (another backend's, or
            // removed meanwhile) are not charged to anybody.
            let Some(p) = hid.parse().ok().and_then(|id: i64| on_host.get(&(class, id))) else { continue };
            pulled.push(Pulled { class, id: p.id, topology: p.topology, host: host.name.clone(), records });
        }
    }
    if newest <= cursor {
        return Ok(());
    }
    backend.store.charge(&host.name, newest, &roll_up(&pulled, members)).await.map_err(fail)
}

/// `user`'s usage in the month around `now` (nothing before anything was
/// charged).
pub async fn month_of(backend: &Backend, user: &str, now: i64) -> Result<Usage, RpcError> {
    let stats = backend.store.usage(UsageClass::User, user).await.map_err(fail)?;
    Ok(stats.map(|s| month_usage(&s, now)).unwrap_or_default())
}
