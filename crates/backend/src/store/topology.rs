//! Topologies with their permissions, elements and connections.

use std::collections::BTreeMap;

use model::{Attrs, Class, State};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, check_client_data, check_text, from_json, sql, to_json};
use crate::permissions::{Member, Role};
use crate::timeouts::{TimeoutStep, TopologyTimeout};

/// A topology (its elements and connections are read separately).
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The site its elements should be placed in, if any.
    pub site: Option<String>,
    /// Its deadline and timeout step.
    pub timeout: TopologyTimeout,
    /// The client's data (`_*` keys, e.g. `_notes`), kept verbatim.
    pub client_data: Attrs,
    /// When it was made, seconds since the epoch.
    pub created: i64,
    /// Who may do what: user → role (never `null`).
    pub permissions: BTreeMap<String, Role>,
}

/// An element of a topology.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// Its id.
    pub id: i64,
    /// Its topology.
    pub topology: i64,
    /// Its kind (the model's name, e.g. `container`).
    pub kind: String,
    /// Its parent (for interfaces and endpoints).
    pub parent: Option<i64>,
    /// Its state.
    pub state: State,
    /// Its attributes, client data (`_*`) included, kept verbatim.
    pub attrs: Attrs,
    /// The host it is placed on.
    pub host: Option<String>,
    /// Its id on that host (the hostmanager's).
    pub host_id: Option<i64>,
}

/// A connection between two elements of a topology.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// Its id.
    pub id: i64,
    /// Its topology.
    pub topology: i64,
    /// Its kind (the model's name, e.g. `bridge`).
    pub kind: String,
    /// The two elements it joins.
    pub ends: [i64; 2],
    /// Its state.
    pub state: State,
    /// Its attributes, client data included.
    pub attrs: Attrs,
    /// The host it is placed on.
    pub host: Option<String>,
    /// Its id on that host.
    pub host_id: Option<i64>,
}

fn check_topology(t: &Topology) -> Result<(), StoreError> {
    if t.name.trim().is_empty() {
        return Err(StoreError::invalid("name", "empty; allowed: 1 to 255 characters"));
    }
    check_text("name", &t.name, 255)?;
    check_client_data("client_data", &t.client_data)
}

/// The model's canonical name of a kind, or an error listing the kinds.
fn canonical_kind(field: &str, name: &str, class: Class) -> Result<&'static str, StoreError> {
    model::registry().lookup(name, class).map(|k| k.name).map_err(|m| StoreError::invalid(field, m))
}

fn topology_from_row(r: &AnyRow, permissions: BTreeMap<String, Role>) -> Result<Topology, StoreError> {
    let step: String = r.try_get("timeout_step")?;
    Ok(Topology {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        site: r.try_get("site")?,
        timeout: TopologyTimeout {
            at: r.try_get("timeout")?,
            step: TimeoutStep::parse(&step)
                .map_err(|e| StoreError::Corrupt { what: "timeout_step".into(), message: e.to_string() })?,
        },
        client_data: from_json(&r.try_get::<String, _>("client_data")?, "client_data")?,
        created: r.try_get("created")?,
        permissions,
    })
}

fn state(text: &str) -> Result<State, StoreError> {
    State::parse(text)
        .ok_or_else(|| StoreError::Corrupt { what: "state".into(), message: format!("unknown state `{text}`") })
}

fn element_from_row(r: &AnyRow) -> Result<Element, StoreError> {
    Ok(Element {
        id: r.try_get("id")?,
        topology: r.try_get("topology")?,
        kind: r.try_get("type")?,
        parent: r.try_get("parent")?,
        state: state(&r.try_get::<String, _>("state")?)?,
        attrs: from_json(&r.try_get::<String, _>("attrs")?, "attrs")?,
        host: r.try_get("host")?,
        host_id: r.try_get("host_id")?,
    })
}

