//! Topologies: `topology_*`, and topology actions run in the model's order
//! over the components' hosts.

use super::*;

impl Cx<'_> {
    // ---- topologies -------------------------------------------------------

    /// The topology `id` and its members, if the caller may do `op` on it.
    pub(super) async fn topology(&self, id: i64, op: TopologyOp) -> Result<(Topology, Vec<Member>), RpcError> {
        let me = self.me()?;
        let t = self.b.store.topology(id).await.map_err(fail)?;
        let members = self.b.store.members(id).await.map_err(fail)?;
        check_topology(&subject(me), &members, op).map_err(fail)?;
        Ok((t, members))
    }

    pub(super) async fn topology_value(&self, t: &Topology, full: bool) -> Outcome {
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let mut attrs = Map::new();
        attrs.insert("name".into(), json!(t.name));
        attrs.insert("site".into(), json!(t.site));
        attrs.extend(t.client_data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let permissions: Map<String, Value> = t.permissions.iter().map(|(u, r)| (u.clone(), json!(r.name()))).collect();
        let element_list: Vec<Value> = if full {
            elements
                .iter()
                .map(|e| {
                    let children = elements.iter().filter(|c| c.parent == Some(e.id)).map(|c| c.id).collect();
                    let connection = connections.iter().find(|c| c.ends.contains(&e.id)).map(|c| c.id);
                    element_value(e, children, connection)
                })
                .collect()
        } else {
            elements.iter().map(|e| json!(e.id)).collect()
        };
        let connection_list: Vec<Value> = if full {
            connections.iter().map(connection_value).collect()
        } else {
            connections.iter().map(|c| json!(c.id)).collect()
        };
        let state_max = elements.iter().map(|e| e.state).chain(connections.iter().map(|c| c.state)).max();
        Ok(json!({
            "id": t.id,
            "name": t.name,
            "attrs": attrs,
            "permissions": permissions,
            "timeout": t.timeout.at,
            "created": t.created,
            "state_max": state_max.map(State::as_str),
            "elements": element_list,
            "connections": connection_list,
        }))
    }

    pub(super) async fn topology_create(&self) -> Outcome {
        let me = self.me()?;
        check_admin(&subject(me), AdminOp::CreateTopology).map_err(fail)?;
        let at = now();
        let t = Topology {
            id: 0,
            name: "New topology".into(),
            site: None,
            timeout: TopologyTimeout::new(at, &self.b.timeouts),
            client_data: Attrs::new(),
            created: at,
            permissions: BTreeMap::new(),
        };
        let t = self.b.store.create_topology(&t, &me.name).await.map_err(fail)?;
        self.topology_value(&t, false).await
    }

    pub(super) async fn topology_list(&self, full: bool, show_all: bool, organization: Option<&str>) -> Outcome {
        let me = self.me()?;
        let list = if show_all {
            check_admin(&subject(me), AdminOp::ListAllTopologies).map_err(fail)?;
            self.b.store.topologies(None).await.map_err(fail)?
        } else if let Some(org) = organization {
            check_admin(&subject(me), AdminOp::ListOrganizationTopologies(org)).map_err(fail)?;
            let mut all = Vec::new();
            for t in self.b.store.topologies(None).await.map_err(fail)? {
                if self.b.store.members(t.id).await.map_err(fail)?.iter().any(|m| m.organization == org) {
                    all.push(t);
                }
            }
            all
        } else {
            self.b.store.topologies(Some(&me.name)).await.map_err(fail)?
        };
        let mut out = Vec::new();
        for t in &list {
            out.push(self.topology_value(t, full).await?);
        }
        Ok(Value::Array(out))
    }

    pub(super) async fn topology_modify(&self, id: i64, attrs: Map<String, Value>) -> Outcome {
        let op = if client_data(&attrs) { TopologyOp::ModifyClientData } else { TopologyOp::Modify };
        let (mut t, _) = self.topology(id, op).await?;
        for (key, value) in attrs {
            match key.as_str() {
                "name" => {
                    t.name = value.as_str().map(String::from).ok_or_else(|| {
                        RpcError::invalid_value("topology_modify: attrs.name must be a string")
                            .with_data(json!({"field": "name"}))
                    })?;
                }
                "site" => {
                    t.site = match value {
                        Value::Null => None,
                        Value::String(s) if s.is_empty() => None,
                        Value::String(s) => Some(s),
                        _ => {
                            return Err(RpcError::invalid_value(
                                "topology_modify: attrs.site must be a site's name or null",
                            )
                            .with_data(json!({"field": "site"})));
                        }
                    };
                }
                k if k.starts_with('_') => {
                    if value.is_null() {
                        t.client_data.remove(k);
                    } else {
                        t.client_data.insert(key, value);
                    }
                }
                _ => {
                    return Err(RpcError::invalid_value(format!(
                        "topology_modify: attrs.{key} is not allowed; allowed: `name`, `site`, `_*` client data"
                    ))
                    .with_data(json!({"field": key})));
                }
            }
        }
        self.b.store.update_topology(&t).await.map_err(fail)?;
        self.topology_value(&t, false).await
    }

    pub(super) async fn topology_set_permission(&self, id: i64, user: &str, role: &str) -> Outcome {
        let me = self.me()?;
        let role = Role::parse(role).map_err(fail)?;
        let t = self.b.store.topology(id).await.map_err(fail)?;
        let members = self.b.store.members(id).await.map_err(fail)?;
        check_topology(&subject(me), &members, TopologyOp::View).map_err(fail)?;
        check_set_permission(&subject(me), &members, user, role).map_err(fail)?;
        self.b.store.user(user).await.map_err(fail)?;
        self.b.store.set_permission(id, user, role).await.map_err(fail)?;
        let t = self.b.store.topology(t.id).await.map_err(fail)?;
        self.topology_value(&t, false).await
    }

    pub(super) async fn topology_remove(&self, id: i64) -> Outcome {
        let (t, _) = self.topology(id, TopologyOp::Remove).await?;
        self.remove_topology(&t).await
    }

    /// Removes `t` from its hosts and the store; refused unless every
    /// component is `created`. No permission check: the callers did it.
    async fn remove_topology(&self, t: &Topology) -> Outcome {
        let id = t.id;
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let busy: Vec<String> = elements
            .iter()
            .filter(|e| e.state != State::Created)
            .map(|e| format!("element {} ({}) is {}", e.id, e.kind, e.state.as_str()))
            .chain(
                connections
                    .iter()
                    .filter(|c| c.state != State::Created)
                    .map(|c| format!("connection {} ({}) is {}", c.id, c.kind, c.state.as_str())),
            )
            .collect();
        if !busy.is_empty() {
            return Err(RpcError::invalid_state(format!(
                "topology {id} cannot be removed: {}; allowed: every component created (run topology_action destroy first)",
                busy.join(", ")
            )));
        }
        for c in &connections {
            self.remove_connection_everywhere(c).await?;
        }
        for e in elements.iter().filter(|e| e.parent.is_none()) {
            self.remove_element_everywhere(e).await?;
        }
        self.b.store.remove_topology(t.id).await.map_err(fail)?;
        Ok(Value::Null)
    }

    // ---- topology actions -------------------------------------------------

    pub(super) async fn topology_action(&self, id: i64, action: &str, params: Map<String, Value>) -> Outcome {
        let op = TopologyOp::action(action).map_err(fail)?;
        let (mut t, members) = self.topology(id, op).await?;
        let me = self.me()?;
        if action == "renew" {
            let timeout = params.get("timeout").and_then(Value::as_i64).ok_or_else(|| {
                RpcError::invalid_value("topology_action renew: params.timeout (seconds, an integer) is missing")
                    .with_data(json!({"field": "timeout"}))
            })?;
            let role = permissions::effective_role(&subject(me), &members);
            t.timeout = t
                .timeout
                .renew(now(), timeout, role, me.flags.has(Flag::GlobalAdmin), &self.b.timeouts)
                .map_err(fail)?;
            self.b.store.update_topology(&t).await.map_err(fail)?;
            return self.topology_value(&t, false).await;
        }
        t.timeout.check_action(now(), action).map_err(fail)?;
        self.check_quota(action).await?;
        self.run_plan(&t, action).await
    }

    /// Carries out `action` on `t` in the model's order, reporting each
    /// step; the first failure ends it with what was done and what failed.
    /// No permission check: the callers did it.
    async fn run_plan(&self, t: &Topology, action: &str) -> Outcome {
        let plan_action = TopologyAction::parse(action)
            .ok_or_else(|| RpcError::invalid_value(format!("topology_action: unknown action `{action}`")))?;
        let elements = self.b.store.elements(t.id).await.map_err(fail)?;
        let connections = self.b.store.connections(t.id).await.map_err(fail)?;
        let (model_topology, states, ids) = model_view(&elements, &connections)?;
        let steps = model::plan(&model_topology, &states, plan_action);
        let mut done = Vec::new();
        for step in steps {
            let Some(&(is_element, cid)) = ids.get(&step.component) else { continue };
            let what = if is_element { "element" } else { "connection" };
            let outcome = if is_element {
                self.element_step(cid, step.action).await
            } else {
                self.connection_step(cid, step.action).await
            };
            match outcome {
                Ok(state) => done.push(json!({"type": what, "id": cid, "action": step.action, "state": state})),
                Err(e) => {
                    let failed = json!({"type": what, "id": cid, "action": step.action});
                    return Err(RpcError {
                        message: format!(
                            "topology_action {action}: {what} {cid}: {} failed: {}",
                            step.action, e.message
                        ),
                        data: json!({"done": done, "failed": failed, "error": e.to_wire()}),
                        kind: e.kind,
                    });
                }
            }
        }
        Ok(json!({"steps": done}))
    }

    pub(super) async fn element_step(&self, id: i64, action: &str) -> Result<&'static str, RpcError> {
        let e = self.b.store.element(id).await.map_err(fail)?;
        let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {id}")).await?;
        let outcome = self.b.hosts.call(&host, "element_action", vec![json!(hid), json!(action), json!({})]).await;
        let refreshed = self.refresh_family(id).await;
        outcome?;
        refreshed?;
        Ok(self.b.store.element(id).await.map_err(fail)?.state.as_str())
    }

    pub(super) async fn connection_step(&self, id: i64, action: &str) -> Result<&'static str, RpcError> {
        let mut c = self.b.store.connection(id).await.map_err(fail)?;
        let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {id}")).await?;
        let outcome = self.b.hosts.call(&host, "connection_action", vec![json!(hid), json!(action), json!({})]).await;
        let refreshed = self.refresh_connection(&mut c).await;
        outcome?;
        refreshed?;
        Ok(c.state.as_str())
    }
}
/// Carries out every topology timeout event due at `now` (warn, stop,
/// destroy, remove), as the testbed rather than as a user. Each event is
/// stored as done only after it worked; a failed one is tried again on the
/// next pass and logged.
pub async fn carry_out_timeouts(backend: &Backend, now: i64) -> Result<(), RpcError> {
    let system = Cx { b: backend, user: None };
    for listed in backend.store.topologies(None).await.map_err(fail)? {
        // Each event on a fresh read: a `renew` or `topology_modify` made
        // meanwhile is neither lost nor overwritten, and a topology removed
        // meanwhile is skipped. One topology's failure does not hold up the
        // others.
        while let Ok(t) = backend.store.topology(listed.id).await {
            let Some(event) = t.timeout.poll_event(now, &backend.timeouts) else { break };
            let outcome = match event {
                TimeoutEvent::Warn => {
                    tracing::info!("topology {} ({}) times out at {}", t.id, t.name, t.timeout.at);
                    Ok(Value::Null)
                }
                TimeoutEvent::Stop => system.run_plan(&t, "stop").await,
                TimeoutEvent::Destroy => system.run_plan(&t, "destroy").await,
                TimeoutEvent::Remove => system.remove_topology(&t).await,
            };
            if let Err(e) = outcome {
                tracing::warn!("topology {} timed out: {event:?} failed: {}", t.id, e.message);
                break;
            }
            if event == TimeoutEvent::Remove {
                break;
            }
            let Ok(mut fresh) = backend.store.topology(t.id).await else { break };
            if fresh.timeout != t.timeout {
                // Renewed while the event ran: the new deadline rules.
                break;
            }
            fresh.timeout = t.timeout.after(event);
            if let Err(e) = backend.store.update_topology(&fresh).await {
                tracing::warn!("topology {}: storing the timeout step: {e}", t.id);
                break;
            }
        }
    }
    Ok(())
}

