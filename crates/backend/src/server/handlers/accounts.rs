//! Accounts: `account_*` (info, list, create, modify, remove) and the
//! flag tables.

use super::*;
use crate::permissions::{
    FLAG_CATEGORIES, FlagCategory, UserField, changeable_flags, changeable_user_fields, check_user_modify,
};
use crate::quota::Quota;

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
        let mut info = account_value(&target, private);
        if private {
            // With this month's use, which the store's user record lacks.
            info["quota"] = self.quota_with_use(&target).await?;
        }
        Ok(info)
    }

    pub(super) async fn account_list(&self, organization: Option<&str>, with_flag: Option<&str>) -> Outcome {
        let me = self.me()?;
        let op = match organization {
            None => AdminOp::ListAllUsers,
            Some(org) => AdminOp::ListOrganizationUsers(org),
        };
        check_admin(&subject(me), op).map_err(fail)?;
        let flag = with_flag.map(Flag::parse).transpose().map_err(fail)?;
        let users = self.b.store.users(organization).await.map_err(fail)?;
        Ok(Value::Array(
            users.iter().filter(|u| flag.is_none_or(|f| u.flags.has(f))).map(|u| account_value(u, true)).collect(),
        ))
    }

    /// `account_modify`: the caller's own account or, for administrators,
    /// another's. Keys and flags the caller may not change are refused
    /// (or skipped, with ToMaTo's `ignore_*_on_unauthorized`).
    pub(super) async fn account_modify(&self, bound: &Bound) -> Outcome {
        let me = self.me()?;
        let mut target = match bound.opt_str("name")? {
            None => me.clone(),
            Some(n) => self.b.store.user(n).await.map_err(fail)?,
        };
        let (ignore_keys, ignore_flags) =
            (bound.flag("ignore_key_on_unauthorized")?, bound.flag("ignore_flag_on_unauthorized")?);
        let (who, before) = (subject(me), target.clone());
        let allowed_fields = changeable_user_fields(&who, &subject(&before));
        let allowed_flags = changeable_flags(&who, &subject(&before));
        let mut changes = opt_attrs(bound);
        let mut flags = BTreeMap::new();
        if let Some(value) = changes.remove("flags") {
            let map = value.as_object().ok_or_else(|| {
                invalid_attr(bound, "flags", &format!("must be a map of flag name to true/false, not {value}"))
            })?;
            for (name, on) in map {
                let flag = Flag::parse(name).map_err(fail)?;
                let on = on
                    .as_bool()
                    .ok_or_else(|| invalid_attr(bound, "flags", &format!("{name} must be true or false")))?;
                if !(ignore_flags && target.flags.has(flag) != on && !allowed_flags.has(flag)) {
                    flags.insert(flag, on);
                }
            }
        }
        let mut fields = Vec::new();
        let mut password = None;
        for (key, value) in changes {
            let field = match key.as_str() {
                "realname" => UserField::Realname,
                "email" => UserField::Email,
                "password" => UserField::Password,
                "organization" => UserField::Organization,
                "quota" => UserField::Quota,
                k if k.starts_with('_') => UserField::ClientData,
                _ => {
                    return Err(invalid_attr(
                        bound,
                        &key,
                        "is not allowed; allowed: `realname`, `email`, `password`, `organization`, `flags`, `quota`, `_*` client data",
                    ));
                }
            };
            if ignore_keys && !allowed_fields.contains(&field) {
                continue;
            }
            fields.push(field);
            match field {
                UserField::Realname => target.realname = text(&value).map_err(|w| invalid_attr(bound, &key, w))?,
                UserField::Email => target.email = text(&value).map_err(|w| invalid_attr(bound, &key, w))?,
                UserField::Organization => {
                    target.organization = text(&value).map_err(|w| invalid_attr(bound, &key, w))?
                }
                UserField::Password => password = Some(text(&value).map_err(|w| invalid_attr(bound, &key, w))?),
                UserField::Quota => set_quota(bound, &mut target, &value)?,
                UserField::ClientData if value.is_null() => {
                    target.client_data.remove(&key);
                }
                // `flags` was taken out of the changes above.
                UserField::ClientData | UserField::Flags => {
                    target.client_data.insert(key, value);
                }
            }
        }
        check_user_modify(&who, &subject(&before), &fields, &flags).map_err(fail)?;
        for (flag, on) in flags {
            target.flags.set(flag, on);
        }
        if let Some(p) = password {
            self.b.store.set_password(&target.name, &p).await.map_err(fail)?;
        }
        self.b.store.update_user(&target).await.map_err(fail)?;
        Ok(account_value(&target, true))
    }

    pub(super) async fn account_remove(&self, name: Option<&str>) -> Outcome {
        let me = self.me()?;
        let target = match name {
            None => me.clone(),
            Some(n) => self.b.store.user(n).await.map_err(fail)?,
        };
        check_admin(&subject(me), AdminOp::RemoveUser(&subject(&target))).map_err(fail)?;
        self.b.store.remove_user(&target.name).await.map_err(fail)?;
        Ok(Value::Null)
    }

    pub(super) async fn account_create(&self, bound: &Bound) -> Outcome {
        let (name, password, organization) =
            (bound.str("username")?, bound.str("password")?, bound.str("organization")?);
        if let Some(me) = self.user {
            check_admin(&subject(me), AdminOp::CreateUser(organization)).map_err(fail)?;
        }
        self.b.store.organization(organization).await.map_err(fail)?;
        let attrs = opt_attrs(bound);
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
}

