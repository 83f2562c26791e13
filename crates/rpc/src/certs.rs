//! The testbed's certificates: one CA, a server certificate per host and a
//! client certificate per backend.
//!
//! A [`Ca`] lives in a directory as `ca.pem` (public) and `ca.key` (mode
//! 0600). It issues host certificates (CN and subject alternative names the
//! host is reached by; extended key usage `serverAuth`) and backend
//! certificates (CN = the backend's name, which a hostmanager takes as the
//! owner of everything that backend creates; extended key usage
//! `clientAuth`). Keys are ECDSA P-256. A certificate is identified by its
//! [`fingerprint`], the SHA-256 of its DER encoding in lowercase hex.
//!
//! Files are written once: saving refuses to overwrite an existing
//! certificate or key, so a second `ca` run cannot silently replace the
//! testbed's CA. Private keys are created with mode 0600.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate in a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key in a CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

/// How long a CA certificate is valid from its creation: 20 years.
const CA_VALIDITY: Duration = Duration::days(20 * 365);
/// How long a host or backend certificate is valid from its issue: 10 years.
const LEAF_VALIDITY: Duration = Duration::days(10 * 365);
/// Certificates start being valid this long before their creation, so hosts
/// whose clocks are a little behind accept them.
const BACKDATE: Duration = Duration::days(1);

/// Everything that can go wrong with certificates and their files. `what`
/// names the file or the role of the PEM text (for example "CA certificate").
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read, written or listed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file that would be written exists already.
    #[error("{}: already exists; remove it first to replace it", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The text holds no PEM certificate.
    #[error("{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) found")]
    NoCertificate {
        /// The file or role of the text.
        what: String,
    },
    /// A PEM certificate that does not decode or parse as X.509.
    #[error("{what}: not a valid certificate: {reason}")]
    BadCertificate {
        /// The file or role of the text.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A private key that is missing, does not decode or cannot sign.
    #[error("{what}: not a valid private key: {reason}")]
    BadKey {
        /// The file or role of the text.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A private key that does not belong to the certificate beside it.
    #[error("{key}: this key does not belong to the certificate {cert}")]
    KeyMismatch {
        /// The key's file or role.
        key: String,
        /// The certificate's file or role.
        cert: String,
    },
    /// A certificate without a common name where one is needed.
    #[error("{what}: the certificate has no common name (CN)")]
    NoCommonName {
        /// The file or role of the text.
        what: String,
    },
    /// A host or backend name that cannot be used.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A subject alternative name that is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name `{san}`: not an IP address or DNS name")]
    InvalidSan {
        /// The name as given.
        san: String,
    },
    /// rcgen refused to build or sign a certificate.
    #[error("creating the certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificates or key for a TLS configuration.
    #[error("{what}: {source}")]
    Tls {
        /// Which configuration.
        what: String,
        /// rustls' error.
        source: rustls::Error,
    },
    /// rustls could not build a client certificate verifier from the CA.
    #[error("{what}: {reason}")]
    Verifier {
        /// Which configuration.
        what: String,
        /// rustls' reason.
        reason: String,
    },
}

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
}

impl Issued {
    /// Writes `<name>.pem` and `<name>.key` (mode 0600) into `dir`, creating
    /// the directory. Refuses to overwrite either file. Returns both paths.
    pub fn save(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), CertError> {
        check_name(name)?;
        create_dir(dir)?;
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        refuse_existing(&[&cert, &key])?;
        write_new(&key, &self.key_pem, 0o600)?;
        write_new(&cert, &self.cert_pem, 0o644)?;
        Ok((cert, key))
    }
}

/// The testbed's certificate authority: its certificate and private key, PEM.
#[derive(Clone, Debug)]
pub struct Ca {
    /// The CA certificate, PEM (`ca.pem`): every host and backend trusts it.
    pub cert_pem: String,
    /// The CA private key, PEM (`ca.key`): only the machine that issues
    /// certificates needs it.
    pub key_pem: String,
}

