//! Organizations and user accounts, with argon2id password hashes.

use accounting::Usage;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use model::Attrs;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Store, StoreError, check_client_data, check_name, check_text, exists_or, from_json, refuse_if_used, sql, to_json,
};
use crate::permissions::{Flag, Flags};
use crate::quota::Quota;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// An organization (a university, a lab, a company).
#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    /// Its unique name.
    pub name: String,
    /// Its name for people.
    pub label: String,
    /// A description.
    pub description: String,
    /// Its web page.
    pub homepage_url: String,
    /// Its logo.
    pub image_url: String,
}

impl Organization {
    fn check(&self) -> Result<(), StoreError> {
        check_name("name", &self.name)?;
        check_text("label", &self.label, 255)?;
        check_text("description", &self.description, 10_000)?;
        check_text("homepage_url", &self.homepage_url, 2048)?;
        check_text("image_url", &self.image_url, 2048)
    }
}

/// A user account (without its password, which only [`Store`] sees).
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The organization it belongs to.
    pub organization: String,
    /// The full name.
    pub realname: String,
    /// The e-mail address.
    pub email: String,
    /// Its flags.
    pub flags: Flags,
    /// Its monthly quota.
    pub quota: Quota,
    /// The client's data (`_*` keys), kept verbatim.
    pub client_data: Attrs,
    /// When it was made, seconds since the epoch.
    pub created: i64,
    /// Its last successful login, seconds since the epoch.
    pub last_login: Option<i64>,
}

impl User {
    /// A new account with no flags, ToMaTo's default quota and no client
    /// data.
    pub fn new(name: &str, organization: &str, realname: &str, email: &str, created: i64) -> User {
        User {
            name: name.into(),
            organization: organization.into(),
            realname: realname.into(),
            email: email.into(),
            flags: Flags::new(),
            quota: Quota::tomato_default(),
            client_data: Attrs::new(),
            created,
            last_login: None,
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        check_name("name", &self.name)?;
        check_name("organization", &self.organization)?;
        check_text("realname", &self.realname, 255)?;
        let email_ok = self.email.is_empty()
            || (self.email.len() <= 254
                && self.email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !self.email.chars().any(char::is_whitespace));
        if !email_ok {
            return Err(StoreError::invalid(
                "email",
                format!("`{}` is not an address; allowed: user@domain.tld or empty", self.email),
            ));
        }
        self.quota.validate().map_err(|e| StoreError::invalid("quota", e.to_string()))?;
        check_client_data("client_data", &self.client_data)
    }
}

fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StoreError::invalid(
            "password",
            format!("too short; allowed: at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(StoreError::invalid("password", "too long; allowed: at most 1024 bytes"));
    }
    Ok(())
}

/// Hashes off the async threads: argon2id takes tens of milliseconds on
/// purpose.
async fn hash_password(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Password(e.to_string()))
    })
    .await
    .map_err(|e| StoreError::Password(e.to_string()))?
}

async fn verify_password(password: &str, hash: &str) -> Result<bool, StoreError> {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| StoreError::Corrupt { what: "password_hash".into(), message: e.to_string() })?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| StoreError::Password(e.to_string()))?
}

fn organization_from_row(r: &AnyRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        name: r.try_get("name")?,
        label: r.try_get("label")?,
        description: r.try_get("description")?,
        homepage_url: r.try_get("homepage_url")?,
        image_url: r.try_get("image_url")?,
    })
}

fn user_from_row(r: &AnyRow) -> Result<User, StoreError> {
    let names: Vec<String> = from_json(&r.try_get::<String, _>("flags")?, "flags")?;
    // A flag name this build does not know is kept out rather than failing
    // the whole account (a newer backend may have written it).
    let flags: Flags = names.iter().filter_map(|n| Flag::parse(n).ok()).collect();
    Ok(User {
        name: r.try_get("name")?,
        organization: r.try_get("organization")?,
        realname: r.try_get("realname")?,
        email: r.try_get("email")?,
        flags,
        quota: Quota {
            monthly: Usage {
                cputime: r.try_get("quota_cputime")?,
                memory: r.try_get("quota_memory")?,
                diskspace: r.try_get("quota_diskspace")?,
                traffic: r.try_get("quota_traffic")?,
            },
        },
        client_data: from_json(&r.try_get::<String, _>("client_data")?, "client_data")?,
        created: r.try_get("created")?,
        last_login: r.try_get("last_login")?,
    })
}

