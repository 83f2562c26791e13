//! Accounting roll-up: the `single` usage records pulled from hosts, charged
//! up ToMaTo's chain element/connection → topology → users → organization,
//! and to the host they ran on.
//!
//! A topology's record for a sample is the sum of its components' records
//! with the same time frame (memory and disk space add up: the topology
//! holds all of them at once). Each of the topology's users is charged an
//! equal share of it, as ToMaTo does, and an organization the sum of its
//! users' shares. What is charged is a `single` record per object; the
//! `accounting` crate builds the five-minute to year records from them.
//!
//! Architecture invariant: plain data in, plain data out; the pull from the
//! hosts and the store's transaction are the server's.

use std::collections::BTreeMap;

use accounting::{RecordType, Usage, UsageRecord};

use crate::store::UsageClass;

/// Records pulled from a host for one element or connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulled {
    /// `Element` or `Connection`.
    pub class: UsageClass,
    /// Its id in the backend.
    pub id: i64,
    /// Its topology.
    pub topology: i64,
    /// The host it runs on.
    pub host: String,
    /// The host's `single` records (others are ignored).
    pub records: Vec<UsageRecord>,
}

/// One member of a topology, as charged: the user and their organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charged {
    /// The user's name.
    pub user: String,
    /// The user's organization.
    pub organization: String,
}

/// The `single` records to add, per object: `(class, object)` to records in
/// time order.
pub type Charges = BTreeMap<(UsageClass, String), Vec<UsageRecord>>;

/// A time frame as a map key (times are positive, so the bit patterns
/// order like the numbers).
type Frame = (u64, u64);

fn frame(r: &UsageRecord) -> Frame {
    (r.begin.to_bits(), r.end.to_bits())
}

