//! `switch` and `switch_endpoint`: a learning switch or hub in the data
//! plane. The switch exists in the engine while the element is started;
//! each endpoint becomes a switch port when a started connection reaches
//! it (see `plane.rs`), so the driver itself has nothing to do on the host.

use model::Attrs;
use serde_json::Value;

use super::{Cx, Driver, View};
use crate::error::Result;

struct Switch;
struct Endpoint;

/// The `switch` driver.
pub fn switch() -> Box<dyn Driver> {
    Box::new(Switch)
}

/// The `switch_endpoint` driver.
pub fn endpoint() -> Box<dyn Driver> {
    Box::new(Endpoint)
}

impl Driver for Switch {
    fn action(&self, _cx: &Cx, _view: &View, _action: &str, _params: &Attrs) -> Result<Value> {
        // The state change alone makes the data plane add or remove it.
        Ok(Value::Null)
    }
}

impl Driver for Endpoint {
    fn action(&self, _cx: &Cx, _view: &View, _action: &str, _params: &Attrs) -> Result<Value> {
        Ok(Value::Null)
    }
}