fn connection_from_row(r: &AnyRow) -> Result<Connection, StoreError> {
    Ok(Connection {
        id: r.try_get("id")?,
        topology: r.try_get("topology")?,
        kind: r.try_get("type")?,
        ends: [r.try_get("element1")?, r.try_get("element2")?],
        state: state(&r.try_get::<String, _>("state")?)?,
        attrs: from_json(&r.try_get::<String, _>("attrs")?, "attrs")?,
        host: r.try_get("host")?,
        host_id: r.try_get("host_id")?,
    })
}

async fn permissions_of(tx: &mut Transaction<'_, Any>, topology: i64) -> Result<BTreeMap<String, Role>, StoreError> {
    let rows = sqlx::query("SELECT account, role FROM topology_permission WHERE topology = $1")
        .bind(topology)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            let role =
                Role::parse(&role).map_err(|e| StoreError::Corrupt { what: "role".into(), message: e.to_string() })?;
            Ok((r.try_get("account")?, role))
        })
        .collect()
}

async fn require_site(tx: &mut Transaction<'_, Any>, site: &Option<String>) -> Result<(), StoreError> {
    if let Some(s) = site
        && sqlx::query("SELECT 1 FROM site WHERE name = $1").bind(s).fetch_optional(&mut **tx).await?.is_none()
    {
        return Err(StoreError::invalid("site", format!("site `{s}` does not exist")));
    }
    Ok(())
}

async fn require_host(tx: &mut Transaction<'_, Any>, host: &Option<String>) -> Result<(), StoreError> {
    if let Some(h) = host
        && sqlx::query("SELECT 1 FROM host WHERE name = $1").bind(h).fetch_optional(&mut **tx).await?.is_none()
    {
        return Err(StoreError::invalid("host", format!("host `{h}` does not exist")));
    }
    Ok(())
}

async fn element_in(tx: &mut Transaction<'_, Any>, id: i64) -> Result<Element, StoreError> {
    let row = sqlx::query("SELECT * FROM element WHERE id = $1").bind(id).fetch_optional(&mut **tx).await?;
    element_from_row(&row.ok_or_else(|| StoreError::not_found("element", id))?)
}