/// Charges `pulled` to every object up the chain; `members` are each
/// topology's users (a topology without members charges nobody above it).
pub fn roll_up(pulled: &[Pulled], members: &BTreeMap<i64, Vec<Charged>>) -> Charges {
    let mut sums: BTreeMap<(UsageClass, String), BTreeMap<Frame, UsageRecord>> = BTreeMap::new();
    let mut charge = |class: UsageClass, object: String, r: &UsageRecord, share: f64| {
        let slot = sums.entry((class, object)).or_default().entry(frame(r)).or_insert_with(|| UsageRecord {
            kind: RecordType::Single,
            begin: r.begin,
            end: r.end,
            measurements: 1,
            usage: Usage::default(),
        });
        slot.usage.cputime += r.usage.cputime * share;
        slot.usage.memory += r.usage.memory * share;
        slot.usage.diskspace += r.usage.diskspace * share;
        slot.usage.traffic += r.usage.traffic * share;
    };
    for p in pulled {
        let users = members.get(&p.topology).map(Vec::as_slice).unwrap_or_default();
        for r in p.records.iter().filter(|r| r.kind == RecordType::Single) {
            charge(p.class, p.id.to_string(), r, 1.0);
            charge(UsageClass::Topology, p.topology.to_string(), r, 1.0);
            charge(UsageClass::Host, p.host.clone(), r, 1.0);
            let share = 1.0 / users.len().max(1) as f64;
            for m in users {
                charge(UsageClass::User, m.user.clone(), r, share);
                charge(UsageClass::Organization, m.organization.clone(), r, share);
            }
        }
    }
    sums.into_iter()
        .map(|(key, by_frame)| {
            let mut records: Vec<UsageRecord> = by_frame.into_values().collect();
            records.sort_by(|a, b| a.end.total_cmp(&b.end).then(a.begin.total_cmp(&b.begin)));
            (key, records)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn single(begin: f64, end: f64, cputime: f64, memory: f64) -> UsageRecord {
        UsageRecord {
            kind: RecordType::Single,
            begin,
            end,
            measurements: 1,
            usage: Usage { cputime, memory, diskspace: 10.0, traffic: 100.0 },
        }
    }

    fn member(user: &str, organization: &str) -> Charged {
        Charged { user: user.into(), organization: organization.into() }
    }

    fn key(class: UsageClass, object: &str) -> (UsageClass, String) {
        (class, object.to_string())
    }

    #[test]
    fn a_topology_sums_its_components_and_its_users_share_it() {
        let pulled = vec![
            Pulled {
                class: UsageClass::Element,
                id: 7,
                topology: 1,
                host: "h1".into(),
                records: vec![single(0.0, 60.0, 1.0, 100.0), single(60.0, 120.0, 3.0, 300.0)],
            },
            Pulled {
                class: UsageClass::Connection,
                id: 9,
                topology: 1,
                host: "h1".into(),
                records: vec![single(0.0, 60.0, 0.0, 0.0)],
            },
        ];
        let members = BTreeMap::from([(1, vec![member("alice", "lab"), member("bob", "lab")])]);
        let charges = roll_up(&pulled, &members);

        let element = &charges[&key(UsageClass::Element, "7")];
        assert_eq!(element.len(), 2);
        assert_eq!(element[1].usage.cputime, 3.0);

        let topology = &charges[&key(UsageClass::Topology, "1")];
        assert_eq!(topology.len(), 2, "one record per time frame");
        assert_eq!((topology[0].usage.memory, topology[0].usage.traffic), (100.0, 200.0));
        assert_eq!((topology[0].usage.diskspace, topology[0].measurements), (20.0, 1));

        let alice = &charges[&key(UsageClass::User, "alice")];
        assert_eq!((alice[0].usage.cputime, alice[1].usage.cputime), (0.5, 1.5));
        assert_eq!(alice[0].usage.memory, 50.0);
        // Both users are in `lab`: the organization carries the whole.
        let lab = &charges[&key(UsageClass::Organization, "lab")];
        assert_eq!((lab[0].usage.memory, lab[1].usage.cputime), (100.0, 3.0));
        assert_eq!(charges[&key(UsageClass::Host, "h1")][0].usage.traffic, 200.0);
    }

    #[test]
    fn aggregate_records_are_not_charged_again() {
        let mut hour = single(0.0, 3600.0, 50.0, 1.0);
        hour.kind = RecordType::Hour;
        let pulled =
            vec![Pulled { class: UsageClass::Element, id: 1, topology: 1, host: "h".into(), records: vec![hour] }];
        assert!(roll_up(&pulled, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_topology_without_members_charges_no_user() {
        let pulled = vec![Pulled {
            class: UsageClass::Element,
            id: 1,
            topology: 4,
            host: "h".into(),
            records: vec![single(0.0, 60.0, 2.0, 5.0)],
        }];
        let charges = roll_up(&pulled, &BTreeMap::new());
        assert!(charges.keys().all(|(c, _)| !matches!(c, UsageClass::User | UsageClass::Organization)));
        assert_eq!(charges[&key(UsageClass::Topology, "4")][0].usage.cputime, 2.0);
    }

    proptest! {
        /// CPU time and traffic are conserved at every level: the users'
        /// shares add up to the topology's, and the organizations' to the
        /// users'.
        #[test]
        fn shares_add_up(
            cpu in proptest::collection::vec(0.0f64..100.0, 1..20),
            users in 1usize..6,
            orgs in 1usize..3,
        ) {
            let records: Vec<UsageRecord> =
                cpu.iter().enumerate().map(|(i, c)| single(60.0 * i as f64, 60.0 * (i + 1) as f64, *c, 1.0)).collect();
            let pulled = vec![Pulled { class: UsageClass::Element, id: 1, topology: 1, host: "h".into(), records }];
            let ms: Vec<Charged> = (0..users).map(|u| member(&format!("u{u}"), &format!("o{}", u % orgs))).collect();
            let charges = roll_up(&pulled, &BTreeMap::from([(1, ms)]));
            let total = |class: UsageClass| -> f64 {
                charges.iter().filter(|((c, _), _)| *c == class).flat_map(|(_, rs)| rs).map(|r| r.usage.cputime).sum()
            };
            let expected: f64 = cpu.iter().sum();
            for class in [UsageClass::Topology, UsageClass::User, UsageClass::Organization, UsageClass::Host] {
                prop_assert!((total(class) - expected).abs() < 1e-6 * expected.max(1.0), "{class:?}");
            }
        }
    }
}