impl Ca {
    /// Creates a new self-signed CA whose subject is `CN=<cn>`.
    pub fn create(cn: &str) -> Result<Ca, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Loads `ca.pem` and `ca.key` from `dir` and checks that the key belongs
    /// to the certificate.
    pub fn load(dir: &Path) -> Result<Ca, CertError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let ca = Ca { cert_pem: read(&cert_path)?, key_pem: read(&key_path)? };
        let cert_what = cert_path.display().to_string();
        let key_what = key_path.display().to_string();
        let der = first_cert(&ca.cert_pem, &cert_what)?;
        let key = key_pair(&ca.key_pem, &key_what)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| CertError::BadCertificate { what: cert_what.clone(), reason: e.to_string() })?;
        if !parsed.is_ca() {
            return Err(CertError::BadCertificate { what: cert_what, reason: "it is not a CA certificate".into() });
        }
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CertError::KeyMismatch { key: key_what, cert: cert_what });
        }
        Ok(ca)
    }

    /// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`, creating the
    /// directory. Refuses to overwrite an existing CA.
    pub fn save(&self, dir: &Path) -> Result<(), CertError> {
        create_dir(dir)?;
        let cert = dir.join(CA_CERT_FILE);
        let key = dir.join(CA_KEY_FILE);
        refuse_existing(&[&cert, &key])?;
        write_new(&key, &self.key_pem, 0o600)?;
        write_new(&cert, &self.cert_pem, 0o644)
    }

    /// Issues a host's server certificate: `CN=<name>`, the subject
    /// alternative names `sans` (each an IP address or a DNS name; `name`
    /// alone when empty), extended key usage `serverAuth`.
    pub fn issue_host(&self, name: &str, sans: &[String]) -> Result<Issued, CertError> {
        check_name(name)?;
        let sans: Vec<String> = if sans.is_empty() { vec![name.to_owned()] } else { sans.to_vec() };
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for san in &sans {
            params.subject_alt_names.push(parse_san(san)?);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(name, params)
    }

    /// Issues a backend's client certificate: `CN=<name>` (the owner name a
    /// hostmanager uses for this backend), extended key usage `clientAuth`.
    pub fn issue_backend(&self, name: &str) -> Result<Issued, CertError> {
        check_name(name)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, params)
    }

    fn issue(&self, cn: &str, mut params: CertificateParams) -> Result<Issued, CertError> {
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY);
        let ca_key = key_pair(&self.key_pem, "CA key")?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)
            .map_err(|e| CertError::BadCertificate { what: "CA certificate".into(), reason: e.to_string() })?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// What a certificate says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name, if it has one.
    pub cn: Option<String>,
    /// SHA-256 of the DER encoding, lowercase hex ([`fingerprint`]).
    pub fingerprint: String,
}

impl CertInfo {
    /// Reads the first certificate of `pem`; `what` names it in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<CertInfo, CertError> {
        let der = first_cert(pem, what)?;
        CertInfo::from_der(der.as_ref(), what)
    }

    /// Reads a DER certificate; `what` names it in errors.
    pub fn from_der(der: &[u8], what: &str) -> Result<CertInfo, CertError> {
        Ok(CertInfo { cn: common_name(der, what)?, fingerprint: fingerprint(der) })
    }
}

/// SHA-256 of a certificate's DER encoding, 64 lowercase hex digits.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The subject's first common name of a DER certificate, if any.
pub fn common_name(der: &[u8], what: &str) -> Result<Option<String>, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertError::BadCertificate { what: what.to_owned(), reason: e.to_string() })?;
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    Ok(cn)
}

/// All certificates in PEM text, in order; at least one.
pub(crate) fn certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::BadCertificate { what: what.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate { what: what.to_owned() });
    }
    Ok(certs)
}

/// The first certificate in PEM text.
pub(crate) fn first_cert(pem: &str, what: &str) -> Result<CertificateDer<'static>, CertError> {
    let mut all = certs(pem, what)?;
    Ok(all.swap_remove(0))
}

/// The private key in PEM text (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CertError::BadKey { what: what.to_owned(), reason: e.to_string() })
}

