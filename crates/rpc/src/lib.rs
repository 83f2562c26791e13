//! The mutual-TLS transport between the ToMaTo-rs backend (client) and its
//! hostmanagers (servers).
//!
//! - [`certs`]: the testbed CA, host (server) and backend (client)
//!   certificates, fingerprints and CNs.
//! - [`accepted`]: a hostmanager's directory of accepted backend
//!   certificates (ToMaTo's `/etc/tomato/client_certs`).
//! - [`server`]: TLS configuration and [`serve`], which runs an axum router
//!   over HTTPS with a [`Peer`] extension per request and graceful shutdown.
//! - [`jsonrpc`]: the wire format, [`RpcError`], the [`Dispatch`] trait the
//!   hostmanager's method table implements, and [`rpc_router`].
//! - [`client`]: the backend's [`Client`]: calls, websockets, fileserver
//!   bytes.
//!
//! Architecture invariant: this crate moves calls and checks who makes them;
//! it knows no element, connection or store. Every rustls configuration it
//! builds uses aws-lc-rs explicitly ([`install_crypto_provider`] is for other
//! rustls users in the process).

pub mod accepted;
pub mod certs;
pub mod client;
pub mod jsonrpc;
pub mod server;

pub use accepted::{AcceptedCert, AcceptedDir};
pub use certs::{Ca, CertError, CertInfo, Issued};
pub use client::{Client, ClientError, WebSocket};
pub use jsonrpc::{Dispatch, Owner, RpcError, RpcRequest, require_accepted, rpc_router};
pub use server::{ClientAuth, Peer, install_crypto_provider, serve, server_config};