const USER_COLUMNS: &str = "name, organization, realname, email, flags, quota_cputime, quota_memory, \
     quota_diskspace, quota_traffic, client_data, created, last_login";

impl Store {
    /// Adds an organization.
    pub async fn create_organization(&self, o: &Organization) -> Result<(), StoreError> {
        o.check()?;
        sqlx::query(
            "INSERT INTO organization (name, label, description, homepage_url, image_url) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&o.name)
        .bind(&o.label)
        .bind(&o.description)
        .bind(&o.homepage_url)
        .bind(&o.image_url)
        .execute(&self.pool)
        .await
        .map_err(|e| exists_or(e, "organization", &o.name))?;
        Ok(())
    }

    /// The organization `name`.
    pub async fn organization(&self, name: &str) -> Result<Organization, StoreError> {
        let row =
            sqlx::query("SELECT * FROM organization WHERE name = $1").bind(name).fetch_optional(&self.reader).await?;
        organization_from_row(&row.ok_or_else(|| StoreError::not_found("organization", name))?)
    }

    /// Every organization, by name.
    pub async fn organizations(&self) -> Result<Vec<Organization>, StoreError> {
        let rows = sqlx::query("SELECT * FROM organization ORDER BY name").fetch_all(&self.reader).await?;
        rows.iter().map(organization_from_row).collect()
    }

    /// Writes an organization's label, description and URLs.
    pub async fn update_organization(&self, o: &Organization) -> Result<(), StoreError> {
        o.check()?;
        let done = sqlx::query(
            "UPDATE organization SET label = $1, description = $2, homepage_url = $3, image_url = $4 WHERE name = $5",
        )
        .bind(&o.label)
        .bind(&o.description)
        .bind(&o.homepage_url)
        .bind(&o.image_url)
        .bind(&o.name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("organization", &o.name));
        }
        Ok(())
    }