/// An account's info: public fields, and the private ones (e-mail, flags,
/// quota, last login, client data) when `private`.
fn account_value(u: &User, private: bool) -> Value {
    let mut info = json!({
        "name": u.name,
        "organization": u.organization,
        "realname": u.realname,
        "created": u.created,
    });
    if private && let Some(obj) = info.as_object_mut() {
        obj.insert("email".into(), json!(u.email));
        obj.insert("flags".into(), json!(u.flags.names()));
        obj.insert("quota".into(), quota_value(&u.quota));
        obj.insert("last_login".into(), json!(u.last_login));
        obj.insert("client_data".into(), json!(u.client_data));
    }
    info
}

fn quota_value(q: &Quota) -> Value {
    let m = &q.monthly;
    json!({"monthly": {"cputime": m.cputime, "memory": m.memory, "diskspace": m.diskspace, "traffic": m.traffic}})
}

/// Sets the parts of the monthly quota that `value` (`{monthly: {cputime,
/// memory, diskspace, traffic}}`) names.
fn set_quota(bound: &Bound, user: &mut User, value: &Value) -> Result<(), RpcError> {
    const WANT: &str = "must be {\"monthly\": {\"cputime\"|\"memory\"|\"diskspace\"|\"traffic\": number}}";
    let monthly = value.get("monthly").and_then(Value::as_object).ok_or_else(|| invalid_attr(bound, "quota", WANT))?;
    let m = &mut user.quota.monthly;
    for (key, v) in monthly {
        let slot = match key.as_str() {
            "cputime" => &mut m.cputime,
            "memory" => &mut m.memory,
            "diskspace" => &mut m.diskspace,
            "traffic" => &mut m.traffic,
            _ => return Err(invalid_attr(bound, "quota", WANT)),
        };
        *slot = v.as_f64().ok_or_else(|| invalid_attr(bound, "quota", WANT))?;
    }
    Ok(())
}

/// `account_flags`: every flag with its description.
pub(super) fn account_flags() -> Value {
    Value::Object(Flag::ALL.iter().map(|f| (f.name().to_string(), json!(f.description()))).collect())
}

/// `account_flag_categories`: each category's title with its flags.
pub(super) fn account_flag_categories() -> Value {
    Value::Object(FLAG_CATEGORIES.iter().map(|c| (c.title.to_string(), json!(category_flags(c)))).collect())
}

/// `account_flag_configuration`: the flags and the categories together.
pub(super) fn account_flag_configuration() -> Value {
    let categories: Vec<Value> = FLAG_CATEGORIES
        .iter()
        .map(|c| json!({"title": c.title, "onscreentitle": c.onscreentitle, "flags": category_flags(c)}))
        .collect();
    json!({"flags": account_flags(), "categories": categories})
}

fn category_flags(c: &FlagCategory) -> Vec<&'static str> {
    c.flags.iter().map(|f| f.name()).collect()
}
