//! Usage: `*_usage` (the rolled-up records of an element, connection,
//! topology, account, organization or host) and the quota check before
//! `prepare`, `start` and `upload_grant`.

use accounting::{RecordType, UsageStatistics};

use super::*;
use crate::quota;
use crate::server::accounting::month_of;
use crate::store::UsageClass;

/// The record types a `*_usage` answer lists: ToMaTo's `get_record` types
/// and, ahead of them, the `single` records of the last minutes (so usage
/// shows before the first five minutes close).
const ANSWERED: [RecordType; 6] = RecordType::ALL;

/// ToMaTo's usage answer: records per type, oldest first (empty lists
/// before anything was charged).
fn usage_value(stats: Option<&UsageStatistics>) -> Value {
    let mut answer = Map::new();
    for kind in ANSWERED {
        let records = stats.map(|s| s.query(kind, None, None)).unwrap_or_default();
        answer.insert(kind.name().into(), json!(records));
    }
    Value::Object(answer)
}

impl Cx<'_> {
    async fn usage_of(&self, class: UsageClass, object: &str) -> Outcome {
        let stats = self.b.store.usage(class, object).await.map_err(fail)?;
        Ok(usage_value(stats.as_ref()))
    }

    pub(super) async fn element_usage(&self, id: i64) -> Outcome {
        self.element_checked(id, ComponentOp::ViewUsage).await?;
        self.usage_of(UsageClass::Element, &id.to_string()).await
    }

    pub(super) async fn connection_usage(&self, id: i64) -> Outcome {
        self.connection_checked(id, ComponentOp::ViewUsage).await?;
        self.usage_of(UsageClass::Connection, &id.to_string()).await
    }

    pub(super) async fn topology_usage(&self, id: i64) -> Outcome {
        self.topology(id, TopologyOp::ViewUsage).await?;
        self.usage_of(UsageClass::Topology, &id.to_string()).await
    }

    pub(super) async fn account_usage(&self, name: &str) -> Outcome {
        let me = self.me()?;
        let target = self.b.store.user(name).await.map_err(fail)?;
        check_admin(&subject(me), AdminOp::ViewUserUsage(&subject(&target))).map_err(fail)?;
        self.usage_of(UsageClass::User, name).await
    }

    pub(super) async fn organization_usage(&self, name: &str) -> Outcome {
        let me = self.me()?;
        self.b.store.organization(name).await.map_err(fail)?;
        check_admin(&subject(me), AdminOp::ViewOrganizationUsage(name)).map_err(fail)?;
        self.usage_of(UsageClass::Organization, name).await
    }

    pub(super) async fn host_usage(&self, name: &str) -> Outcome {
        let me = self.me()?;
        let host = self.b.store.host(name).await.map_err(fail)?;
        let site = self.b.store.site(&host.site).await.map_err(fail)?;
        // Who may see a host's users may see what they used on it.
        check_admin(&subject(me), AdminOp::ListHostUsers(&site.organization)).map_err(fail)?;
        self.usage_of(UsageClass::Host, name).await
    }

    /// `user`'s monthly quota and what was used of it this month, as
    /// `account_info` shows it.
    pub(super) async fn quota_with_use(&self, user: &User) -> Outcome {
        let at = now();
        let used = month_of(self.b, &user.name, at).await?;
        let (begin, end) = quota::month_bounds(at);
        Ok(json!({"monthly": user.quota.monthly, "used": used, "month": {"begin": begin, "end": end}}))
    }

    /// Refuses `action` if it is quota-gated and the caller used up a
    /// resource this month.
    pub(super) async fn check_quota(&self, action: &str) -> Result<(), RpcError> {
        if !permissions::QUOTA_GATED_ACTIONS.contains(&action) {
            return Ok(());
        }
        let me = self.me()?;
        let used = month_of(self.b, &me.name, now()).await?;
        quota::check_action(action, &me.quota, &used).map_err(fail)
    }
}
