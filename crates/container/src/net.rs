//! Container interfaces over netlink (rtnetlink, one process, no `ip`):
//! [`add_interface`], [`configure_interface`], [`set_gateways`],
//! [`remove_interface`].
//!
//! To act inside a namespace, a netlink socket is opened there (on a
//! short-lived thread that joined it) and then driven from the caller's
//! tokio runtime; a socket keeps its namespace for life. Sockets are never
//! kept between calls: a socket holds its namespace alive, and a container's
//! namespace must die with it so its veth ends go too.
//!
//! A veth pair is made with one request from inside the container: the
//! container end gets its name and MAC and comes up, the peer is created
//! directly in the host namespace under its host name (and brought up by a
//! second request from there: the kernel refuses to bring up a peer it
//! creates in another namespace). Deleting either end (or the container's
//! namespace) deletes both.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::{RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::lifecycle::Running;
use crate::{Error, Result, sys};

/// One interface of a container and its host end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Name inside the container, e.g. `eth0`.
    pub name: String,
    /// MAC address of the container end (unicast).
    pub mac: [u8; 6],
    /// Name of the host end (at most 15 bytes), in the host namespace
    /// given to [`add_interface`]; [`host_end_name`] makes names that
    /// [`crate::sweep`] recognises.
    pub host_name: String,
    /// IPv4 address and prefix length.
    pub ip4: Option<(Ipv4Addr, u8)>,
    /// IPv6 address and prefix length (added without duplicate address
    /// detection, so it is usable at once).
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// Run busybox `udhcpc` on the interface inside the container (best
    /// effort: needs `udhcpc` and its default script in the template, as
    /// the busybox template has; the lease is applied by that script).
    pub dhcp: bool,
}

/// The host end name of interface `index` (0 to 999) of container `id`:
/// `c<id>-<index>`, at most 15 bytes. [`crate::sweep`] removes host ends
/// of this form whose container is not kept.
pub fn host_end_name(id: &str, index: u16) -> String {
    format!("c{id}-{index}")
}

/// Parses a name made by [`host_end_name`] back into the container id.
pub(crate) fn id_of_host_end(name: &str) -> Option<&str> {
    let (id, index) = name.strip_prefix('c')?.split_once('-')?;
    (crate::spec::valid_id(id) && !index.is_empty() && index.len() <= 3 && index.bytes().all(|b| b.is_ascii_digit()))
        .then_some(id)
}

fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

impl InterfaceSpec {
    /// Checks names, MAC and prefix lengths.
    pub fn validate(&self) -> Result<()> {
        for (what, name) in [("name", &self.name), ("host_name", &self.host_name)] {
            if !valid_ifname(name) || name == "lo" {
                return Err(Error::InvalidSpec(format!("interface {what} {name:?} must be 1 to 15 printable bytes")));
            }
        }
        if self.mac[0] & 1 != 0 || self.mac == [0; 6] {
            return Err(Error::InvalidSpec(format!("MAC {:02x?} must be unicast and not zero", self.mac)));
        }
        if self.ip4.is_some_and(|(_, p)| p > 32) || self.ip6.is_some_and(|(_, p)| p > 128) {
            return Err(Error::InvalidSpec("prefix length too long".into()));
        }
        Ok(())
    }

    fn wanted(&self) -> Vec<(IpAddr, u8)> {
        let mut v = Vec::new();
        if let Some((a, p)) = self.ip4 {
            v.push((IpAddr::V4(a), p));
        }
        if let Some((a, p)) = self.ip6 {
            v.push((IpAddr::V6(a), p));
        }
        v
    }
}

fn nl(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Netlink { what: what.into(), message: e.to_string() }
}

/// The errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// A netlink handle whose socket lives in namespace `ns`.
async fn connect_in(ns: &File) -> Result<Handle> {
    let fd = sys::in_netns(ns, || {
        // SAFETY: plain socket(2) call with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        sys::check(fd)?;
        // SAFETY: `fd` is a fresh socket owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .map_err(|e| Error::sys("open netlink socket in namespace", e))?;
    // SAFETY: ownership of the socket passes to the TokioSocket (which
    // also makes it non-blocking and registers it with the runtime).
    let socket = unsafe { rtnetlink::sys::TokioSocket::from_raw_fd(fd.into_raw_fd()) };
    let (connection, handle, _) = rtnetlink::from_socket(socket);
    tokio::spawn(connection);
    Ok(handle)
}

/// The network namespace of a running container (its init checked before
/// and after opening).
fn container_netns(running: &Running) -> Result<File> {
    running.check()?;
    let ns = sys::open_ns(running.pid, "net")?;
    running.check()?;
    Ok(ns)
}

fn open_netns(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io("open network namespace", path, e))
}

/// The index of link `name`, or `None` if there is none.
async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>> {
    match handle.link().get().match_name(name.to_string()).execute().try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("get link {name}"), e)),
    }
}