impl Store {
    /// Makes a topology owned by `owner` and returns it with its id; `t.id`
    /// and `t.permissions` are ignored.
    pub async fn create_topology(&self, t: &Topology, owner: &str) -> Result<Topology, StoreError> {
        check_topology(t)?;
        let mut tx = self.pool.begin().await?;
        if sqlx::query("SELECT 1 FROM account WHERE name = $1").bind(owner).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::invalid("owner", format!("user `{owner}` does not exist")));
        }
        require_site(&mut tx, &t.site).await?;
        let id: i64 = sqlx::query(
            "INSERT INTO topology (name, site, timeout, timeout_step, client_data, created) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&t.name)
        .bind(&t.site)
        .bind(t.timeout.at)
        .bind(t.timeout.step.name())
        .bind(to_json(&t.client_data))
        .bind(t.created)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query("INSERT INTO topology_permission (topology, account, role) VALUES ($1, $2, 'owner')")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Topology { id, permissions: BTreeMap::from([(owner.to_string(), Role::Owner)]), ..t.clone() })
    }

    /// The topology `id` with its permissions.
    pub async fn topology(&self, id: i64) -> Result<Topology, StoreError> {
        let mut tx = self.reader.begin().await?;
        let row = sqlx::query("SELECT * FROM topology WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        let row = row.ok_or_else(|| StoreError::not_found("topology", id))?;
        let permissions = permissions_of(&mut tx, id).await?;
        tx.commit().await?;
        topology_from_row(&row, permissions)
    }

    /// Every topology, or those `user` has a role on, by id.
    pub async fn topologies(&self, user: Option<&str>) -> Result<Vec<Topology>, StoreError> {
        let mut tx = self.reader.begin().await?;
        let rows = match user {
            Some(u) => {
                sqlx::query(
                    "SELECT * FROM topology WHERE id IN (SELECT topology FROM topology_permission WHERE account = $1) ORDER BY id",
                )
                .bind(u)
                .fetch_all(&mut *tx)
                .await?
            }
            None => sqlx::query("SELECT * FROM topology ORDER BY id").fetch_all(&mut *tx).await?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            out.push(topology_from_row(r, permissions_of(&mut tx, id).await?)?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Writes a topology's name, site, timeout and client data (permissions
    /// change through [`Store::set_permission`]).
    pub async fn update_topology(&self, t: &Topology) -> Result<(), StoreError> {
        check_topology(t)?;
        let mut tx = self.pool.begin().await?;
        require_site(&mut tx, &t.site).await?;
        let done = sqlx::query(
            "UPDATE topology SET name = $1, site = $2, timeout = $3, timeout_step = $4, client_data = $5 WHERE id = $6",
        )
        .bind(&t.name)
        .bind(&t.site)
        .bind(t.timeout.at)
        .bind(t.timeout.step.name())
        .bind(to_json(&t.client_data))
        .bind(t.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("topology", t.id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives `user` the `role` on topology `id` (`null` takes every role
    /// away). The store keeps at least one owner; who may change what is
    /// [`crate::permissions::check_set_permission`]'s business.
    pub async fn set_permission(&self, id: i64, user: &str, role: Role) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if sqlx::query("SELECT 1 FROM topology WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::not_found("topology", id));
        }
        if sqlx::query("SELECT 1 FROM account WHERE name = $1").bind(user).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::invalid("user", format!("user `{user}` does not exist")));
        }
        sqlx::query("DELETE FROM topology_permission WHERE topology = $1 AND account = $2")
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        if role != Role::Null {
            sqlx::query("INSERT INTO topology_permission (topology, account, role) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(user)
                .bind(role.name())
                .execute(&mut *tx)
                .await?;
        }
        if !permissions_of(&mut tx, id).await?.values().any(|r| *r == Role::Owner) {
            return Err(StoreError::invalid(
                "role",
                format!("`{user}` is the last owner of topology {id}; a topology keeps an owner"),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The permissions of topology `id` with each user's organization, as
    /// [`crate::permissions`] checks take them.
    pub async fn members(&self, id: i64) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.account, a.organization, p.role FROM topology_permission p JOIN account a ON a.name = p.account \
             WHERE p.topology = $1 ORDER BY p.account",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get(2)?;
                Ok(Member {
                    user: r.try_get(0)?,
                    organization: r.try_get(1)?,
                    role: Role::parse(&role)
                        .map_err(|e| StoreError::Corrupt { what: "role".into(), message: e.to_string() })?,
                })
            })
            .collect()
    }

    /// Removes a topology with its elements, connections, permissions and
    /// their usage records, all at once.
    pub async fn remove_topology(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (class, table) in [("connection", "connection"), ("element", "element")] {
            sqlx::query(sql(format!(
                "DELETE FROM usage_record WHERE class = '{class}' AND object IN \
                 (SELECT CAST(id AS TEXT) FROM {table} WHERE topology = $1)"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM usage_record WHERE class = 'topology' AND object = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM connection WHERE topology = $1").bind(id).execute(&mut *tx).await?;
        // Children first: their parents are referenced.
        loop {
            let done = sqlx::query(
                "DELETE FROM element WHERE topology = $1 AND id NOT IN \
                 (SELECT parent FROM element WHERE parent IS NOT NULL)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                break;
            }
        }
        sqlx::query("DELETE FROM topology_permission WHERE topology = $1").bind(id).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM topology WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("topology", id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds an element and returns it with its id (`e.id` is ignored). Its
    /// kind must be an element kind of the model (stored under its
    /// canonical name); its parent, if any, must be in the same topology.
    pub async fn create_element(&self, e: &Element) -> Result<Element, StoreError> {
        let kind = canonical_kind("type", &e.kind, Class::Element)?;
        let mut tx = self.pool.begin().await?;
        if sqlx::query("SELECT 1 FROM topology WHERE id = $1")
            .bind(e.topology)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::not_found("topology", e.topology));
        }
        if let Some(p) = e.parent {
            let parent = element_in(&mut tx, p)
                .await
                .map_err(|_| StoreError::invalid("parent", format!("element {p} does not exist")))?;
            if parent.topology != e.topology {
                return Err(StoreError::invalid(
                    "parent",
                    format!("element {p} belongs to topology {}", parent.topology),
                ));
            }
        }
        require_host(&mut tx, &e.host).await?;
        let id: i64 = sqlx::query(
            "INSERT INTO element (topology, type, parent, state, attrs, host, host_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(e.topology)
        .bind(kind)
        .bind(e.parent)
        .bind(e.state.as_str())
        .bind(to_json(&e.attrs))
        .bind(&e.host)
        .bind(e.host_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        Ok(Element { id, kind: kind.to_string(), ..e.clone() })
    }

    /// The element `id`.
    pub async fn element(&self, id: i64) -> Result<Element, StoreError> {
        let row = sqlx::query("SELECT * FROM element WHERE id = $1").bind(id).fetch_optional(&self.reader).await?;
        element_from_row(&row.ok_or_else(|| StoreError::not_found("element", id))?)
    }

    /// The ids of `e`'s children (ascending) and of the connection `e` is
    /// an end of, if any: what an element's info shows, in one query.
    pub async fn element_links(&self, e: &Element) -> Result<(Vec<i64>, Option<i64>), StoreError> {
        let rows = sqlx::query(
            "SELECT 'child', id FROM element WHERE topology = $1 AND parent = $2 \
             UNION ALL SELECT 'connection', id FROM connection \
             WHERE topology = $1 AND (element1 = $2 OR element2 = $2) ORDER BY 1, 2",
        )
        .bind(e.topology)
        .bind(e.id)
        .fetch_all(&self.reader)
        .await?;
        let (mut children, mut connection) = (Vec::new(), None);
        for r in &rows {
            let id: i64 = r.try_get(1)?;
            if r.try_get::<String, _>(0)? == "child" {
                children.push(id);
            } else {
                connection = connection.or(Some(id));
            }
        }
        Ok((children, connection))
    }

    /// The elements of topology `id`, by id.
    pub async fn elements(&self, topology: i64) -> Result<Vec<Element>, StoreError> {
        let rows = sqlx::query("SELECT * FROM element WHERE topology = $1 ORDER BY id")
            .bind(topology)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(element_from_row).collect()
    }

    /// Writes an element's state, attributes, host and host id.
    pub async fn update_element(&self, e: &Element) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        require_host(&mut tx, &e.host).await?;
        let done = sqlx::query("UPDATE element SET state = $1, attrs = $2, host = $3, host_id = $4 WHERE id = $5")
            .bind(e.state.as_str())
            .bind(to_json(&e.attrs))
            .bind(&e.host)
            .bind(e.host_id)
            .bind(e.id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("element", e.id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes an element, its children (recursively), the connections of
    /// any of them and their usage records, all at once; returns the ids
    /// of the removed elements and connections.
    pub async fn remove_element(&self, id: i64) -> Result<(Vec<i64>, Vec<i64>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let root = element_in(&mut tx, id).await?;
        let mut elements = vec![root.id];
        let mut i = 0;
        while i < elements.len() {
            let rows =
                sqlx::query("SELECT id FROM element WHERE parent = $1").bind(elements[i]).fetch_all(&mut *tx).await?;
            for r in rows {
                elements.push(r.try_get(0)?);
            }
            i += 1;
        }
        let mut connections = Vec::new();
        for e in &elements {
            let rows = sqlx::query("SELECT id FROM connection WHERE element1 = $1 OR element2 = $1")
                .bind(e)
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                let c: i64 = r.try_get(0)?;
                if !connections.contains(&c) {
                    connections.push(c);
                }
            }
        }
        for c in &connections {
            delete_usage(&mut tx, "connection", *c).await?;
            sqlx::query("DELETE FROM connection WHERE id = $1").bind(c).execute(&mut *tx).await?;
        }
        // Deepest first, so no row references a deleted parent.
        for e in elements.iter().rev() {
            delete_usage(&mut tx, "element", *e).await?;
            sqlx::query("DELETE FROM element WHERE id = $1").bind(e).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        elements.sort_unstable();
        connections.sort_unstable();
        Ok((elements, connections))
    }

    /// Adds a connection and returns it with its id. Both ends must be
    /// different elements of the connection's topology, neither connected
    /// yet (an interface carries one connection).
    pub async fn create_connection(&self, c: &Connection) -> Result<Connection, StoreError> {
        let kind = canonical_kind("type", &c.kind, Class::Connection)?;
        if c.ends[0] == c.ends[1] {
            return Err(StoreError::invalid(
                "elements",
                format!("element {} cannot be connected to itself", c.ends[0]),
            ));
        }
        let mut tx = self.pool.begin().await?;
        for (i, end) in c.ends.iter().enumerate() {
            let field = format!("element{}", i + 1);
            let e = element_in(&mut tx, *end)
                .await
                .map_err(|_| StoreError::invalid(&field, format!("element {end} does not exist")))?;
            if e.topology != c.topology {
                return Err(StoreError::invalid(field, format!("element {end} belongs to topology {}", e.topology)));
            }
            let used = sqlx::query("SELECT 1 FROM connection WHERE element1 = $1 OR element2 = $1")
                .bind(end)
                .fetch_optional(&mut *tx)
                .await?;
            if used.is_some() {
                return Err(StoreError::AlreadyConnected(*end));
            }
        }
        require_host(&mut tx, &c.host).await?;
        let id: i64 = sqlx::query(
            "INSERT INTO connection (topology, type, element1, element2, state, attrs, host, host_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(c.topology)
        .bind(kind)
        .bind(c.ends[0])
        .bind(c.ends[1])
        .bind(c.state.as_str())
        .bind(to_json(&c.attrs))
        .bind(&c.host)
        .bind(c.host_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        Ok(Connection { id, kind: kind.to_string(), ..c.clone() })
    }

    /// The connection `id`.
    pub async fn connection(&self, id: i64) -> Result<Connection, StoreError> {
        let row = sqlx::query("SELECT * FROM connection WHERE id = $1").bind(id).fetch_optional(&self.reader).await?;
        connection_from_row(&row.ok_or_else(|| StoreError::not_found("connection", id))?)
    }

    /// The connections of topology `id`, by id.
    pub async fn connections(&self, topology: i64) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query("SELECT * FROM connection WHERE topology = $1 ORDER BY id")
            .bind(topology)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(connection_from_row).collect()
    }

    /// Writes a connection's state, attributes, host and host id.
    pub async fn update_connection(&self, c: &Connection) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        require_host(&mut tx, &c.host).await?;
        let done = sqlx::query("UPDATE connection SET state = $1, attrs = $2, host = $3, host_id = $4 WHERE id = $5")
            .bind(c.state.as_str())
            .bind(to_json(&c.attrs))
            .bind(&c.host)
            .bind(c.host_id)
            .bind(c.id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("connection", c.id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a connection and its usage records.
    pub async fn remove_connection(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        delete_usage(&mut tx, "connection", id).await?;
        let done = sqlx::query("DELETE FROM connection WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("connection", id));
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn delete_usage(tx: &mut Transaction<'_, Any>, class: &str, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM usage_record WHERE class = $1 AND object = $2")
        .bind(class)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
