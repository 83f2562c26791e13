//! A hostmanager's list of accepted backends: a directory of PEM
//! certificates, like ToMaTo's `/etc/tomato/client_certs`.
//!
//! A backend may call a hostmanager when its client certificate chains to the
//! testbed CA (checked during the TLS handshake) *and* the certificate itself
//! is in this directory (checked per request against its [`fingerprint`], so
//! [`accept`] and [`revoke`] take effect at once, without a restart). The
//! certificate's CN is the owner name of everything the backend creates.
//!
//! Each accepted certificate is one file `<cn>-<first 16 hex digits of the
//! fingerprint>.pem`; every `*.pem` file in the directory counts, so an
//! administrator may also copy certificates in by hand.
//!
//! [`fingerprint`]: crate::certs::fingerprint

use std::path::{Path, PathBuf};

use crate::certs::{self, CertError, CertInfo};

/// One accepted backend certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedCert {
    /// The certificate's common name: the backend's owner name.
    pub cn: String,
    /// SHA-256 of the certificate's DER encoding, lowercase hex.
    pub fingerprint: String,
    /// The file that holds it.
    pub path: PathBuf,
}

/// Adds the first certificate of `cert_pem` to the accepted directory `dir`
/// (created if missing). Accepting a certificate twice changes nothing and
/// returns the existing entry. The certificate must have a CN.
pub fn accept(dir: &Path, cert_pem: &str) -> Result<AcceptedCert, CertError> {
    let der = certs::first_cert(cert_pem, "the certificate to accept")?;
    let info = CertInfo::from_der(der.as_ref(), "the certificate to accept")?;
    let cn = info.cn.ok_or_else(|| CertError::NoCommonName { what: "the certificate to accept".into() })?;
    if let Some(existing) = load(dir)?.into_iter().find(|a| a.fingerprint == info.fingerprint) {
        return Ok(existing);
    }
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io { path: dir.to_owned(), source })?;
    let file_name = format!("{}-{}.pem", file_safe(&cn), &info.fingerprint[..16]);
    let path = dir.join(&file_name);
    // Write under a name that `load` ignores, then rename: a server reading the
    // directory at the same time sees the whole file or none.
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    // Only the certificate is stored, even if the file given also held its key.
    certs::write_new(&tmp, &pem_of(der.as_ref()), 0o644)?;
    std::fs::rename(&tmp, &path).map_err(|source| CertError::Io { path: path.clone(), source })?;
    Ok(AcceptedCert { cn, fingerprint: info.fingerprint, path })
}

/// Removes every accepted certificate whose CN or fingerprint is `which`
/// (a fingerprint may be written with `:` separators and in upper case).
/// Returns what was removed; an error if nothing matched.
pub fn revoke(dir: &Path, which: &str) -> Result<Vec<AcceptedCert>, RevokeError> {
    let wanted_fingerprint = which.replace(':', "").to_ascii_lowercase();
    let matching: Vec<AcceptedCert> =
        load(dir)?.into_iter().filter(|a| a.cn == which || a.fingerprint == wanted_fingerprint).collect();
    if matching.is_empty() {
        return Err(RevokeError::NotAccepted { which: which.to_owned(), dir: dir.to_owned() });
    }
    for cert in &matching {
        std::fs::remove_file(&cert.path).map_err(|source| CertError::Io { path: cert.path.clone(), source })?;
    }
    Ok(matching)
}

/// Why [`revoke`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No accepted certificate has that CN or fingerprint.
    #[error("{}: no accepted certificate has the CN or fingerprint `{which}`", dir.display())]
    NotAccepted {
        /// The CN or fingerprint asked for.
        which: String,
        /// The accepted directory.
        dir: PathBuf,
    },
    /// The directory or a file in it could not be read or removed.
    #[error(transparent)]
    Cert(#[from] CertError),
}

