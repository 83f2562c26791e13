//! The hostmanager's API method table: ToMaTo's names and argument lists,
//! positional or by keyword, onto [`Host`] operations.

use model::Attrs;
use serde_json::{Map, Value};

use crate::error::{HostError, Result};
use crate::host::Host;
use crate::store::Class;

/// Every method with its parameters (`?` marks optional ones), for
/// introspection and messages.
pub const METHODS: &[(&str, &[&str])] = &[
    ("element_create", &["type", "parent?", "attrs?"]),
    ("element_modify", &["id", "attrs"]),
    ("element_action", &["id", "action", "params?"]),
    ("element_remove", &["id", "recurse?"]),
    ("element_info", &["id"]),
    ("element_list", &["type_filter?"]),
    ("connection_create", &["element1", "element2", "type?", "attrs?"]),
    ("connection_modify", &["id", "attrs"]),
    ("connection_action", &["id", "action", "params?"]),
    ("connection_remove", &["id"]),
    ("connection_info", &["id"]),
    ("connection_list", &["type_filter?"]),
    ("resource_create", &["type", "attrs?"]),
    ("resource_modify", &["id", "attrs"]),
    ("resource_remove", &["id"]),
    ("resource_info", &["id"]),
    ("resource_list", &["type_filter?"]),
    ("host_info", &[]),
    ("host_capabilities", &[]),
    ("accounting_statistics", &["type?", "after?", "before?"]),
];

/// A call's arguments by parameter name.
struct Args {
    method: &'static str,
    values: Map<String, Value>,
}

impl Args {
    fn bind(method: &str, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Args> {
        let (name, params) = METHODS.iter().find(|(m, _)| *m == method).ok_or_else(|| {
            let names: Vec<&str> = METHODS.iter().map(|(m, _)| *m).collect();
            HostError::new(
                crate::ErrorKind::UnsupportedAction,
                format!("method: no method {method:?}; the hostmanager has {}", names.join(", ")),
            )
        })?;
        let names: Vec<&str> = params.iter().map(|p| p.trim_end_matches('?')).collect();
        if args.len() > names.len() {
            return Err(HostError::invalid(format!(
                "{method}: takes {} arguments ({}), got {}",
                names.len(),
                names.join(", "),
                args.len()
            )));
        }
        let mut values = Map::new();
        for (n, v) in names.iter().zip(args) {
            values.insert(n.to_string(), v);
        }
        for (k, v) in kwargs {
            if !names.contains(&k.as_str()) {
                return Err(HostError::invalid(format!(
                    "{k}: {method} has no parameter {k}; it takes {}",
                    names.join(", ")
                )));
            }
            if values.insert(k.clone(), v).is_some() {
                return Err(HostError::invalid(format!("{k}: given twice to {method}")));
            }
        }
        for p in params.iter().filter(|p| !p.ends_with('?')) {
            if values.get(*p).is_none_or(Value::is_null) {
                return Err(HostError::invalid(format!("{p}: {method} needs {p}")));
            }
        }
        Ok(Args { method: name, values })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }

    fn id(&self, name: &str) -> Result<i64> {
        let v = self.get(name).ok_or_else(|| HostError::invalid(format!("{name}: {} needs {name}", self.method)))?;
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| HostError::invalid(format!("{name}: {v} is not an id (an integer)")))
    }

    fn opt_id(&self, name: &str) -> Result<Option<i64>> {
        self.get(name).map(|_| self.id(name)).transpose()
    }

    fn text(&self, name: &str) -> Result<Option<&str>> {
        self.get(name)
            .map(|v| v.as_str().ok_or_else(|| HostError::invalid(format!("{name}: {v} is not a string"))))
            .transpose()
    }

    fn required_text(&self, name: &str) -> Result<&str> {
        self.text(name)?.ok_or_else(|| HostError::invalid(format!("{name}: {} needs {name}", self.method)))
    }

    fn map(&self, name: &str) -> Result<Attrs> {
        match self.get(name) {
            None => Ok(Attrs::new()),
            Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Some(v) => Err(HostError::invalid(format!("{name}: {v} is not a map of names to values"))),
        }
    }

