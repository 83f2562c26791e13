//! HTTP Basic credentials, the way ToMaTo's XML-RPC clients log in
//! (`https://user:password@host:8001/` in Python's `ServerProxy` becomes an
//! `Authorization: Basic base64(user:password)` header).

use std::fmt;

use base64::Engine;
use rpc::RpcError;
use rpc::jsonrpc::kind;

/// A user name and password from an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (never empty).
    pub username: String,
    /// The password (may be empty; whether that is allowed is the
    /// backend's decision).
    pub password: String,
}

impl fmt::Debug for Credentials {
    /// Leaves the password out, so credentials can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<hidden>").finish()
    }
}

/// Why an `Authorization` header holds no Basic credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header is empty.
    #[error("the Authorization header is empty; send `Basic base64(user:password)`")]
    Empty,
    /// Another scheme than Basic.
    #[error("the Authorization header uses the scheme `{scheme}`; only `Basic` is accepted")]
    NotBasic {
        /// The scheme given (shortened).
        scheme: String,
    },
    /// The part after `Basic` is not base64.
    #[error("the Basic credentials are not standard base64 of `user:password`")]
    NotBase64,
    /// The decoded credentials are not UTF-8.
    #[error("the Basic credentials are not UTF-8 text")]
    NotUtf8,
    /// The decoded credentials have no `:`.
    #[error("the Basic credentials have no `:` between user name and password")]
    NoColon,
    /// The user name is empty.
    #[error("the Basic credentials have an empty user name")]
    EmptyUsername,
}

impl From<AuthError> for RpcError {
    /// Unreadable credentials are a failed login: `not_logged_in` (HTTP 401).
    fn from(error: AuthError) -> RpcError {
        RpcError::new(kind::NOT_LOGGED_IN, error.to_string())
    }
}

/// Reads the value of an `Authorization` header: the scheme `Basic` (any
/// case), spaces, then base64 of `user:password` (padding optional, UTF-8,
/// split at the first `:`, so passwords may contain colons).
pub fn parse_basic(header: &str) -> Result<Credentials, AuthError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(AuthError::Empty);
    }
    let (scheme, rest) = header.split_once([' ', '\t']).unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::NotBasic { scheme: scheme.chars().take(20).collect() });
    }
    let encoded = rest.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.as_bytes())
        .map_err(|_| AuthError::NotBase64)?;
    let text = String::from_utf8(bytes).map_err(|_| AuthError::NotUtf8)?;
    let (username, password) = text.split_once(':').ok_or(AuthError::NoColon)?;
    if username.is_empty() {
        return Err(AuthError::EmptyUsername);
    }
    Ok(Credentials { username: username.to_owned(), password: password.to_owned() })
}

/// The header value a client sends for `credentials`.
pub fn encode_basic(credentials: &Credentials) -> String {
    let pair = format!("{}:{}", credentials.username, credentials.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(username: &str, password: &str) -> Credentials {
        Credentials { username: username.into(), password: password.into() }
    }

    #[test]
    fn reads_what_python_sends() {
        // base64.encodebytes(b"alice:s3cr:et") as xmlrpc.client sends it.
        assert_eq!(parse_basic("Basic YWxpY2U6czNjcjpldA=="), Ok(creds("alice", "s3cr:et")));
        assert_eq!(parse_basic("basic   YWxpY2U6czNjcjpldA"), Ok(creds("alice", "s3cr:et")));
        assert_eq!(parse_basic("BASIC Ym9iOg=="), Ok(creds("bob", "")));
        let unicode = creds("jürgen", "päss");
        assert_eq!(parse_basic(&encode_basic(&unicode)), Ok(unicode));
    }

    #[test]
    fn refuses_with_reasons() {
        assert_eq!(parse_basic(""), Err(AuthError::Empty));
        assert_eq!(parse_basic("  "), Err(AuthError::Empty));
        assert_eq!(parse_basic("Bearer abc"), Err(AuthError::NotBasic { scheme: "Bearer".into() }));
        assert_eq!(parse_basic("Basic"), Err(AuthError::NoColon));
        assert_eq!(parse_basic("Basic !!!"), Err(AuthError::NotBase64));
        assert_eq!(parse_basic("Basic /w=="), Err(AuthError::NotUtf8));
        assert_eq!(parse_basic("Basic YWxpY2U="), Err(AuthError::NoColon));
        assert_eq!(parse_basic("Basic OnB3"), Err(AuthError::EmptyUsername));
        let error: RpcError = AuthError::NoColon.into();
        assert_eq!(error.http_status().as_u16(), 401);
        assert_eq!(format!("{:?}", creds("a", "secret")), "Credentials { username: \"a\", password: \"<hidden>\" }");
    }
}
