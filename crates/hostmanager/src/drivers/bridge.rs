//! `bridge`: a connection emulated by a link of the data plane. The link
//! exists while the connection is started and both ends are present (see
//! `plane.rs`); attribute changes reach the running link in place.

use std::path::Path;

use model::Attrs;
use serde_json::Value;

use super::{Cx, Driver, View};
use crate::error::{HostError, Result};

struct Bridge;

/// The `bridge` driver.
pub fn bridge() -> Box<dyn Driver> {
    Box::new(Bridge)
}

impl Driver for Bridge {
    fn extra_actions(&self) -> &'static [&'static str] {
        &["download_grant"]
    }

    fn action(&self, _cx: &Cx, _view: &View, _action: &str, _params: &Attrs) -> Result<Value> {
        Ok(Value::Null)
    }

    fn remove(&self, cx: &Cx, view: &View) -> Result<()> {
        cx.plane().forget(view.entity.id);
        Ok(())
    }

    fn info(&self, cx: &Cx, view: &View) -> Attrs {
        cx.plane().link_info(view.entity.id)
    }

    fn download(&self, cx: &Cx, view: &View, params: &Attrs, out: &Path) -> Result<()> {
        let limit = params.get("limitSize").and_then(Value::as_u64);
        cx.plane().capture_download(view.entity.id, limit, out).map_err(HostError::invalid)
    }
}
