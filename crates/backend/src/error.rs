//! One error type for the whole crate, mapped to ToMaTo's error shape.
//!
//! Each module has its own error enum; [`Error`] gathers them with `From`,
//! and [`Error::to_rpc`] is the one place they become an
//! [`rpc::RpcError`] (ToMaTo's `{code, message, data}`), which the API
//! server answers with. `code` is ToMaTo's error code (`denied`,
//! `invalid_value`, `entity_does_not_exist`, `timed_out`, ...).

use serde_json::{Value, json};

use crate::permissions::PermissionError;
use crate::placement::NoHost;
use crate::quota::QuotaError;
use crate::store::StoreError;
use crate::timeouts::TimeoutError;

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A permission check failed.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// A timeout rule refused.
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    /// A quota refused.
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// No host fits.
    #[error(transparent)]
    Placement(#[from] NoHost),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// ToMaTo's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Permission(e) => e.code(),
            Error::Timeout(e) => e.code(),
            Error::Quota(e) => e.code(),
            Error::Placement(e) => e.code(),
            Error::Store(e) => e.code(),
        }
    }

    /// Details for programs: the field, resource or action concerned.
    pub fn data(&self) -> Value {
        match self {
            Error::Store(StoreError::InvalidValue { field, .. }) => json!({"field": field}),
            Error::Store(StoreError::NotFound { entity, key } | StoreError::AlreadyExists { entity, key }) => {
                json!({"entity": entity, "key": key})
            }
            Error::Quota(QuotaError::Refused { action, resource, used, quota }) => {
                json!({"action": action, "resource": resource.name(), "used": used, "quota": quota})
            }
            Error::Quota(QuotaError::Exceeded { resource, used, quota }) => {
                json!({"resource": resource.name(), "used": used, "quota": quota})
            }
            Error::Permission(PermissionError::UnknownAction { action, .. }) => json!({"action": action}),
            Error::Timeout(TimeoutError::TimedOut { action, at }) => json!({"action": action, "timeout": at}),
            Error::Placement(e) => {
                let hosts: serde_json::Map<String, Value> =
                    e.excluded.iter().map(|(h, why)| (h.clone(), Value::String(why.to_string()))).collect();
                json!({"hosts": hosts})
            }
            _ => Value::Null,
        }
    }

    /// The error as the API answers it. Internal failures keep their
    /// detail out of the message (it goes to the log, not to callers).
    pub fn to_rpc(&self) -> rpc::RpcError {
        if self.code() == "internal" {
            return rpc::RpcError::internal("internal error in the backend's database");
        }
        rpc::RpcError::new(self.code(), self.to_string()).with_data(self.data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::Role;
    use crate::quota::Resource;

    #[test]
    fn errors_keep_their_code_message_and_data() {
        let e = Error::from(QuotaError::Refused {
            action: "start".into(),
            resource: Resource::Traffic,
            used: 2e12,
            quota: 1e12,
        });
        let r = e.to_rpc();
        assert_eq!(r.kind, "denied");
        assert!(r.message.starts_with("start is refused: over quota: traffic used 2.00 TB"), "{}", r.message);
        assert_eq!(r.data["resource"], "traffic");
        assert_eq!(r.http_status(), 403);
        let e = Error::from(StoreError::InvalidValue { field: "email".into(), message: "bad".into() });
        assert_eq!((e.to_rpc().kind.as_str(), e.to_rpc().data["field"].as_str()), ("invalid_value", Some("email")));
        let e = Error::from(StoreError::NotFound { entity: "topology", key: "7".into() });
        assert_eq!(e.to_rpc().http_status(), 404);
        let e = Error::from(PermissionError::RoleTooLow {
            what: "topology: remove".into(),
            need: Role::Owner,
            have: Role::User,
        });
        assert_eq!(e.to_rpc().message, "topology: remove needs the role owner on this topology; you have user");
        let e = Error::from(StoreError::Corrupt { what: "attrs".into(), message: "secret detail".into() });
        assert_eq!(e.to_rpc().kind, "internal");
        assert!(!e.to_rpc().message.contains("secret"));
        let e = Error::from(TimeoutError::TimedOut { action: "start".into(), at: 5 });
        assert_eq!(e.to_rpc().kind, "timed_out");
    }
}