/// Creates the veth pair of `iface` (container end inside the running
/// container, host end up in `host_netns`, e.g. `/run/netns/NAME` or
/// `/proc/self/ns/net`), sets the addresses and starts DHCP if asked.
/// Re-running it after a crash finishes the job: an existing pair is kept.
pub async fn add_interface(running: &Running, iface: &InterfaceSpec, host_netns: &Path) -> Result<()> {
    iface.validate()?;
    let ns = container_netns(running)?;
    let host = open_netns(host_netns)?;
    let handle = connect_in(&ns).await?;
    // The kernel refuses (ENOTCONN) to bring up a peer created in another
    // namespace, so the host end is brought up from there afterwards.
    let peer =
        LinkMessageBuilder::<LinkUnspec>::new().name(iface.host_name.clone()).setns_by_fd(host.as_raw_fd()).build();
    let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(iface.name.clone())
        .address(iface.mac.to_vec())
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    match handle.link().add(message).execute().await {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(libc::EEXIST) && link_index(&handle, &iface.name).await?.is_some() => {}
        Err(e) => return Err(nl(format!("create veth {} / {}", iface.name, iface.host_name), e)),
    }
    let host_handle = connect_in(&host).await?;
    let up = LinkUnspec::new_with_name(&iface.host_name).up().build();
    host_handle.link().set(up).execute().await.map_err(|e| nl(format!("bring up {}", iface.host_name), e))?;
    apply_addresses(&handle, iface).await?;
    if iface.dhcp {
        dhcp(running, iface).await?;
    }
    Ok(())
}

/// Applies `iface`'s MAC, addresses and DHCP setting to the existing
/// interface `iface.name` of a running container: addresses not wanted
/// are removed (IPv6 link-local ones stay; with DHCP on, IPv4 ones are the
/// DHCP client's), missing ones added. Idempotent.
pub async fn configure_interface(running: &Running, iface: &InterfaceSpec) -> Result<()> {
    iface.validate()?;
    let ns = container_netns(running)?;
    let handle = connect_in(&ns).await?;
    let index = link_index(&handle, &iface.name)
        .await?
        .ok_or_else(|| nl(format!("configure {}", iface.name), "no such interface in the container"))?;
    let link = handle
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .map_err(|e| nl(format!("get link {}", iface.name), e))?;
    let mac_now = link.and_then(|m| {
        m.attributes.into_iter().find_map(|a| if let LinkAttribute::Address(a) = a { Some(a) } else { None })
    });
    if mac_now.as_deref() != Some(&iface.mac[..]) {
        let msg = LinkUnspec::new_with_index(index).address(iface.mac.to_vec()).build();
        handle.link().set(msg).execute().await.map_err(|e| nl(format!("set MAC of {}", iface.name), e))?;
    }
    apply_addresses(&handle, iface).await?;
    dhcp(running, iface).await
}

/// The address of an address message.
fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })
}

async fn apply_addresses(handle: &Handle, iface: &InterfaceSpec) -> Result<()> {
    let index = link_index(handle, &iface.name)
        .await?
        .ok_or_else(|| nl(format!("address {}", iface.name), "no such interface in the container"))?;
    let existing: Vec<AddressMessage> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl(format!("list addresses of {}", iface.name), e))?;
    let wanted = iface.wanted();
    let mut present = Vec::new();
    for msg in existing.into_iter().filter(|m| m.header.index == index) {
        let Some(ip) = address_of(&msg) else { continue };
        let keep = match ip {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => true,
            IpAddr::V4(_) if iface.dhcp && iface.ip4.is_none() => true,
            _ => wanted.contains(&(ip, msg.header.prefix_len)),
        };
        if keep {
            present.push((ip, msg.header.prefix_len));
        } else {
            handle.address().del(msg).execute().await.map_err(|e| nl(format!("remove {ip} from {}", iface.name), e))?;
        }
    }
    for (ip, prefix) in wanted.into_iter().filter(|w| !present.contains(w)) {
        let mut request = handle.address().add(index, ip, prefix).replace();
        if ip.is_ipv6() {
            request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        request.execute().await.map_err(|e| nl(format!("add {ip}/{prefix} to {}", iface.name), e))?;
    }
    Ok(())
}

