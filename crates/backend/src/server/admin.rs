//! Bootstrap: the first accounts, made directly in the store (the API's
//! `account_create` cannot give administrator flags to anyone yet).

use crate::permissions::{Flag, Flags};
use crate::store::{Store, StoreError, User};

use super::hosts::ensure_organization;

/// Makes account `name` in `organization` (created when missing) with
/// `password`; an `admin` gets `global_admin` and `global_host_manager`.
pub async fn create_user(
    store: &Store,
    name: &str,
    password: &str,
    organization: &str,
    admin: bool,
    now: i64,
) -> Result<User, StoreError> {
    ensure_organization(store, organization).await?;
    let mut user = User::new(name, organization, name, "", now);
    if admin {
        let mut flags = Flags::new();
        flags.set(Flag::GlobalAdmin, true);
        flags.set(Flag::GlobalHostManager, true);
        user.flags = flags;
    }
    store.create_user(&user, password).await?;
    Ok(user)
}
