//! Monthly quotas per user, checked against accounted usage.
//!
//! A quota gives, per calendar month (UTC), a budget of CPU time (CPU
//! seconds) and traffic (bytes), and a monthly *average* of memory and disk
//! space (bytes): running 2 GB for half of a 30-day month uses a 1 GB
//! average. ToMaTo 4 stored such quotas but never enforced them (nothing
//! set `over_quota`); here [`check_action`] refuses `prepare`, `start` and
//! `upload_grant` while any resource is at or above its quota, with an
//! error that names the resource, the usage and the quota.
//!
//! Usage comes from the accounting records ([`accounting::UsageStatistics`])
//! of whatever the user is charged for; [`month_usage`] reads the current
//! month out of one object's records and [`add_share`] adds a share of it
//! to a total (ToMaTo divides a topology's usage equally among its users).

use accounting::{RecordType, Usage, UsageStatistics};
use time::{Date, Month, OffsetDateTime, Time};

use crate::permissions::QUOTA_GATED_ACTIONS;

/// One of the four accounted resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// CPU seconds in the month.
    Cputime,
    /// Average bytes of memory over the month.
    Memory,
    /// Average bytes of disk space over the month.
    Diskspace,
    /// Bytes sent and received in the month.
    Traffic,
}

impl Resource {
    /// Every resource, in ToMaTo's order.
    pub const ALL: [Resource; 4] = [Resource::Cputime, Resource::Memory, Resource::Diskspace, Resource::Traffic];

    /// ToMaTo's name.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cputime => "cputime",
            Resource::Memory => "memory",
            Resource::Diskspace => "diskspace",
            Resource::Traffic => "traffic",
        }
    }

    /// The resource's value in `usage`.
    pub fn of(self, usage: &Usage) -> f64 {
        match self {
            Resource::Cputime => usage.cputime,
            Resource::Memory => usage.memory,
            Resource::Diskspace => usage.diskspace,
            Resource::Traffic => usage.traffic,
        }
    }

    /// A value of this resource for people: `1.50 GB (monthly average)`.
    pub fn format(self, value: f64) -> String {
        match self {
            Resource::Cputime => format!("{value:.0} CPU seconds"),
            Resource::Memory | Resource::Diskspace => format!("{} (monthly average)", bytes(value)),
            Resource::Traffic => bytes(value),
        }
    }
}

/// Bytes for people, in powers of 1000: `1.50 GB`.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = value;
    let mut unit = 0;
    while v.abs() >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{v:.0} B") } else { format!("{v:.2} {}", UNITS[unit]) }
}

/// A user's monthly quota.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    /// What may be used per month (memory and disk space as averages).
    pub monthly: Usage,
}

impl Quota {
    /// ToMaTo's default quota: 12,960,000 CPU seconds (5 cores all month),
    /// 1 GB memory, 100 GB disk space and 1.62 TB traffic (5 Mbit/s).
    pub fn tomato_default() -> Quota {
        Quota { monthly: Usage { cputime: 12_960_000.0, memory: 1e9, diskspace: 1e11, traffic: 1.62e12 } }
    }

    /// Checks the values: each finite and not negative.
    pub fn validate(&self) -> Result<(), QuotaError> {
        for r in Resource::ALL {
            let v = r.of(&self.monthly);
            if !v.is_finite() || v < 0.0 {
                return Err(QuotaError::InvalidValue { resource: r, value: v });
            }
        }
        Ok(())
    }

    /// The first resource whose `used` value reaches its quota, as an error.
    pub fn check(&self, used: &Usage) -> Result<(), QuotaError> {
        for r in Resource::ALL {
            let (u, q) = (r.of(used), r.of(&self.monthly));
            if u >= q {
                return Err(QuotaError::Exceeded { resource: r, used: u, quota: q });
            }
        }
        Ok(())
    }
}