/// Starts (or, with `dhcp` off, stops) the container's `udhcpc` for the
/// interface; an earlier one is stopped first.
async fn dhcp(running: &Running, iface: &InterfaceSpec) -> Result<()> {
    let pid_file = format!("/run/udhcpc.{}.pid", iface.name);
    let host_view = format!("/proc/{}/root{pid_file}", running.pid);
    if !iface.dhcp && !Path::new(&host_view).exists() {
        return Ok(());
    }
    let mut script = format!("if [ -f {pid_file} ]; then kill $(cat {pid_file}) 2>/dev/null; rm -f {pid_file}; fi\n");
    if iface.dhcp {
        script.push_str(&format!(
            "command -v udhcpc >/dev/null || {{ echo 'no udhcpc in the container' >&2; exit 127; }}\n\
             udhcpc -f -i {name} -p {pid_file} -s /usr/share/udhcpc/default.script </dev/null >/dev/null 2>&1 &\n",
            name = iface.name
        ));
    }
    let running = *running;
    let out = tokio::task::spawn_blocking(move || crate::execute(&running, &script, Duration::from_secs(5)))
        .await
        .map_err(|e| Error::sys("dhcp task", io::Error::other(e)))??;
    if !out.status.success() {
        return Err(nl(format!("dhcp on {}", iface.name), String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

/// Whether a route is a default route of the main table with a gateway.
fn is_default_via(route: &RouteMessage) -> bool {
    route.header.destination_prefix_length == 0
        && route.header.table == RouteHeader::RT_TABLE_MAIN
        && route.attributes.iter().any(|a| matches!(a, RouteAttribute::Gateway(_)))
}

/// Sets (replaces) or, with `None`, removes the container's IPv4 and IPv6
/// default gateways. Idempotent.
pub async fn set_gateways(running: &Running, gw4: Option<Ipv4Addr>, gw6: Option<Ipv6Addr>) -> Result<()> {
    let ns = container_netns(running)?;
    let handle = connect_in(&ns).await?;
    let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
    for (query, want) in [(v4, gw4.map(IpAddr::V4)), (v6, gw6.map(IpAddr::V6))] {
        let routes: Vec<RouteMessage> =
            handle.route().get(query).execute().try_collect().await.map_err(|e| nl("list routes", e))?;
        for route in routes.into_iter().filter(is_default_via) {
            handle.route().del(route).execute().await.map_err(|e| nl("remove default route", e))?;
        }
        let message = match want {
            Some(IpAddr::V4(gw)) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build(),
            Some(IpAddr::V6(gw)) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).build(),
            None => continue,
        };
        handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(|e| nl(format!("default route via {want:?}"), e))?;
    }
    Ok(())
}

/// Deletes the host end `host_name` in `host_netns` (and so its container
/// end). A missing interface is fine.
pub async fn remove_interface(host_netns: &Path, host_name: &str) -> Result<()> {
    let ns = open_netns(host_netns)?;
    let handle = connect_in(&ns).await?;
    remove_link(&handle, host_name).await
}

async fn remove_link(handle: &Handle, name: &str) -> Result<()> {
    let Some(index) = link_index(handle, name).await? else { return Ok(()) };
    match handle.link().del(index).execute().await {
        Err(e) if errno(&e) != Some(libc::ENODEV) => Err(nl(format!("delete {name}"), e)),
        _ => Ok(()),
    }
}

/// Names of the veths in `host_netns` made by [`host_end_name`].
pub(crate) async fn host_ends(host_netns: &Path) -> Result<Vec<String>> {
    let ns = open_netns(host_netns)?;
    let handle = connect_in(&ns).await?;
    let links: Vec<_> = handle.link().get().execute().try_collect().await.map_err(|e| nl("list links", e))?;
    Ok(links
        .into_iter()
        .filter_map(|m| {
            m.attributes.into_iter().find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n) } else { None })
        })
        .filter(|n| id_of_host_end(n).is_some())
        .collect())
}

/// Deletes the links `names` in `host_netns`.
pub(crate) async fn delete_host_ends(host_netns: &Path, names: &[String]) -> Result<()> {
    let ns = open_netns(host_netns)?;
    let handle = connect_in(&ns).await?;
    for name in names {
        remove_link(&handle, name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface() -> InterfaceSpec {
        InterfaceSpec {
            name: "eth0".into(),
            mac: [0x02, 0, 0, 0, 0, 1],
            host_name: host_end_name("ab12", 0),
            ip4: Some((Ipv4Addr::new(10, 0, 0, 1), 24)),
            ip6: None,
            dhcp: false,
        }
    }

    #[test]
    fn host_end_names_round_trip_and_fit() {
        assert_eq!(host_end_name("ab12", 3), "cab12-3");
        assert_eq!(id_of_host_end("cab12-3"), Some("ab12"));
        assert!(host_end_name("abcdefghij", 999).len() <= 15);
        for other in ["eth0", "cab12-", "cAB-1", "cab12-1000", "c-1", "vab12-1"] {
            assert_eq!(id_of_host_end(other), None, "{other}");
        }
    }

    #[test]
    fn interface_specs_are_checked() {
        iface().validate().expect("valid");
        let bad: [fn(&mut InterfaceSpec); 5] = [
            |i| i.host_name = "a-very-long-name-x".into(),
            |i| i.name = "lo".into(),
            |i| i.mac = [1, 0, 0, 0, 0, 1],
            |i| i.ip4 = Some((Ipv4Addr::LOCALHOST, 33)),
            |i| i.name = "a/b".into(),
        ];
        for change in bad {
            let mut i = iface();
            change(&mut i);
            assert!(i.validate().is_err(), "{i:?}");
        }
    }
}
