//! Topologies as files: `topology_export` and `topology_import` in
//! ToMaTo's export format (the model's `file::tomato` reads versions 3 and
//! 4 and writes 4), and the role table (`topology_permissions`,
//! `role_list`).
//!
//! An export holds the design, not the deployment: the stored attributes
//! of the topology and its components (what callers set, client data
//! included), no states, hosts or host-side run-time values. Elements are
//! named as in their file ([`NAME_KEY`]), so an exported and re-imported
//! topology exports the same again.
//!
//! An import is checked whole first (the file's problems and the model's
//! validation, every problem at once); then each component is created
//! through the same calls a client makes, so permissions, placement and
//! the hosts' checks apply; if one fails, the new topology is removed
//! again and the error is that component's.

use super::topology::{NAME_KEY, model_view};
use super::*;

impl Cx<'_> {
    pub(super) async fn topology_export(&self, id: i64) -> Outcome {
        let (t, _) = self.topology(id, TopologyOp::View).await?;
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let (mut design, _, _) = model_view(&elements, &connections)?;
        design.attrs.insert("name".into(), json!(t.name));
        if let Some(site) = &t.site {
            design.attrs.insert("site".into(), json!(site));
        }
        design.attrs.extend(t.client_data.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(model::file::tomato::export(&design))
    }

    /// Answers ToMaTo's `[id, element ids, connection ids, errors]`: the
    /// new topology's id, `[file id, new id]` pairs (element paths stand
    /// for the file's element ids) and an empty error list (a problem
    /// refuses the whole import instead).
    pub(super) async fn topology_import(&self, data: Map<String, Value>) -> Outcome {
        self.me()?;
        let doc = Value::Object(data);
        let imported = model::file::tomato::import(&doc);
        let mut problems = imported.problems;
        if problems.is_empty() {
            problems = model::validate(&imported.topology);
        }
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(RpcError::invalid_value(format!(
                "topology_import: `data` has {} problem(s): {}",
                lines.len(),
                lines.join("; ")
            ))
            .with_data(json!({"field": "data", "problems": lines})));
        }
        let created = self.topology_create().await?;
        let tid = created["id"].as_i64().ok_or_else(|| RpcError::internal("topology_create answered no id"))?;
        match self.import_into(tid, &imported.topology, &doc).await {
            Ok(answer) => Ok(answer),
            Err(e) => {
                // Nothing half-imported: every component made is still
                // `created`, so the topology can go.
                if let Err(undo) = self.topology_remove(tid).await {
                    tracing::error!("topology {tid}: removing a failed import failed too: {}", undo.message);
                }
                Err(e)
            }
        }
    }

    async fn import_into(&self, tid: i64, design: &model::Topology, doc: &Value) -> Outcome {
        if !design.attrs.is_empty() {
            self.topology_modify(tid, design.attrs.clone().into_iter().collect()).await?;
        }
        let mut ids: HashMap<ElementPath, i64> = HashMap::new();
        let mut element_ids = Vec::new();
        for (path, el) in design.walk() {
            let mut attrs = el.attrs.clone();
            attrs.insert(NAME_KEY.into(), json!(path.to_string()));
            let parent = match path.child {
                Some(_) => ids.get(&ElementPath::top(&path.element)).copied(),
                None => None,
            };
            let made = self.element_create(tid, el.kind.name, parent, attrs).await?;
            let new_id = made["id"].as_i64().ok_or_else(|| RpcError::internal("element_create answered no id"))?;
            element_ids.push(json!([path.to_string(), new_id]));
            ids.insert(path, new_id);
        }
        let mut connection_ids = Vec::new();
        for (i, c) in design.connections.iter().enumerate() {
            let end = |p: &ElementPath| {
                ids.get(p).copied().ok_or_else(|| RpcError::internal(format!("connection end {p} was not created")))
            };
            let mut attrs = c.attrs.clone();
            attrs.insert("type".into(), json!(c.kind.name));
            let made = self.connection_create([end(&c.ends[0])?, end(&c.ends[1])?], attrs).await?;
            // Validation refused any connection the model could not read,
            // so the design's connections are the file's, in order.
            let file_id = match &doc["topology"]["connections"][i]["id"] {
                Value::Null => json!(format!("c{}", i + 1)),
                other => other.clone(),
            };
            connection_ids.push(json!([file_id, made["id"]]));
        }
        Ok(json!([tid, element_ids, connection_ids, []]))
    }
}

/// `topology_permissions` and `role_list`: each role with ToMaTo's title
/// and description.
pub(super) fn role_descriptions() -> Value {
    Value::Object(
        Role::ALL
            .iter()
            .map(|r| (r.name().to_string(), json!({"title": r.title(), "description": r.description()})))
            .collect(),
    )
}