    /// Removes an organization that has no users and no sites.
    pub async fn remove_organization(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        refuse_if_used(&mut tx, "organization", name, &[("account", "users"), ("site", "sites")]).await?;
        let done = sqlx::query("DELETE FROM organization WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("organization", name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds a user account with `password` (stored as an argon2id hash).
    pub async fn create_user(&self, u: &User, password: &str) -> Result<(), StoreError> {
        u.check()?;
        check_password(password)?;
        let hash = hash_password(password).await?;
        let mut tx = self.pool.begin().await?;
        require_organization(&mut tx, &u.organization).await?;
        sqlx::query(sql(format!(
            "INSERT INTO account ({USER_COLUMNS}, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(&u.name)
        .bind(&u.organization)
        .bind(&u.realname)
        .bind(&u.email)
        .bind(to_json(&u.flags.names()))
        .bind(u.quota.monthly.cputime)
        .bind(u.quota.monthly.memory)
        .bind(u.quota.monthly.diskspace)
        .bind(u.quota.monthly.traffic)
        .bind(to_json(&u.client_data))
        .bind(u.created)
        .bind(u.last_login)
        .bind(hash)
        .execute(&mut *tx)
        .await
        .map_err(|e| exists_or(e, "user", &u.name))?;
        tx.commit().await?;
        Ok(())
    }

    /// The user `name`.
    pub async fn user(&self, name: &str) -> Result<User, StoreError> {
        let row = sqlx::query(sql(format!("SELECT {USER_COLUMNS} FROM account WHERE name = $1")))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        user_from_row(&row.ok_or_else(|| StoreError::not_found("user", name))?)
    }

    /// Every user, or those of one organization, by name.
    pub async fn users(&self, organization: Option<&str>) -> Result<Vec<User>, StoreError> {
        let rows = match organization {
            Some(o) => {
                sqlx::query(sql(format!("SELECT {USER_COLUMNS} FROM account WHERE organization = $1 ORDER BY name")))
                    .bind(o)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query(sql(format!("SELECT {USER_COLUMNS} FROM account ORDER BY name")))
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(user_from_row).collect()
    }

    /// Writes every field of a user but its name, creation time and
    /// password.
    pub async fn update_user(&self, u: &User) -> Result<(), StoreError> {
        u.check()?;
        let mut tx = self.pool.begin().await?;
        require_organization(&mut tx, &u.organization).await?;
        let done = sqlx::query(
            "UPDATE account SET organization = $1, realname = $2, email = $3, flags = $4, quota_cputime = $5, \
             quota_memory = $6, quota_diskspace = $7, quota_traffic = $8, client_data = $9, last_login = $10 \
             WHERE name = $11",
        )
        .bind(&u.organization)
        .bind(&u.realname)
        .bind(&u.email)
        .bind(to_json(&u.flags.names()))
        .bind(u.quota.monthly.cputime)
        .bind(u.quota.monthly.memory)
        .bind(u.quota.monthly.diskspace)
        .bind(u.quota.monthly.traffic)
        .bind(to_json(&u.client_data))
        .bind(u.last_login)
        .bind(&u.name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", &u.name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets a user's password.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), StoreError> {
        check_password(password)?;
        let hash = hash_password(password).await?;
        let done = sqlx::query("UPDATE account SET password_hash = $1 WHERE name = $2")
            .bind(hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", name));
        }
        Ok(())
    }

    /// The user if `name` exists and `password` is its password, `None`
    /// otherwise (the caller cannot tell which part was wrong, nor can an
    /// attacker). A successful login is recorded at `now`.
    pub async fn login(&self, name: &str, password: &str, now: i64) -> Result<Option<User>, StoreError> {
        // The account and its hash in one read: a login is part of every
        // call.
        let row = sqlx::query(sql(format!("SELECT {USER_COLUMNS}, password_hash FROM account WHERE name = $1")))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else {
            // Spend the same time as for a real account.
            let _ = verify_password(password, DUMMY_HASH).await;
            return Ok(None);
        };
        let hash: String = row.try_get("password_hash")?;
        let mut user = user_from_row(&row)?;
        if self.logins.knows(name, &hash, password, now) {
            return Ok(Some(user));
        }
        if !verify_password(password, &hash).await? {
            return Ok(None);
        }
        self.logins.remember(name, &hash, password, now);
        sqlx::query("UPDATE account SET last_login = $1 WHERE name = $2")
            .bind(now)
            .bind(name)
            .execute(&self.pool)
            .await?;
        user.last_login = Some(now);
        Ok(Some(user))
    }

    /// Removes a user and their topology permissions; refused while they
    /// are the last owner of a topology (it would be orphaned).
    pub async fn remove_user(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT p.topology FROM topology_permission p WHERE p.account = $1 AND p.role = 'owner' \
             AND NOT EXISTS (SELECT 1 FROM topology_permission q WHERE q.topology = p.topology \
             AND q.role = 'owner' AND q.account <> $1) ORDER BY p.topology",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        if !rows.is_empty() {
            let ids =
                rows.iter().map(|r| r.try_get::<i64, _>(0).map(|i| i.to_string())).collect::<Result<Vec<_>, _>>()?;
            return Err(StoreError::NotEmpty {
                entity: "user",
                key: name.into(),
                what: format!("topologies it alone owns: {}", ids.join(", ")),
            });
        }
        sqlx::query("DELETE FROM topology_permission WHERE account = $1").bind(name).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM account WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", name));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A valid argon2id hash of a random password, verified against when the
/// account does not exist so that both answers take as long.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yx6YyN8tHmLqgkj4vMkvXZD1Yy1fUqCK1a+8g6C5kh8";

pub(super) async fn require_organization(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
) -> Result<(), StoreError> {
    let found = sqlx::query("SELECT 1 FROM organization WHERE name = $1").bind(name).fetch_optional(&mut **tx).await?;
    if found.is_none() {
        return Err(StoreError::InvalidValue {
            field: "organization".into(),
            message: format!("organization `{name}` does not exist"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_are_argon2id_with_a_salt_of_their_own() {
        let a = hash_password("correct horse").await.unwrap();
        let b = hash_password("correct horse").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse", &a).await.unwrap());
        assert!(!verify_password("correct horsE", &b).await.unwrap());
        // The stand-in hash for unknown accounts parses and matches nothing.
        assert!(!verify_password("", DUMMY_HASH).await.unwrap());
        assert!(verify_password("x", "not a hash").await.is_err());
    }
}

/// Logins verified within [`LoginCache::SECS`]: ToMaTo's clients send the
/// password with every call (HTTP Basic), and argon2 is slow on purpose,
/// so a client making many calls pays for one verification a minute. An
/// entry holds an HMAC of the password under a key made at start (never
/// the password) and the stored hash it was checked against, so a changed
/// password ends it at once; `last_login` is written when verifying.
pub(crate) struct LoginCache {
    key: aws_lc_rs::hmac::Key,
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedLogin>>,
}

impl std::fmt::Debug for LoginCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("LoginCache").field("entries", &n).finish_non_exhaustive()
    }
}

struct CachedLogin {
    stored_hash: String,
    tag: Vec<u8>,
    until: i64,
}

impl LoginCache {
    /// How long a verified login is trusted again, in seconds.
    pub(crate) const SECS: i64 = 60;

    /// An empty cache with a fresh random key.
    pub(crate) fn new() -> Result<LoginCache, StoreError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = aws_lc_rs::hmac::Key::generate(aws_lc_rs::hmac::HMAC_SHA256, &rng)
            .map_err(|_| StoreError::Password("no randomness for the login cache key".into()))?;
        Ok(LoginCache { key, entries: Default::default() })
    }

    /// Whether `name` logged in with `password` against `stored_hash`
    /// within the last minute.
    pub(crate) fn knows(&self, name: &str, stored_hash: &str, password: &str, now: i64) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(name).is_some_and(|e| {
            e.until > now
                && e.stored_hash == stored_hash
                && aws_lc_rs::hmac::verify(&self.key, password.as_bytes(), &e.tag).is_ok()
        })
    }

    /// Records a verified login.
    pub(crate) fn remember(&self, name: &str, stored_hash: &str, password: &str, now: i64) {
        let tag = aws_lc_rs::hmac::sign(&self.key, password.as_bytes()).as_ref().to_vec();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Expired entries go when the map would otherwise only grow.
        entries.retain(|_, e| e.until > now);
        entries.insert(
            name.to_string(),
            CachedLogin { stored_hash: stored_hash.to_string(), tag, until: now + Self::SECS },
        );
    }
}

#[cfg(test)]
mod login_cache_tests {
    use super::*;

    #[test]
    fn a_cached_login_needs_the_same_password_hash_and_time() {
        let cache = LoginCache::new().expect("key");
        assert!(!cache.knows("ann", "h1", "secret-1", 0));
        cache.remember("ann", "h1", "secret-1", 0);
        assert!(cache.knows("ann", "h1", "secret-1", 59));
        assert!(!cache.knows("ann", "h1", "secret-2", 1), "another password");
        assert!(!cache.knows("ann", "h2", "secret-1", 1), "the password was changed");
        assert!(!cache.knows("bob", "h1", "secret-1", 1), "another user");
        assert!(!cache.knows("ann", "h1", "secret-1", 60), "expired");
    }
}
