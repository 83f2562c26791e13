//! `PortSpec`: a port described in one word, as the command line takes it,
//! and the code that opens it.
//!
//! ```text
//! NAME                          an existing interface (PacketPort)
//! tap:NAME                      a tap the port creates and deletes (TapPort)
//! dgram:LOCAL=REMOTE            QEMU's unix datagram netdev (DgramPort):
//!                               bind socket path LOCAL, send to REMOTE
//! udp:BIND=PEER,key=HEX         UDP tunnel to another host (TunnelPort):
//! udp:BIND=PEER,keyfile=PATH    bind ADDR:PORT, send to ADDR:PORT (IPv6 as
//!                               [ADDR]:PORT), 32-byte key as 64 hex digits
//!                               or in a file (keeps it out of `ps`)
//! ```
//!
//! Interface names never contain `:` (Linux refuses them), so a plain word
//! is always an interface. `LOCAL` must not contain `=`. Parsing is pure
//! (a key file is read when the port is opened); errors name the field and
//! the allowed forms.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use thiserror::Error;

use crate::dgram::DgramPort;
use crate::packet::PacketPort;
use crate::port::Port;
use crate::sys;
use crate::tap::{MAX_IFNAME, TapPort};
use crate::tunnel::wire::{KeyError, TunnelKey};
use crate::tunnel::{TunnelConfig, TunnelPort};

/// The accepted forms, for error messages.
pub const FORMS: &str = "NAME, tap:NAME, dgram:LOCAL_PATH=REMOTE_PATH, udp:BIND_ADDR:PORT=PEER_ADDR:PORT,key=HEX64 \
                         or udp:...,keyfile=PATH";

/// Where a tunnel's key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Given inline.
    Inline(TunnelKey),
    /// 64 hex digits in a file (surrounding whitespace ignored), read on
    /// open.
    File(PathBuf),
}

/// A parsed port description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// An existing interface, joined through AF_PACKET.
    Interface(String),
    /// A tap interface created for the port.
    Tap(String),
    /// A unix datagram socket for QEMU's `-netdev dgram`.
    Dgram {
        /// The socket path the port binds.
        local: PathBuf,
        /// The socket path it sends to (QEMU's `local.path`).
        remote: PathBuf,
    },
    /// An encrypted UDP tunnel.
    Udp {
        /// Local address and port.
        bind: SocketAddr,
        /// The peer's address and port.
        peer: SocketAddr,
        /// The pre-shared key.
        key: KeySource,
    },
}

/// Why a port description was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// Empty text.
    #[error("empty port; expected one of: {FORMS}")]
    Empty,
    /// A `kind:` prefix that is not known.
    #[error("unknown port kind {0:?}; expected one of: {FORMS}")]
    UnknownKind(String),
    /// A field with a bad value: the field, the value, what is allowed.
    #[error("{kind} port: {field} {value:?}: {allowed}")]
    Field {
        /// The port kind (`interface`, `tap`, `dgram`, `udp`).
        kind: &'static str,
        /// The field's name.
        field: &'static str,
        /// What was given.
        value: String,
        /// What would be accepted.
        allowed: String,
    },
    /// A bad key.
    #[error("udp port: {0}")]
    Key(#[from] KeyError),
}

fn field(kind: &'static str, field: &'static str, value: &str, allowed: impl Into<String>) -> SpecError {
    SpecError::Field { kind, field, value: value.to_string(), allowed: allowed.into() }
}

fn check_ifname(kind: &'static str, name: &str) -> Result<(), SpecError> {
    let bad = name.is_empty()
        || name.len() > MAX_IFNAME
        || name == "."
        || name == ".."
        || name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if bad {
        return Err(field(
            kind,
            "interface name",
            name,
            format!("1 to {MAX_IFNAME} bytes, no '/', ':', NUL or spaces, not '.' or '..'"),
        ));
    }
    Ok(())
}

fn parse_addr(which: &'static str, text: &str) -> Result<SocketAddr, SpecError> {
    text.parse().map_err(|_| field("udp", which, text, "ADDR:PORT, e.g. 192.0.2.1:4789 or [2001:db8::1]:4789"))
}

