//! The backend's side of its hosts: one mTLS client per host (the backend's
//! certificate, trusting only the testbed CA), polling a host's
//! `host_info` and `host_capabilities` into the store, and registering a
//! host.

use std::collections::HashMap;
use std::path::Path;

use rpc::RpcError;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::store::{Host, Organization, Site, Store, StoreError};

/// The backend's identity towards hosts: the testbed CA and the backend's
/// client certificate and key (PEM).
#[derive(Clone)]
pub struct Identity {
    /// The testbed CA certificate.
    pub ca_pem: String,
    /// The backend's certificate (its CN is the owner name on hosts).
    pub cert_pem: String,
    /// The backend's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads `DIR/NAME.pem`, `DIR/NAME.key` and `DIR/ca.pem`, as
    /// `tomato cert backend --name NAME --out-dir DIR` writes them.
    pub fn load(dir: &Path, name: &str) -> std::io::Result<Identity> {
        let read = |file: String| {
            let path = dir.join(&file);
            std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Ok(Identity {
            ca_pem: read("ca.pem".into())?,
            cert_pem: read(format!("{name}.pem"))?,
            key_pem: read(format!("{name}.key"))?,
        })
    }
}

/// Clients of the registered hosts, made on first use and kept.
#[derive(Debug)]
pub struct HostPool {
    identity: Identity,
    clients: Mutex<HashMap<String, (String, rpc::Client)>>,
}

impl HostPool {
    /// A pool that presents `identity` to every host.
    pub fn new(identity: Identity) -> HostPool {
        HostPool { identity, clients: Mutex::new(HashMap::new()) }
    }

    /// The backend's certificate (what hosts accept).
    pub fn certificate(&self) -> &str {
        &self.identity.cert_pem
    }

    /// The testbed CA (what hosts' certificates, fileservers' included,
    /// are signed by).
    pub fn ca(&self) -> &str {
        &self.identity.ca_pem
    }

    /// The client of `host`, made on first use.
    pub async fn client(&self, host: &Host) -> Result<rpc::Client, RpcError> {
        let mut clients = self.clients.lock().await;
        if let Some((url, client)) = clients.get(&host.name)
            && *url == host.rpcurl
        {
            return Ok(client.clone());
        }
        let client =
            rpc::Client::new(&host.rpcurl, &self.identity.ca_pem, &self.identity.cert_pem, &self.identity.key_pem)
                .map_err(|e| {
                    RpcError::invalid_value(format!("host {}: rpcurl or backend certificate: {e}", host.name))
                })?;
        clients.insert(host.name.clone(), (host.rpcurl.clone(), client.clone()));
        Ok(client)
    }

    /// Calls `method` on `host` with positional `args`. A host's error
    /// comes back naming the host.
    pub async fn call(&self, host: &Host, method: &str, args: Vec<Value>) -> Result<Value, RpcError> {
        let client = self.client(host).await?;
        client
            .call(method, args, Map::new())
            .await
            .map_err(|e| RpcError { message: format!("host {}: {}", host.name, e.message), ..e })
    }
}

fn names(caps: &Value, class: &str) -> std::collections::BTreeSet<String> {
    caps[class].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Asks `host` for its info and capabilities and writes them into `host`
/// (types offered, problems, last poll at `now`). An unreachable host gets
/// the problem `unreachable: ...` and a lower availability.
pub async fn poll(pool: &HostPool, host: &mut Host, now: i64) {
    let answer = async {
        let info = pool.call(host, "host_info", vec![]).await?;
        let caps = pool.call(host, "host_capabilities", vec![]).await?;
        Ok::<_, RpcError>((info, caps))
    }
    .await;
    match answer {
        Ok((info, caps)) => {
            host.problems = info["problems"]
                .as_array()
                .map(|p| p.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            host.element_types = names(&caps, "elements");
            host.connection_types = names(&caps, "connections");
            host.host_info = info;
            host.last_poll = Some(now);
            host.availability = (host.availability * 0.9 + 0.1).min(1.0);
        }
        Err(e) => {
            host.problems = vec![format!("unreachable: {}", e.message)];
            host.availability *= 0.9;
        }
    }
}

/// Polls every registered host once and stores what it said.
pub async fn poll_all(store: &Store, pool: &HostPool, now: i64) -> Result<(), StoreError> {
    for mut host in store.hosts(None).await? {
        poll(pool, &mut host, now).await;
        store.update_host(&host).await?;
    }
    Ok(())
}

/// Registers (or updates) host `name` at `site` reached at `rpcurl`, whose
/// certificate has SHA-256 `fingerprint`, after polling it: a host that
/// does not answer is refused with its error. The site (and its
/// organization) is created when missing.
pub async fn register(
    store: &Store,
    pool: &HostPool,
    host: Host,
    organization: &str,
    now: i64,
) -> Result<Host, RpcError> {
    ensure_site(store, &host.site, organization).await.map_err(super::fail)?;
    let mut host = host;
    let previous = store.host(&host.name).await.ok();
    poll(pool, &mut host, now).await;
    if let Some(problem) = host.problems.iter().find(|p| p.starts_with("unreachable: ")) {
        return Err(RpcError::invalid_value(format!("rpcurl: host {} {problem}", host.name)));
    }
    match previous {
        Some(_) => store.update_host(&host).await.map_err(super::fail)?,
        None => store.create_host(&host).await.map_err(super::fail)?,
    }
    Ok(host)
}

/// Makes organization `organization` and site `site` in it unless they exist.
pub async fn ensure_site(store: &Store, site: &str, organization: &str) -> Result<(), StoreError> {
    if store.site(site).await.is_ok() {
        return Ok(());
    }
    ensure_organization(store, organization).await?;
    store
        .create_site(&Site {
            name: site.into(),
            organization: organization.into(),
            label: site.into(),
            location: String::new(),
            description: String::new(),
        })
        .await
}

/// Makes organization `name` unless it exists.
pub async fn ensure_organization(store: &Store, name: &str) -> Result<(), StoreError> {
    if store.organization(name).await.is_ok() {
        return Ok(());
    }
    store
        .create_organization(&Organization {
            name: name.into(),
            label: name.into(),
            description: String::new(),
            homepage_url: String::new(),
            image_url: String::new(),
        })
        .await
}