/// The calendar month (UTC) around `now`: its first second and the first
/// second of the next month.
pub fn month_bounds(now: i64) -> (i64, i64) {
    let today = OffsetDateTime::from_unix_timestamp(now).map_or(Date::MIN, OffsetDateTime::date);
    let first = |year: i32, month: Month| {
        Date::from_calendar_date(year, month, 1)
            .map_or(now, |d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
    };
    let (year, month) = (today.year(), today.month());
    let next = if month == Month::December { first(year + 1, Month::January) } else { first(year, month.next()) };
    (first(year, month), next)
}

/// The usage of the month around `now` in one object's records: CPU time
/// and traffic summed, memory and disk space as byte-seconds divided by the
/// month's length (the average over the whole month).
///
/// The coarsest records are used first: closed days of this month, then
/// closed hours after the last day, five-minute records after the last
/// hour, and single samples after those, so nothing counts twice. (The
/// record limits, 30 days, 24 hours, 12 five-minute records and 15 samples,
/// cover a month this way.)
pub fn month_usage(stats: &UsageStatistics, now: i64) -> Usage {
    let (begin, end) = month_bounds(now);
    let month_secs = (end - begin) as f64;
    let mut covered = begin as f64;
    let mut total = Usage::default();
    for kind in [RecordType::Day, RecordType::Hour, RecordType::FiveMinutes, RecordType::Single] {
        let mut last_end = covered;
        for r in stats.query(kind, None, None) {
            if r.begin < covered || r.end > now as f64 || r.measurements == 0 && kind != RecordType::Single {
                continue;
            }
            let secs = r.end - r.begin;
            total.cputime += r.usage.cputime;
            total.traffic += r.usage.traffic;
            total.memory += r.usage.memory * secs / month_secs;
            total.diskspace += r.usage.diskspace * secs / month_secs;
            last_end = last_end.max(r.end);
        }
        covered = last_end;
    }
    total
}

/// Adds `share` (0 to 1) of `usage` to `total`.
pub fn add_share(total: &mut Usage, usage: &Usage, share: f64) {
    total.cputime += usage.cputime * share;
    total.memory += usage.memory * share;
    total.diskspace += usage.diskspace * share;
    total.traffic += usage.traffic * share;
}

/// Refuses `action` if it is one of `prepare`, `start` and `upload_grant`
/// and `used` reaches `quota` in any resource; other actions pass.
pub fn check_action(action: &str, quota: &Quota, used: &Usage) -> Result<(), QuotaError> {
    if !QUOTA_GATED_ACTIONS.contains(&action) {
        return Ok(());
    }
    quota.check(used).map_err(|e| match e {
        QuotaError::Exceeded { resource, used, quota } => {
            QuotaError::Refused { action: action.to_string(), resource, used, quota }
        }
        other => other,
    })
}

/// Why a quota check failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    /// A resource reached its quota.
    #[error("over quota: {resource} used {} of a monthly quota of {}", resource.format(*used), resource.format(*quota), resource = resource.name())]
    Exceeded {
        /// The resource.
        resource: Resource,
        /// This month's usage.
        used: f64,
        /// The monthly quota.
        quota: f64,
    },
    /// An action refused because a resource reached its quota.
    #[error("{action} is refused: over quota: {resource} used {} of a monthly quota of {}; it is allowed again next month or with a higher quota", resource.format(*used), resource.format(*quota), resource = resource.name())]
    Refused {
        /// The refused action.
        action: String,
        /// The resource.
        resource: Resource,
        /// This month's usage.
        used: f64,
        /// The monthly quota.
        quota: f64,
    },
    /// A quota value is not a number of at least 0.
    #[error("`quota.monthly.{}`: {value} is not allowed; allowed: a finite number >= 0", resource.name())]
    InvalidValue {
        /// The resource.
        resource: Resource,
        /// The value given.
        value: f64,
    },
}