fn parse_udp(rest: &str) -> Result<PortSpec, SpecError> {
    let mut parts = rest.split(',');
    let ends = parts.next().unwrap_or_default();
    let (bind, peer) =
        ends.split_once('=').ok_or_else(|| field("udp", "addresses", ends, "BIND_ADDR:PORT=PEER_ADDR:PORT"))?;
    let (bind, peer) = (parse_addr("bind address", bind)?, parse_addr("peer address", peer)?);
    if bind.is_ipv4() != peer.is_ipv4() {
        return Err(field("udp", "addresses", ends, "both IPv4 or both IPv6"));
    }
    let mut key = None;
    for option in parts {
        let parsed = match option.split_once('=') {
            Some(("key", hex)) => KeySource::Inline(TunnelKey::from_hex(hex)?),
            Some(("keyfile", path)) if !path.is_empty() => KeySource::File(PathBuf::from(path)),
            _ => return Err(field("udp", "option", option, "key=HEX64 or keyfile=PATH")),
        };
        if key.replace(parsed).is_some() {
            return Err(field("udp", "option", option, "exactly one of key= or keyfile="));
        }
    }
    let key = key.ok_or_else(|| field("udp", "key", "", "key=HEX64 or keyfile=PATH (required)"))?;
    Ok(PortSpec::Udp { bind, peer, key })
}

impl FromStr for PortSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<PortSpec, SpecError> {
        if text.is_empty() {
            return Err(SpecError::Empty);
        }
        let Some((kind, rest)) = text.split_once(':') else {
            check_ifname("interface", text)?;
            return Ok(PortSpec::Interface(text.to_string()));
        };
        match kind {
            "tap" => {
                check_ifname("tap", rest)?;
                Ok(PortSpec::Tap(rest.to_string()))
            }
            "dgram" => {
                let (local, remote) =
                    rest.split_once('=').ok_or_else(|| field("dgram", "paths", rest, "LOCAL_PATH=REMOTE_PATH"))?;
                for (name, path) in [("local path", local), ("remote path", remote)] {
                    // sun_path holds 108 bytes including the NUL.
                    if path.is_empty() || path.len() > 107 || path.contains('\0') {
                        return Err(field("dgram", name, path, "a socket file path of 1 to 107 bytes"));
                    }
                }
                if local == remote {
                    return Err(field("dgram", "remote path", remote, "a path other than the local one"));
                }
                Ok(PortSpec::Dgram { local: PathBuf::from(local), remote: PathBuf::from(remote) })
            }
            "udp" => parse_udp(rest),
            other => Err(SpecError::UnknownKind(other.to_string())),
        }
    }
}

impl fmt::Display for PortSpec {
    /// The spec in the syntax it parses from, with the key elided.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Interface(name) => write!(f, "{name}"),
            PortSpec::Tap(name) => write!(f, "tap:{name}"),
            PortSpec::Dgram { local, remote } => write!(f, "dgram:{}={}", local.display(), remote.display()),
            PortSpec::Udp { bind, peer, key: KeySource::Inline(_) } => write!(f, "udp:{bind}={peer},key=..."),
            PortSpec::Udp { bind, peer, key: KeySource::File(path) } => {
                write!(f, "udp:{bind}={peer},keyfile={}", path.display())
            }
        }
    }
}