fn key_pair(pem: &str, what: &str) -> Result<KeyPair, CertError> {
    KeyPair::from_pem(pem).map_err(|e| CertError::BadKey { what: what.to_owned(), reason: e.to_string() })
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

fn parse_san(san: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !san.is_empty()
        && san.len() <= 253
        && san.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        });
    if !valid {
        return Err(CertError::InvalidSan { san: san.to_owned() });
    }
    let name = san.to_owned().try_into().map_err(|_| CertError::InvalidSan { san: san.to_owned() })?;
    Ok(SanType::DnsName(name))
}

/// Checks a host or backend name: it becomes a CN and a file name.
pub(crate) fn check_name(name: &str) -> Result<(), CertError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 64 {
        "it is longer than 64 characters"
    } else if name.starts_with('.') || name.starts_with('-') {
        "it starts with `.` or `-`"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        "allowed are letters, digits, `.`, `-` and `_`"
    } else {
        return Ok(());
    };
    Err(CertError::InvalidName { name: name.to_owned(), reason: reason.to_owned() })
}

pub(crate) fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io { path: path.to_owned(), source })
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io { path: dir.to_owned(), source })
}

fn refuse_existing(paths: &[&Path]) -> Result<(), CertError> {
    match paths.iter().find(|p| p.exists()) {
        Some(path) => Err(CertError::Exists { path: path.to_path_buf() }),
        None => Ok(()),
    }
}

/// Creates `path` with `mode` (never loosened by an existing file: the file
/// must not exist) and writes `contents`.
pub(crate) fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), CertError> {
    let io = |source| CertError::Io { path: path.to_owned(), source };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists { CertError::Exists { path: path.to_owned() } } else { io(e) }
    })?;
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_holder_and_chain_to_the_ca() {
        let ca = Ca::create("Test CA").expect("ca");
        let host = ca.issue_host("host1", &["127.0.0.1".into(), "host1.example".into()]).expect("host");
        let backend = ca.issue_backend("backend-a").expect("backend");
        let info = CertInfo::from_pem(&backend.cert_pem, "backend").expect("info");
        assert_eq!(info.cn.as_deref(), Some("backend-a"));
        assert_eq!(info.fingerprint.len(), 64);
        let host_der = first_cert(&host.cert_pem, "host").expect("der");
        let (_, parsed) = x509_parser::parse_x509_certificate(host_der.as_ref()).expect("parse");
        let sans = parsed.subject_alternative_name().expect("ext").expect("sans").value.general_names.clone();
        assert_eq!(sans.len(), 2, "{sans:?}");
        let ca_der = first_cert(&ca.cert_pem, "ca").expect("ca der");
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(ca_der.as_ref()).expect("parse ca");
        assert_eq!(parsed.issuer(), ca_parsed.subject());
        parsed.verify_signature(Some(ca_parsed.public_key())).expect("signed by the CA");
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(fingerprint(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn names_and_sans_are_checked() {
        let ca = Ca::create("Test CA").expect("ca");
        assert!(matches!(ca.issue_backend("a/b"), Err(CertError::InvalidName { .. })));
        assert!(matches!(ca.issue_backend(""), Err(CertError::InvalidName { .. })));
        assert!(matches!(ca.issue_host("h", &["bad name".into()]), Err(CertError::InvalidSan { .. })));
    }

    #[test]
    fn ca_round_trips_through_a_directory_and_refuses_to_be_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::create("Test CA").expect("ca");
        ca.save(dir.path()).expect("save");
        let loaded = Ca::load(dir.path()).expect("load");
        assert_eq!(loaded.cert_pem, ca.cert_pem);
        let err = Ca::create("Other").expect("ca").save(dir.path()).expect_err("exists");
        assert!(err.to_string().contains("ca.pem: already exists"), "{err}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(CA_KEY_FILE)).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_foreign_key_is_refused_when_loading_a_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::create("Test CA").expect("ca");
        let other = Ca::create("Other").expect("ca");
        Ca { cert_pem: ca.cert_pem, key_pem: other.key_pem }.save(dir.path()).expect("save");
        let err = Ca::load(dir.path()).expect_err("mismatch");
        assert!(matches!(err, CertError::KeyMismatch { .. }), "{err}");
    }
}
