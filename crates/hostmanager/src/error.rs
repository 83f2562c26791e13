//! Errors the hostmanager answers with, in ToMaTo's vocabulary.

use serde_json::{Value, json};

/// What kind of failure, named as ToMaTo's hostmanager names them so a
/// backend can react by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such element, connection, resource or grant (or not the caller's).
    EntityDoesNotExist,
    /// Another action is running on the entity.
    EntityBusy,
    /// An attribute, parameter or argument has a bad value.
    InvalidValue,
    /// The action or change is not allowed in the entity's state.
    InvalidState,
    /// The type has no such action.
    UnsupportedAction,
    /// The type has no such attribute.
    UnsupportedAttribute,
    /// Unknown element or connection type, or a parent/child rule broken.
    UnsupportedType,
    /// The host cannot do it (missing tool, kernel limit).
    HostError,
    /// A bug or an unexpected system failure.
    Internal,
}

impl ErrorKind {
    /// The wire name (`entity_does_not_exist`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::EntityDoesNotExist => "entity_does_not_exist",
            ErrorKind::EntityBusy => "entity_busy",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::UnsupportedAction => "unsupported_action",
            ErrorKind::UnsupportedAttribute => "unsupported_attribute",
            ErrorKind::UnsupportedType => "unsupported_type",
            ErrorKind::HostError => "host_error",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A failed request: kind, a message for people, and data for programs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", kind.name())]
pub struct HostError {
    /// The kind.
    pub kind: ErrorKind,
    /// What went wrong, naming the field and the allowed values.
    pub message: String,
    /// Structured details (ids, field names).
    pub data: Value,
}

impl HostError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> HostError {
        HostError { kind, message: message.into(), data: Value::Null }
    }

    /// Adds structured details.
    pub fn with_data(mut self, data: Value) -> HostError {
        self.data = data;
        self
    }

    /// No entity `id` of this class visible to the caller.
    pub fn not_found(class: &str, id: i64) -> HostError {
        HostError::new(ErrorKind::EntityDoesNotExist, format!("no {class} {id}"))
            .with_data(json!({"class": class, "id": id}))
    }

    /// A bad value.
    pub fn invalid(message: impl Into<String>) -> HostError {
        HostError::new(ErrorKind::InvalidValue, message)
    }

    /// The host failed at something.
    pub fn host(message: impl Into<String>) -> HostError {
        HostError::new(ErrorKind::HostError, message)
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> HostError {
        HostError::new(ErrorKind::Internal, message)
    }
}

impl From<sqlx::Error> for HostError {
    fn from(e: sqlx::Error) -> HostError {
        HostError::internal(format!("store: {e}"))
    }
}

impl From<std::io::Error> for HostError {
    fn from(e: std::io::Error) -> HostError {
        HostError::host(e.to_string())
    }
}

impl From<dataplane::EngineError> for HostError {
    fn from(e: dataplane::EngineError) -> HostError {
        HostError::host(format!("data plane: {e}"))
    }
}

/// Result of a hostmanager operation.
pub type Result<T, E = HostError> = std::result::Result<T, E>;