impl PortSpec {
    /// Opens the port. `netns` (a name under `/run/netns`, or a path) is
    /// where an interface is looked up, a tap created and a UDP socket
    /// bound; `None` is the caller's namespace. Unix socket paths live in
    /// the file system and are the same in every namespace.
    pub fn open(&self, netns: Option<&str>) -> io::Result<Box<dyn Port>> {
        let ns = netns.map(sys::netns_path);
        Ok(match self {
            PortSpec::Interface(name) => Box::new(match ns {
                Some(path) => {
                    let name = name.clone();
                    sys::in_netns(&path, move || PacketPort::open(&name))??
                }
                None => PacketPort::open(name)?,
            }),
            PortSpec::Tap(name) => Box::new(match ns {
                Some(path) => TapPort::create_in(name, &path)?,
                None => TapPort::create(name)?,
            }),
            PortSpec::Dgram { local, remote } => Box::new(DgramPort::open(local, remote)?),
            PortSpec::Udp { bind, peer, key } => {
                let key = match key {
                    KeySource::Inline(key) => key.clone(),
                    KeySource::File(path) => {
                        let text = std::fs::read_to_string(path)
                            .map_err(|e| io::Error::new(e.kind(), format!("udp port: keyfile {path:?}: {e}")))?;
                        TunnelKey::from_hex(text.trim()).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, format!("udp port: keyfile {path:?}: {e}"))
                        })?
                    }
                };
                let config = TunnelConfig { bind: *bind, peer: *peer, key };
                Box::new(match ns {
                    Some(path) => TunnelPort::open_in(&config, &path)?,
                    None => TunnelPort::open(&config)?,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn parse(text: &str) -> Result<PortSpec, SpecError> {
        text.parse()
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn every_kind_parses() {
        assert_eq!(parse("veth0"), Ok(PortSpec::Interface("veth0".into())));
        assert_eq!(parse("tap:tmt0"), Ok(PortSpec::Tap("tmt0".into())));
        assert_eq!(
            parse("dgram:/run/a.sock=/run/b.sock"),
            Ok(PortSpec::Dgram { local: "/run/a.sock".into(), remote: "/run/b.sock".into() })
        );
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(
            parse(&format!("udp:0.0.0.0:4789=192.0.2.7:4790,key={HEX}")),
            Ok(PortSpec::Udp {
                bind: "0.0.0.0:4789".parse().expect("addr"),
                peer: "192.0.2.7:4790".parse().expect("addr"),
                key: KeySource::Inline(TunnelKey::from_bytes(bytes)),
            })
        );
        assert_eq!(
            parse("udp:[::1]:1=[::1]:2,keyfile=/etc/tomato/link.key"),
            Ok(PortSpec::Udp {
                bind: "[::1]:1".parse().expect("addr"),
                peer: "[::1]:2".parse().expect("addr"),
                key: KeySource::File("/etc/tomato/link.key".into()),
            })
        );
    }

    #[test]
    fn display_round_trips_without_showing_the_key() {
        for text in ["eth1", "tap:t0", "dgram:a=b", "udp:10.0.0.1:5=10.0.0.2:6,keyfile=k"] {
            assert_eq!(parse(text).expect(text).to_string(), text);
        }
        let shown = parse(&format!("udp:10.0.0.1:5=10.0.0.2:6,key={HEX}")).expect("valid").to_string();
        assert_eq!(shown, "udp:10.0.0.1:5=10.0.0.2:6,key=...");
    }

    #[test]
    fn errors_name_the_field_and_the_allowed_forms() {
        assert!(err("").contains("tap:NAME"));
        assert!(err("vde:/tmp/x").contains("unknown port kind \"vde\"; expected one of: NAME, tap:NAME"));
        assert!(err("tap:").contains("tap port: interface name \"\": 1 to 15 bytes"));
        assert!(err("tap:a-very-long-tap-name").contains("1 to 15 bytes"));
        assert!(err("a b").contains("interface port: interface name"));
        assert!(err("dgram:/only/one").contains("dgram port: paths \"/only/one\": LOCAL_PATH=REMOTE_PATH"));
        assert!(err("dgram:=/b").contains("dgram port: local path \"\""));
        assert!(err("dgram:/a=/a").contains("remote path \"/a\": a path other than the local one"));
        assert!(err(&format!("dgram:/a={}", "x".repeat(108))).contains("1 to 107 bytes"));
        assert!(err("udp:1.2.3.4:5").contains("udp port: addresses \"1.2.3.4:5\": BIND_ADDR:PORT=PEER_ADDR:PORT"));
        assert!(err(&format!("udp:1.2.3.4=5.6.7.8:9,key={HEX}")).contains("bind address \"1.2.3.4\": ADDR:PORT"));
        assert!(err(&format!("udp:1.2.3.4:5=host:9,key={HEX}")).contains("peer address \"host:9\""));
        assert!(err(&format!("udp:1.2.3.4:5=[::1]:9,key={HEX}")).contains("both IPv4 or both IPv6"));
        assert!(err("udp:1.2.3.4:5=5.6.7.8:9").contains("udp port: key \"\": key=HEX64 or keyfile=PATH (required)"));
        assert!(err("udp:1.2.3.4:5=5.6.7.8:9,key=abc").contains("udp port: key: expected 64 hex digits"));
        assert!(err("udp:1.2.3.4:5=5.6.7.8:9,mtu=1400").contains("option \"mtu=1400\": key=HEX64 or keyfile=PATH"));
        assert!(err(&format!("udp:1.2.3.4:5=5.6.7.8:9,key={HEX},keyfile=k")).contains("exactly one of"));
    }

    proptest::proptest! {
        /// Any text parses or is refused with a message; what parses
        /// prints back to a spec that parses to the same thing.
        #[test]
        fn any_text_parses_or_names_a_problem(text in "(tap:|dgram:|udp:|x:)?[a-z0-9:=,./\\[\\] ]{0,40}") {
            match parse(&text) {
                Ok(spec) => {
                    let again = parse(&spec.to_string());
                    if !matches!(spec, PortSpec::Udp { key: KeySource::Inline(_), .. }) {
                        proptest::prop_assert_eq!(again, Ok(spec));
                    }
                }
                Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