impl QuotaError {
    /// ToMaTo's error code: `denied` for a refusal, `invalid_value` for a
    /// bad quota.
    pub fn code(&self) -> &'static str {
        match self {
            QuotaError::InvalidValue { .. } => "invalid_value",
            _ => "denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::Sample;
    use proptest::prelude::*;

    /// 2026-03-01 00:00:00 UTC; March has 31 days.
    const MARCH: i64 = 1_772_323_200;
    const MARCH_SECS: f64 = 31.0 * 86_400.0;

    fn usage(cputime: f64, memory: f64, diskspace: f64, traffic: f64) -> Usage {
        Usage { cputime, memory, diskspace, traffic }
    }

    /// Samples every 60 s from `from` to `to` with constant memory and disk
    /// and counters growing by `cpu` and `traffic` per sample.
    fn sampled(from: i64, to: i64, memory: f64, cpu: f64, traffic: f64) -> UsageStatistics {
        let mut s = UsageStatistics::new(from as f64);
        let mut n = 0.0;
        let mut t = from;
        while t + 60 <= to {
            s.record(
                t as f64,
                (t + 60) as f64,
                &Sample { cputime: cpu * n, traffic: traffic * n, memory, diskspace: 2.0 * memory },
            );
            n += 1.0;
            t += 60;
        }
        s
    }

    #[test]
    fn month_bounds_are_calendar_months() {
        assert_eq!(month_bounds(MARCH), (MARCH, MARCH + 31 * 86_400));
        assert_eq!(month_bounds(MARCH - 1), (MARCH - 28 * 86_400, MARCH));
        let (dec, jan) = month_bounds(1_767_225_599); // 2025-12-31 23:59:59
        assert_eq!((jan - dec) / 86_400, 31);
        assert_eq!(jan, 1_767_225_600);
    }

    #[test]
    fn month_usage_counts_each_minute_once() {
        // Three days and a bit of this month; constant 1 GB memory.
        let end = MARCH + 3 * 86_400 + 3 * 3600 + 7 * 300 + 180;
        let s = sampled(MARCH, end, 1e9, 2.0, 1000.0);
        let u = month_usage(&s, end);
        let minutes = ((end - MARCH) / 60) as f64;
        // The first sample has no counter difference.
        assert!((u.cputime - 2.0 * (minutes - 1.0)).abs() < 1e-6, "{u:?}");
        assert!((u.traffic - 1000.0 * (minutes - 1.0)).abs() < 1e-3, "{u:?}");
        let avg = 1e9 * (end - MARCH) as f64 / MARCH_SECS;
        assert!((u.memory - avg).abs() < 1.0, "{} vs {avg}", u.memory);
        assert!((u.diskspace - 2.0 * avg).abs() < 2.0);
    }

    #[test]
    fn last_months_usage_does_not_count() {
        let s = sampled(MARCH - 86_400, MARCH + 600, 1e9, 1.0, 0.0);
        let u = month_usage(&s, MARCH + 600);
        assert!((u.cputime - 10.0).abs() < 1e-9, "{u:?}");
        assert!((u.memory - 1e9 * 600.0 / MARCH_SECS).abs() < 1.0);
    }

    #[test]
    fn over_quota_refuses_prepare_start_and_upload_grant_naming_the_resource() {
        let q = Quota { monthly: usage(1000.0, 1e9, 1e11, 1e12) };
        let used = usage(10.0, 1.5e9, 0.0, 0.0);
        for a in ["prepare", "start", "upload_grant"] {
            let e = check_action(a, &q, &used).unwrap_err();
            assert_eq!(e.code(), "denied");
            assert_eq!(
                e.to_string(),
                format!(
                    "{a} is refused: over quota: memory used 1.50 GB (monthly average) of a monthly quota of 1.00 GB (monthly average); it is allowed again next month or with a higher quota"
                )
            );
        }
        for a in ["stop", "destroy", "(remove)", "download_grant", "renew"] {
            assert_eq!(check_action(a, &q, &used), Ok(()), "{a}");
        }
        assert_eq!(check_action("start", &q, &usage(999.0, 0.0, 0.0, 0.0)), Ok(()));
        let e = check_action("start", &q, &usage(1000.0, 0.0, 0.0, 0.0)).unwrap_err();
        assert!(e.to_string().contains("cputime used 1000 CPU seconds of a monthly quota of 1000 CPU seconds"), "{e}");
        let e = q.check(&usage(0.0, 0.0, 0.0, 2e12)).unwrap_err();
        assert_eq!(e.to_string(), "over quota: traffic used 2.00 TB of a monthly quota of 1.00 TB");
    }

    #[test]
    fn a_real_month_of_samples_goes_over_a_small_memory_quota() {
        // 512 MB for 20 days of a 31-day month averages 330 MB.
        let end = MARCH + 20 * 86_400;
        let s = sampled(end - 86_400, end, 512e6, 0.0, 0.0);
        let mut total = Usage::default();
        add_share(&mut total, &month_usage(&s, end), 1.0);
        let q = Quota { monthly: usage(1e9, 10e6, 1e12, 1e12) };
        let e = check_action("start", &q, &total).unwrap_err();
        assert!(e.to_string().contains("memory used 16.52 MB (monthly average)"), "{e}");
        let q = Quota { monthly: usage(1e9, 17e6, 1e12, 1e12) };
        assert_eq!(check_action("start", &q, &total), Ok(()));
    }

    #[test]
    fn bad_quota_values_are_named() {
        let q = Quota { monthly: usage(1.0, -1.0, 0.0, 0.0) };
        assert_eq!(
            q.validate().unwrap_err().to_string(),
            "`quota.monthly.memory`: -1 is not allowed; allowed: a finite number >= 0"
        );
        assert!(Quota { monthly: usage(f64::NAN, 0.0, 0.0, 0.0) }.validate().is_err());
        assert_eq!(Quota::tomato_default().validate(), Ok(()));
    }

    proptest! {
        /// Sharing usage among n users and adding the shares gives the whole.
        #[test]
        fn shares_add_up(c in 0.0f64..1e9, m in 0.0f64..1e12, n in 1usize..8) {
            let u = usage(c, m, m, c);
            let mut total = Usage::default();
            for _ in 0..n {
                add_share(&mut total, &u, 1.0 / n as f64);
            }
            prop_assert!((total.cputime - c).abs() <= 1e-6 * c.max(1.0));
            prop_assert!((total.memory - m).abs() <= 1e-6 * m.max(1.0));
        }

        /// The month's usage never exceeds what was sampled, and constant
        /// memory averages to memory × elapsed / month.
        #[test]
        fn month_usage_matches_constant_load(minutes in 2i64..3000, memory in 1.0f64..1e10) {
            let end = MARCH + 60 * minutes;
            let s = sampled(MARCH, end, memory, 1.0, 0.0);
            let u = month_usage(&s, end);
            prop_assert!((u.cputime - (minutes - 1) as f64).abs() < 1e-6, "{:?}", u);
            let expect = memory * (60 * minutes) as f64 / MARCH_SECS;
            prop_assert!((u.memory - expect).abs() <= expect * 1e-9 + 1e-6, "{} vs {}", u.memory, expect);
        }
    }
}