pub(super) type ModelView = (model::Topology, model::States, HashMap<ComponentId, (bool, i64)>);

/// The client-data key that holds a component's name in its file (`pc1`,
/// `pc1.eth0`), as `tomato up` and `topology_import` set it.
pub(super) const NAME_KEY: &str = "_name";

/// The stored components as the model's topology with their states, and
/// the store id of each component the model names. Elements are named by
/// [`NAME_KEY`] (its last part), or `e<id>` where that is missing or taken
/// among the siblings; their attributes are the stored ones without it.
pub(super) fn model_view(elements: &[Element], connections: &[Connection]) -> Result<ModelView, RpcError> {
    let kind = |name: &str| {
        model::registry()
            .get(name)
            .map(KindRef)
            .ok_or_else(|| RpcError::internal(format!("the store holds an unknown kind `{name}`")))
    };
    let mut taken: BTreeSet<(Option<i64>, String)> = BTreeSet::new();
    let mut names: HashMap<i64, String> = HashMap::new();
    for e in elements {
        let own = e.attrs.get(NAME_KEY).and_then(Value::as_str).and_then(|n| n.rsplit('.').next());
        let mut name = match own {
            Some(n) if !n.is_empty() && !taken.contains(&(e.parent, n.to_string())) => n.to_string(),
            _ => format!("e{}", e.id),
        };
        while taken.contains(&(e.parent, name.clone())) {
            name.push('_');
        }
        taken.insert((e.parent, name.clone()));
        names.insert(e.id, name);
    }
    let by_id: HashMap<i64, &Element> = elements.iter().map(|e| (e.id, e)).collect();
    let path = |e: &Element| match e.parent {
        None => ElementPath::top(&names[&e.id]),
        Some(p) => ElementPath::child(&names[&p], &names[&e.id]),
    };
    let model_element = |e: &Element, children| -> Result<model::Element, RpcError> {
        let mut attrs = e.attrs.clone();
        attrs.remove(NAME_KEY);
        Ok(model::Element { name: names[&e.id].clone(), kind: kind(&e.kind)?, attrs, children })
    };
    let mut topology = model::Topology::default();
    let mut states = model::States::new();
    let mut ids = HashMap::new();
    for e in elements {
        states.insert(ComponentId::Element(path(e)), e.state);
        ids.insert(ComponentId::Element(path(e)), (true, e.id));
        if e.parent.is_some() {
            continue;
        }
        let children = elements
            .iter()
            .filter(|c| c.parent == Some(e.id))
            .map(|c| model_element(c, Vec::new()))
            .collect::<Result<Vec<_>, _>>()?;
        topology.elements.push(model_element(e, children)?);
    }
    for c in connections {
        let end = |id: i64| {
            by_id
                .get(&id)
                .map(|e| path(e))
                .ok_or_else(|| RpcError::internal(format!("connection {} ends at a missing element {id}", c.id)))
        };
        let ends = [end(c.ends[0])?, end(c.ends[1])?];
        let cid = ComponentId::Connection(ends.clone());
        states.insert(cid.clone(), c.state);
        ids.insert(cid, (false, c.id));
        topology.connections.push(model::Connection { kind: kind(&c.kind)?, ends, attrs: c.attrs.clone() });
    }
    Ok((topology, states, ids))
}
