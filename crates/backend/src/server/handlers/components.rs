//! Elements and connections: `element_*` and `connection_*`, each the
//! hostmanager call on the component's host, then the store.

use super::*;

impl Cx<'_> {
    // ---- placement and host calls -----------------------------------------

    pub(super) async fn host_of(
        &self,
        name: &Option<String>,
        host_id: Option<i64>,
        what: &str,
    ) -> Result<(Host, i64), RpcError> {
        match (name, host_id) {
            (Some(name), Some(hid)) => Ok((self.b.store.host(name).await.map_err(fail)?, hid)),
            _ => Err(RpcError::invalid_state(format!("{what} is on no host"))),
        }
    }

    /// Reads the element's state on its host into the store; returns the
    /// host's info.
    pub(super) async fn refresh_element(&self, e: &mut Element) -> Outcome {
        let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {}", e.id)).await?;
        let info = self.b.hosts.call(&host, "element_info", vec![json!(hid)]).await?;
        if let Some(state) = info["state"].as_str().and_then(State::parse)
            && state != e.state
        {
            e.state = state;
            self.b.store.update_element(e).await.map_err(fail)?;
        }
        Ok(info)
    }

    /// The element and its children, states read from the host.
    pub(super) async fn refresh_family(&self, id: i64) -> Result<(), RpcError> {
        let mut e = self.b.store.element(id).await.map_err(fail)?;
        self.refresh_element(&mut e).await?;
        for mut child in self.b.store.elements(e.topology).await.map_err(fail)? {
            if child.parent == Some(id) {
                self.refresh_element(&mut child).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn refresh_connection(&self, c: &mut Connection) -> Outcome {
        let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {}", c.id)).await?;
        let info = self.b.hosts.call(&host, "connection_info", vec![json!(hid)]).await?;
        if let Some(state) = info["state"].as_str().and_then(State::parse)
            && state != c.state
        {
            c.state = state;
            self.b.store.update_connection(c).await.map_err(fail)?;
        }
        Ok(info)
    }

    /// Removes an element (with its children and connection) from its host,
    /// then from the store. An element its host no longer knows is only
    /// removed from the store.
    pub(super) async fn remove_element_everywhere(&self, e: &Element) -> Result<(), RpcError> {
        if let (Some(_), Some(_)) = (&e.host, e.host_id) {
            let (host, hid) = self.host_of(&e.host, e.host_id, "element").await?;
            match self.b.hosts.call(&host, "element_remove", vec![json!(hid)]).await {
                Ok(_) => {}
                Err(err) if err.kind == kind::ENTITY_DOES_NOT_EXIST => {}
                Err(err) => return Err(err),
            }
        }
        self.b.store.remove_element(e.id).await.map_err(fail)?;
        Ok(())
    }

    pub(super) async fn remove_connection_everywhere(&self, c: &Connection) -> Result<(), RpcError> {
        if let (Some(_), Some(_)) = (&c.host, c.host_id) {
            let (host, hid) = self.host_of(&c.host, c.host_id, "connection").await?;
            match self.b.hosts.call(&host, "connection_remove", vec![json!(hid)]).await {
                Ok(_) => {}
                Err(err) if err.kind == kind::ENTITY_DOES_NOT_EXIST => {}
                Err(err) => return Err(err),
            }
        }
        self.b.store.remove_connection(c.id).await.map_err(fail)?;
        Ok(())
    }

    // ---- elements ---------------------------------------------------------

    /// The element `id` if the caller may do `op` on it (its topology is
    /// read only by the actions that need its timeout).
    pub(super) async fn element_checked(&self, id: i64, op: ComponentOp<'_>) -> Result<Element, RpcError> {
        let me = self.me()?;
        let e = self.b.store.element(id).await.map_err(fail)?;
        let members = self.b.store.members(e.topology).await.map_err(fail)?;
        check_element(&subject(me), &members, op).map_err(fail)?;
        Ok(e)
    }

    pub(super) async fn element_info_value(&self, e: &Element, host_info: Option<&Value>) -> Outcome {
        let (children, connection) = self.b.store.element_links(e).await.map_err(fail)?;
        let info = element_value(e, children, connection);
        let info = match host_info {
            Some(h) => with_host_attrs(info, h),
            None => info,
        };
        self.with_host_info(info, &e.host).await
    }

    /// A connection's info, with the host's attributes when given.
    pub(super) async fn connection_info_value(&self, c: &Connection, host_info: Option<&Value>) -> Outcome {
        let info = match host_info {
            Some(h) => with_host_attrs(connection_value(c), h),
            None => connection_value(c),
        };
        self.with_host_info(info, &c.host).await
    }

    /// `info` with ToMaTo's `host_info` of the component's host (from the
    /// store's last poll), so clients find the fileserver.
    async fn with_host_info(&self, mut info: Value, host: &Option<String>) -> Outcome {
        if let (Some(name), Some(obj)) = (host, info.as_object_mut()) {
            let h = self.b.store.host(name).await.map_err(fail)?;
            obj.insert("host_info".into(), host_info_value(&h));
        }
        Ok(info)
    }

    /// `element_create(top, type, parent, attrs)`, also run by
    /// `topology_import` for each element of the file.
    pub(super) async fn element_create(&self, top: i64, type_name: &str, parent: Option<i64>, attrs: Attrs) -> Outcome {
        let (t, _) = self.topology(top, TopologyOp::CreateComponent).await?;
        let kind = model::registry().lookup(type_name, Class::Element).map_err(|m| {
            RpcError::invalid_value(format!("element_create: type: {m}")).with_data(json!({"field": "type"}))
        })?;
        let parent = match parent {
            None => None,
            Some(p) => {
                let parent = self.b.store.element(p).await.map_err(fail)?;
                if parent.topology != t.id {
                    return Err(RpcError::invalid_value(format!(
                        "element_create: parent {p} belongs to topology {}, not {}",
                        parent.topology, t.id
                    ))
                    .with_data(json!({"field": "parent"})));
                }
                Some(parent)
            }
        };
        let (host, host_parent) = match &parent {
            Some(p) => {
                let (host, hid) = self.host_of(&p.host, p.host_id, &format!("parent element {}", p.id)).await?;
                (host, Some(hid))
            }
            None => {
                let hosts = self.b.store.placement_hosts().await.map_err(fail)?;
                let req = Requirements {
                    site: t.site.clone(),
                    element_types: BTreeSet::from([kind.name.to_string()]),
                    ..Requirements::default()
                };
                let ranked = rank(&hosts, &req, &LocationPrefs::default()).map_err(fail)?;
                let best = ranked.first().ok_or_else(|| RpcError::internal("placement ranked no host"))?;
                (self.b.store.host(&best.host).await.map_err(fail)?, None)
            }
        };
        let created = self
            .b
            .hosts
            .call(
                &host,
                "element_create",
                vec![json!(kind.name), json!(host_parent), Value::Object(without_client_data(&attrs))],
            )
            .await?;
        let hid = created["id"]
            .as_i64()
            .ok_or_else(|| RpcError::internal(format!("host {}: element_create answered no id", host.name)))?;
        let state = created["state"].as_str().and_then(State::parse).unwrap_or(State::Created);
        let row = Element {
            id: 0,
            topology: t.id,
            kind: kind.name.to_string(),
            parent: parent.map(|p| p.id),
            state,
            attrs,
            host: Some(host.name.clone()),
            host_id: Some(hid),
        };
        match self.b.store.create_element(&row).await {
            Ok(e) => self.element_info_value(&e, Some(&created)).await,
            Err(store_error) => {
                if let Err(e) = self.b.hosts.call(&host, "element_remove", vec![json!(hid)]).await {
                    tracing::error!("element {hid} on host {} is left over: {}", host.name, e.message);
                }
                Err(fail(store_error))
            }
        }
    }

    pub(super) async fn element_modify(&self, id: i64, attrs: Map<String, Value>) -> Outcome {
        let op = if client_data(&attrs) { ComponentOp::ModifyClientData } else { ComponentOp::Modify };
        let mut e = self.element_checked(id, op).await?;
        let for_host = without_client_data(&attrs);
        let mut host_info = None;
        if !for_host.is_empty() {
            let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {id}")).await?;
            host_info =
                Some(self.b.hosts.call(&host, "element_modify", vec![json!(hid), Value::Object(for_host)]).await?);
        }
        for (k, v) in attrs {
            if k.starts_with('_') && v.is_null() {
                e.attrs.remove(&k);
            } else {
                e.attrs.insert(k, v);
            }
        }
        self.b.store.update_element(&e).await.map_err(fail)?;
        self.element_info_value(&e, host_info.as_ref()).await
    }

    pub(super) async fn element_info(&self, id: i64, fetch: bool) -> Outcome {
        let mut e = self.element_checked(id, ComponentOp::View).await?;
        let host_info = if fetch { Some(self.refresh_element(&mut e).await?) } else { None };
        self.element_info_value(&e, host_info.as_ref()).await
    }

    pub(super) async fn element_remove(&self, id: i64) -> Outcome {
        let e = self.element_checked(id, ComponentOp::Remove).await?;
        self.remove_element_everywhere(&e).await?;
        Ok(Value::Null)
    }

    pub(super) async fn element_action(&self, id: i64, action: &str, params: Map<String, Value>) -> Outcome {
        let e = self.element_checked(id, ComponentOp::Action(action)).await?;
        let t = self.b.store.topology(e.topology).await.map_err(fail)?;
        t.timeout.check_action(now(), action).map_err(fail)?;
        self.check_quota(action).await?;
        let (host, hid) = self.host_of(&e.host, e.host_id, &format!("element {id}")).await?;
        let outcome =
            self.b.hosts.call(&host, "element_action", vec![json!(hid), json!(action), Value::Object(params)]).await;
        // Whatever the host did (also when it failed part-way), the store
        // follows its states.
        let refreshed = self.refresh_family(id).await;
        let result = outcome?;
        refreshed?;
        Ok(result)
    }

    // ---- connections ------------------------------------------------------

    pub(super) async fn connection_checked(
        &self,
        id: i64,
        op: ComponentOp<'_>,
    ) -> Result<(Connection, Topology), RpcError> {
        let me = self.me()?;
        let c = self.b.store.connection(id).await.map_err(fail)?;
        let members = self.b.store.members(c.topology).await.map_err(fail)?;
        check_connection(&subject(me), &members, op).map_err(fail)?;
        let t = self.b.store.topology(c.topology).await.map_err(fail)?;
        Ok((c, t))
    }

    /// `connection_create(el1, el2, attrs)`; `attrs.type` picks the
    /// connection type (`bridge` by default).
    pub(super) async fn connection_create(&self, ends: [i64; 2], mut attrs: Attrs) -> Outcome {
        let e1 = self.b.store.element(ends[0]).await.map_err(fail)?;
        let e2 = self.b.store.element(ends[1]).await.map_err(fail)?;
        if e1.topology != e2.topology {
            return Err(RpcError::invalid_value(format!(
                "connection_create: element {} is in topology {}, element {} in topology {}; allowed: two elements of one topology",
                e1.id, e1.topology, e2.id, e2.topology
            ))
            .with_data(json!({"field": "el2"})));
        }
        let (t, _) = self.topology(e1.topology, TopologyOp::CreateComponent).await?;
        let type_name = match attrs.remove("type") {
            None | Some(Value::Null) => "bridge".to_string(),
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(RpcError::invalid_value("connection_create: attrs.type must be a connection type's name")
                    .with_data(json!({"field": "type"})));
            }
        };
        let kind = model::registry().lookup(&type_name, Class::Connection).map_err(|m| {
            RpcError::invalid_value(format!("connection_create: attrs.type: {m}")).with_data(json!({"field": "type"}))
        })?;
        let (h1, hid1) = self.host_of(&e1.host, e1.host_id, &format!("element {}", e1.id)).await?;
        let (h2, hid2) = self.host_of(&e2.host, e2.host_id, &format!("element {}", e2.id)).await?;
        if h1.name != h2.name {
            return Err(RpcError::invalid_value(format!(
                "connection_create: element {} is on host {}, element {} on host {}; allowed: two elements on one host",
                e1.id, h1.name, e2.id, h2.name
            ))
            .with_data(json!({"field": "el2"})));
        }
        let created = self
            .b
            .hosts
            .call(
                &h1,
                "connection_create",
                vec![json!(hid1), json!(hid2), json!(kind.name), Value::Object(without_client_data(&attrs))],
            )
            .await?;
        let hid = created["id"]
            .as_i64()
            .ok_or_else(|| RpcError::internal(format!("host {}: connection_create answered no id", h1.name)))?;
        let row = Connection {
            id: 0,
            topology: t.id,
            kind: kind.name.to_string(),
            ends,
            state: created["state"].as_str().and_then(State::parse).unwrap_or(State::Created),
            attrs,
            host: Some(h1.name.clone()),
            host_id: Some(hid),
        };
        match self.b.store.create_connection(&row).await {
            Ok(c) => self.connection_info_value(&c, Some(&created)).await,
            Err(store_error) => {
                if let Err(e) = self.b.hosts.call(&h1, "connection_remove", vec![json!(hid)]).await {
                    tracing::error!("connection {hid} on host {} is left over: {}", h1.name, e.message);
                }
                Err(fail(store_error))
            }
        }
    }

    pub(super) async fn connection_modify(&self, id: i64, attrs: Map<String, Value>) -> Outcome {
        let op = if client_data(&attrs) { ComponentOp::ModifyClientData } else { ComponentOp::Modify };
        let (mut c, _) = self.connection_checked(id, op).await?;
        let for_host = without_client_data(&attrs);
        let mut host_info = None;
        if !for_host.is_empty() {
            let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {id}")).await?;
            host_info =
                Some(self.b.hosts.call(&host, "connection_modify", vec![json!(hid), Value::Object(for_host)]).await?);
        }
        for (k, v) in attrs {
            if k.starts_with('_') && v.is_null() {
                c.attrs.remove(&k);
            } else {
                c.attrs.insert(k, v);
            }
        }
        self.b.store.update_connection(&c).await.map_err(fail)?;
        self.connection_info_value(&c, host_info.as_ref()).await
    }

    pub(super) async fn connection_info(&self, id: i64, fetch: bool) -> Outcome {
        let (mut c, _) = self.connection_checked(id, ComponentOp::View).await?;
        let host_info = if fetch { Some(self.refresh_connection(&mut c).await?) } else { None };
        self.connection_info_value(&c, host_info.as_ref()).await
    }

    pub(super) async fn connection_remove(&self, id: i64) -> Outcome {
        let (c, _) = self.connection_checked(id, ComponentOp::Remove).await?;
        self.remove_connection_everywhere(&c).await?;
        Ok(Value::Null)
    }

    pub(super) async fn connection_action(&self, id: i64, action: &str, params: Map<String, Value>) -> Outcome {
        let (mut c, t) = self.connection_checked(id, ComponentOp::Action(action)).await?;
        t.timeout.check_action(now(), action).map_err(fail)?;
        self.check_quota(action).await?;
        let (host, hid) = self.host_of(&c.host, c.host_id, &format!("connection {id}")).await?;
        let outcome =
            self.b.hosts.call(&host, "connection_action", vec![json!(hid), json!(action), Value::Object(params)]).await;
        let refreshed = self.refresh_connection(&mut c).await;
        let result = outcome?;
        refreshed?;
        Ok(result)
    }
}
