//! `tomato cert ca|host|backend|accept|list|revoke`: the testbed's CA, the
//! certificates of hosts and backends, and a host's accepted backends.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rpc::accepted;
use rpc::certs::{CA_CERT_FILE, CA_KEY_FILE};
use rpc::{Ca, CertInfo, Issued};

/// Subcommands of `tomato cert`.
#[derive(Subcommand)]
pub enum CertCommand {
    /// Create the testbed CA: DIR/ca.pem (certificate) and DIR/ca.key (private key, mode 0600).
    Ca {
        /// Directory for ca.pem and ca.key (created if missing; an existing CA is never overwritten).
        #[arg(long)]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "ToMaTo-rs testbed CA")]
        cn: String,
    },
    /// Issue a hostmanager's server certificate: OUT/NAME.pem, OUT/NAME.key (0600) and OUT/ca.pem.
    Host {
        /// Directory of the CA (ca.pem, ca.key).
        #[arg(long)]
        ca_dir: PathBuf,
        /// The host's name (the certificate's CN).
        #[arg(long)]
        name: String,
        /// An IP address or DNS name the host is reached by (repeatable; default: NAME).
        #[arg(long = "san", value_name = "SAN")]
        sans: Vec<String>,
        /// Directory for the files (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Issue a backend's client certificate (CN = NAME, the owner name hosts use):
    /// OUT/NAME.pem, OUT/NAME.key (0600) and OUT/ca.pem.
    Backend {
        /// Directory of the CA (ca.pem, ca.key).
        #[arg(long)]
        ca_dir: PathBuf,
        /// The backend's name.
        #[arg(long)]
        name: String,
        /// Directory for the files (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Let the backend whose certificate is CERT call this host; prints its CN and fingerprint.
    Accept {
        /// The host's directory of accepted backend certificates.
        #[arg(long)]
        accepted_dir: PathBuf,
        /// The backend's certificate (PEM).
        cert: PathBuf,
    },
    /// List the accepted backend certificates: CN, SHA-256 fingerprint, file.
    List {
        /// The host's directory of accepted backend certificates.
        #[arg(long)]
        accepted_dir: PathBuf,
    },
    /// Stop accepting the certificates with this CN or fingerprint.
    Revoke {
        /// The host's directory of accepted backend certificates.
        #[arg(long)]
        accepted_dir: PathBuf,
        /// A backend's CN or a certificate's SHA-256 fingerprint (hex, `:` allowed).
        which: String,
    },
}

/// Runs a `tomato cert` subcommand.
pub fn run(cmd: CertCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CertCommand::Ca { dir, cn } => {
            let ca = Ca::create(&cn)?;
            ca.save(&dir)?;
            let info = CertInfo::from_pem(&ca.cert_pem, "CA certificate")?;
            println!("created the CA `{cn}` (sha256 {})", info.fingerprint);
            println!("  {}: the CA certificate; every host and backend needs it", dir.join(CA_CERT_FILE).display());
            println!("  {}: the CA private key (mode 0600); keep it here", dir.join(CA_KEY_FILE).display());
        }
        CertCommand::Host { ca_dir, name, sans, out_dir } => {
            let ca = Ca::load(&ca_dir)?;
            let issued = ca.issue_host(&name, &sans)?;
            let sans = if sans.is_empty() { name.clone() } else { sans.join(", ") };
            save_issued(&ca, &issued, &out_dir, &name, &format!("host certificate of `{name}` for {sans}"))?;
        }
        CertCommand::Backend { ca_dir, name, out_dir } => {
            let ca = Ca::load(&ca_dir)?;
            let issued = ca.issue_backend(&name)?;
            save_issued(&ca, &issued, &out_dir, &name, &format!("backend certificate of `{name}`"))?;
        }
        CertCommand::Accept { accepted_dir, cert } => {
            let pem = std::fs::read_to_string(&cert).with_context(|| format!("{}", cert.display()))?;
            let entry = accepted::accept(&accepted_dir, &pem).with_context(|| format!("{}", cert.display()))?;
            println!("accepted {} sha256 {} ({})", entry.cn, entry.fingerprint, entry.path.display());
        }
        CertCommand::List { accepted_dir } => {
            let all = accepted::load(&accepted_dir)?;
            if all.is_empty() {
                println!("no accepted certificates in {}", accepted_dir.display());
            }
            for entry in all {
                println!("{} sha256 {} ({})", entry.cn, entry.fingerprint, entry.path.display());
            }
        }
        CertCommand::Revoke { accepted_dir, which } => {
            for entry in accepted::revoke(&accepted_dir, &which)? {
                println!("revoked {} sha256 {} ({})", entry.cn, entry.fingerprint, entry.path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes NAME.pem, NAME.key and a copy of ca.pem into `out_dir` and says so.
fn save_issued(ca: &Ca, issued: &Issued, out_dir: &Path, name: &str, what: &str) -> anyhow::Result<()> {
    let (cert, key) = issued.save(out_dir, name)?;
    let ca_copy = out_dir.join(CA_CERT_FILE);
    match std::fs::read_to_string(&ca_copy) {
        Ok(existing) if existing == ca.cert_pem => {}
        Ok(_) => anyhow::bail!(
            "{}: exists and is not this CA's certificate; {} and {} were written, but the CA certificate was not",
            ca_copy.display(),
            cert.display(),
            key.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&ca_copy, &ca.cert_pem).with_context(|| format!("{}", ca_copy.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("{}", ca_copy.display())),
    }
    let info = CertInfo::from_pem(&issued.cert_pem, what)?;
    println!("issued the {what} (sha256 {})", info.fingerprint);
    println!("  {}: the certificate", cert.display());
    println!("  {}: its private key (mode 0600)", key.display());
    println!("  {}: the CA certificate it chains to", ca_copy.display());
    Ok(())
}
