//! Accounts and hosts: `account_*` and `host_*`.

use super::*;

impl Cx<'_> {
    // ---- accounts ---------------------------------------------------------

    pub(super) async fn account_info(&self, name: Option<&str>) -> Outcome {
        let me = self.me()?;
        let target = match name {
            None => me.clone(),
            Some(n) => self.b.store.user(n).await.map_err(fail)?,
        };
        let private =
            target.name == me.name || check_admin(&subject(me), AdminOp::ViewUserDetails(&subject(&target))).is_ok();
        let mut info = json!({
            "name": target.name,
            "organization": target.organization,
            "realname": target.realname,
            "created": target.created,
        });
        if private && let Some(obj) = info.as_object_mut() {
            obj.insert("email".into(), json!(target.email));
            obj.insert("flags".into(), json!(target.flags.names()));
            obj.insert("last_login".into(), json!(target.last_login));
            obj.insert("client_data".into(), json!(target.client_data));
            obj.insert("quota".into(), self.quota_value(&target).await?);
        }
        Ok(info)
    }

    pub(super) async fn account_create(&self, bound: &Bound) -> Outcome {
        let (name, password, organization) =
            (bound.str("username")?, bound.str("password")?, bound.str("organization")?);
        if let Some(me) = self.user {
            check_admin(&subject(me), AdminOp::CreateUser(organization)).map_err(fail)?;
        }
        self.b.store.organization(organization).await.map_err(fail)?;
        let attrs = match bound.value("attrs") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let mut user = User::new(name, organization, "", "", now());
        for (key, value) in attrs {
            let text = || {
                value.as_str().map(String::from).ok_or_else(|| {
                    RpcError::invalid_value(format!("account_create: attrs.{key} must be a string"))
                        .with_data(json!({"field": key}))
                })
            };
            match key.as_str() {
                "realname" => user.realname = text()?,
                "email" => user.email = text()?,
                k if k.starts_with('_') => {
                    user.client_data.insert(key.clone(), value.clone());
                }
                _ => {
                    return Err(RpcError::invalid_value(format!(
                        "account_create: attrs.{key} is not allowed; allowed: `realname`, `email`, `_*` client data"
                    ))
                    .with_data(json!({"field": key})));
                }
            }
        }
        if self.user.is_none() {
            user.flags.set(Flag::NewAccount, true);
        }
        self.b.store.create_user(&user, password).await.map_err(fail)?;
        Ok(json!({"name": user.name, "organization": user.organization, "realname": user.realname}))
    }

    // ---- hosts ------------------------------------------------------------

    pub(super) async fn host_create(&self, bound: &Bound) -> Outcome {
        let me = self.me()?;
        let (name, site) = (bound.str("name")?, bound.str("site")?);
        let site = self.b.store.site(site).await.map_err(fail)?;
        check_admin(&subject(me), AdminOp::CreateHost(&site.organization)).map_err(fail)?;
        let attrs = match bound.value("attrs") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        const ALLOWED: &str = "allowed: `address`, `rpcurl`, `fingerprint` (required), `description`";
        let field = |key: &str| -> Result<String, RpcError> {
            attrs.get(key).and_then(Value::as_str).map(String::from).ok_or_else(|| {
                RpcError::invalid_value(format!("host_create: attrs.{key} (a string) is missing; {ALLOWED}"))
                    .with_data(json!({"field": key}))
            })
        };
        if let Some(key) =
            attrs.keys().find(|k| !["address", "rpcurl", "fingerprint", "description"].contains(&k.as_str()))
        {
            return Err(RpcError::invalid_value(format!("host_create: attrs.{key} is not allowed; {ALLOWED}"))
                .with_data(json!({"field": key})));
        }
        let mut host = Host::new(name, &site.name, &field("address")?, &field("rpcurl")?, &field("fingerprint")?);
        if attrs.contains_key("description") {
            host.description = field("description")?;
        }
        let host = hosts::register(&self.b.store, &self.b.hosts, host, &site.organization, now()).await?;
        Ok(host_value(&host))
    }

    pub(super) async fn host_list(&self, site: Option<&str>, organization: Option<&str>) -> Outcome {
        let mut list = self.b.store.hosts(site).await.map_err(fail)?;
        if let (None, Some(org)) = (site, organization) {
            let sites: BTreeSet<String> =
                self.b.store.sites(Some(org)).await.map_err(fail)?.into_iter().map(|s| s.name).collect();
            list.retain(|h| sites.contains(&h.site));
        }
        Ok(Value::Array(list.iter().map(host_value).collect()))
    }
}