    fn number(&self, name: &str) -> Result<Option<f64>> {
        self.get(name)
            .map(|v| {
                v.as_f64().ok_or_else(|| HostError::invalid(format!("{name}: {v} is not a number (epoch seconds)")))
            })
            .transpose()
    }
}

/// Calls `method` for `owner` with positional `args` and keyword `kwargs`.
pub async fn dispatch(
    host: &Host,
    owner: &str,
    method: &str,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value> {
    let a = Args::bind(method, args, kwargs)?;
    let null = |r: Result<()>| r.map(|()| Value::Null);
    match a.method {
        "element_create" => {
            host.element_create(owner, a.required_text("type")?, a.opt_id("parent")?, a.map("attrs")?).await
        }
        "element_modify" => host.modify(owner, a.id("id")?, Class::Element, a.map("attrs")?).await,
        "element_action" => {
            host.action(owner, a.id("id")?, Class::Element, a.required_text("action")?, a.map("params")?).await
        }
        "element_remove" => null(host.remove(owner, a.id("id")?, Class::Element).await),
        "element_info" => host.info(owner, a.id("id")?, Class::Element).await,
        "element_list" => host.list(owner, Class::Element, a.text("type_filter")?).await,
        "connection_create" => {
            host.connection_create(owner, a.id("element1")?, a.id("element2")?, a.text("type")?, a.map("attrs")?).await
        }
        "connection_modify" => host.modify(owner, a.id("id")?, Class::Connection, a.map("attrs")?).await,
        "connection_action" => {
            host.action(owner, a.id("id")?, Class::Connection, a.required_text("action")?, a.map("params")?).await
        }
        "connection_remove" => null(host.remove(owner, a.id("id")?, Class::Connection).await),
        "connection_info" => host.info(owner, a.id("id")?, Class::Connection).await,
        "connection_list" => host.list(owner, Class::Connection, a.text("type_filter")?).await,
        "resource_create" => host.resource_create(owner, a.required_text("type")?, a.map("attrs")?).await,
        "resource_modify" => host.resource_modify(owner, a.id("id")?, a.map("attrs")?).await,
        "resource_remove" => null(host.resource_remove(owner, a.id("id")?).await),
        "resource_info" => host.resource_info(owner, a.id("id")?).await,
        "resource_list" => host.resource_list(owner, a.text("type_filter")?).await,
        "host_info" => Ok(host.host_info().await),
        "host_capabilities" => Ok(host.capabilities()),
        "accounting_statistics" => {
            host.accounting_statistics(owner, a.text("type")?, a.number("after")?, a.number("before")?).await
        }
        other => Err(HostError::internal(format!("method {other} is listed but not dispatched"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_bind_by_position_and_keyword() {
        let mut kw = Map::new();
        kw.insert("attrs".into(), json!({"ram": 64}));
        let a = Args::bind("element_create", vec![json!("container")], kw).unwrap();
        assert_eq!(a.required_text("type").unwrap(), "container");
        assert_eq!(a.opt_id("parent").unwrap(), None);
        assert_eq!(a.map("attrs").unwrap()["ram"], json!(64));
    }

    #[test]
    fn bad_calls_name_the_parameter() {
        let e = Args::bind("element_info", vec![], Map::new()).err().unwrap();
        assert!(e.message.contains("id"), "{e}");
        let e = Args::bind("element_info", vec![json!(1), json!(2)], Map::new()).err().unwrap();
        assert!(e.message.contains("takes 1"), "{e}");
        let mut kw = Map::new();
        kw.insert("colour".into(), json!(1));
        let e = Args::bind("element_list", vec![], kw).err().unwrap();
        assert!(e.message.contains("colour") && e.message.contains("type_filter"), "{e}");
        let e = Args::bind("element_destroy_all", vec![], Map::new()).err().unwrap();
        assert!(e.message.contains("element_create"), "{e}");
        let a = Args::bind("element_info", vec![json!("x")], Map::new()).unwrap();
        assert!(a.id("id").err().unwrap().message.contains("not an id"));
    }
}