/// Every accepted certificate in `dir`, sorted by CN then fingerprint. A
/// missing directory accepts nobody. A `*.pem` file that is not a
/// certificate with a CN is an error naming the file, so a broken entry is
/// noticed rather than silently skipped.
pub fn load(dir: &Path) -> Result<Vec<AcceptedCert>, CertError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CertError::Io { path: dir.to_owned(), source }),
    };
    let mut accepted = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CertError::Io { path: dir.to_owned(), source })?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".pem") {
            continue;
        }
        let what = path.display().to_string();
        let info = CertInfo::from_pem(&certs::read(&path)?, &what)?;
        let cn = info.cn.ok_or(CertError::NoCommonName { what })?;
        accepted.push(AcceptedCert { cn, fingerprint: info.fingerprint, path });
    }
    accepted.sort_by(|a, b| (&a.cn, &a.fingerprint).cmp(&(&b.cn, &b.fingerprint)));
    Ok(accepted)
}

/// A handle on an accepted directory that servers share; it reads the
/// directory on every lookup, so changes apply at once.
#[derive(Clone, Debug)]
pub struct AcceptedDir {
    dir: PathBuf,
}

impl AcceptedDir {
    /// The accepted certificates in `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> AcceptedDir {
        AcceptedDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The accepted certificate with this fingerprint, if any; reads the
    /// directory now.
    pub fn find(&self, fingerprint: &str) -> Result<Option<AcceptedCert>, CertError> {
        Ok(load(&self.dir)?.into_iter().find(|a| a.fingerprint == fingerprint))
    }
}

/// A CN as part of a file name: characters other than letters, digits, `.`,
/// `-` and `_` become `_`, and a leading `.` too (hidden files are ignored).
fn file_safe(cn: &str) -> String {
    let safe: String =
        cn.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    match safe.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => safe,
    }
}

/// PEM text of one DER certificate.
fn pem_of(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::Ca;

    #[test]
    fn accept_list_and_revoke_by_cn_or_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accepted_dir = dir.path().join("accepted");
        let ca = Ca::create("Test CA").expect("ca");
        let a = ca.issue_backend("backend-a").expect("a");
        let b = ca.issue_backend("backend-b").expect("b");
        assert!(load(&accepted_dir).expect("missing dir").is_empty());
        let first = accept(&accepted_dir, &a.cert_pem).expect("accept a");
        assert_eq!(first.cn, "backend-a");
        assert_eq!(accept(&accepted_dir, &a.cert_pem).expect("again"), first);
        let second = accept(&accepted_dir, &b.cert_pem).expect("accept b");
        let all = load(&accepted_dir).expect("load");
        assert_eq!(all.iter().map(|c| c.cn.as_str()).collect::<Vec<_>>(), ["backend-a", "backend-b"]);
        // The stored file is the certificate alone and reads back the same.
        assert_eq!(
            CertInfo::from_pem(&certs::read(&first.path).expect("read"), "x").expect("info").fingerprint,
            first.fingerprint
        );

        let colon_upper: String = second
            .fingerprint
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).expect("hex").to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(revoke(&accepted_dir, &colon_upper).expect("revoke b"), vec![second]);
        assert_eq!(revoke(&accepted_dir, "backend-a").expect("revoke a"), vec![first]);
        assert!(load(&accepted_dir).expect("load").is_empty());
        let err = revoke(&accepted_dir, "backend-a").expect_err("nothing left");
        assert!(err.to_string().contains("no accepted certificate has the CN or fingerprint `backend-a`"), "{err}");
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").expect("write");
        std::fs::write(dir.path().join("README"), "ignored").expect("write");
        let err = load(dir.path()).expect_err("broken");
        assert!(err.to_string().contains("junk.pem: no PEM certificate"), "{err}");
    }

    #[test]
    fn a_certificate_without_cn_is_not_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["x".to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).expect("cert");
        let err = accept(dir.path(), &cert.pem()).expect_err("no cn");
        assert!(matches!(err, CertError::NoCommonName { .. }), "{err}");
    }

    #[test]
    fn pem_of_matches_rcgen() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert =
            rcgen::CertificateParams::new(vec!["x".to_owned()]).expect("params").self_signed(&key).expect("cert");
        assert_eq!(pem_of(cert.der()).replace("\r\n", "\n"), cert.pem().replace("\r\n", "\n"));
    }
}
