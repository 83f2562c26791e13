//! `capabilities`, `capabilities_element`, `capabilities_connection`:
//! the kinds' attributes, actions, states and children, from the model's
//! registry (the same data that validates topologies and that every
//! hostmanager runs), optionally as one host offers them.

use super::*;

impl Cx<'_> {
    /// One kind of `class` named `type_name` (its name, ToMaTo name or an
    /// alias); with `host`, only if that host offers it.
    pub(super) async fn kind_capabilities(&self, class: Class, type_name: &str, host: Option<&str>) -> Outcome {
        let kind = model::registry().lookup(type_name, class).map_err(|m| {
            RpcError::new("unsupported_type", format!("type: {m}")).with_data(json!({"type": type_name}))
        })?;
        if let Some(name) = host {
            let h = self.b.store.host(name).await.map_err(fail)?;
            let offered = match class {
                Class::Element => &h.element_types,
                Class::Connection => &h.connection_types,
            };
            if !offered.contains(kind.name) {
                let list: Vec<&str> = offered.iter().map(String::as_str).collect();
                return Err(RpcError::new(
                    "unsupported_type",
                    format!("type: host {name} does not offer {}; it offers: {}", kind.name, list.join(", ")),
                )
                .with_data(json!({"type": kind.name, "host": name})));
            }
        }
        Ok(kind.capabilities())
    }
}
