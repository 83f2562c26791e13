//! The last whole aggregation period before an instant, in UTC.

use time::{Date, Month, OffsetDateTime, Time};

use crate::RecordType;

/// Seconds since the epoch at midnight UTC of `date`.
fn midnight(date: Date) -> i64 {
    date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp()
}

/// The last period of type `kind` that ended at or before `now` (seconds
/// since the epoch): `(begin, end)`, both aligned to the period's UTC
/// boundary. `Single` has no period and gives `(now, now)`.
pub fn last_period(kind: RecordType, now: i64) -> (i64, i64) {
    let step = |secs: i64| {
        let end = now.div_euclid(secs) * secs;
        (end - secs, end)
    };
    match kind {
        RecordType::Single => (now, now),
        RecordType::FiveMinutes => step(300),
        RecordType::Hour => step(3600),
        RecordType::Day => step(86_400),
        RecordType::Month | RecordType::Year => {
            let today = OffsetDateTime::from_unix_timestamp(now).map_or(Date::MIN, OffsetDateTime::date);
            let (year, month) = (today.year(), today.month());
            let first = |y: i32, m: Month| Date::from_calendar_date(y, m, 1).map_or(i64::MIN, midnight);
            if kind == RecordType::Month {
                let (prev_year, prev_month) =
                    if month == Month::January { (year - 1, Month::December) } else { (year, month.previous()) };
                (first(prev_year, prev_month), first(year, month))
            } else {
                (first(year - 1, Month::January), first(year, Month::January))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-01 00:02:30 UTC.
    const MARCH_FIRST: i64 = 1_772_323_350;

    #[test]
    fn periods_end_at_the_last_boundary() {
        assert_eq!(last_period(RecordType::FiveMinutes, MARCH_FIRST), (MARCH_FIRST - 150 - 300, MARCH_FIRST - 150));
        assert_eq!(last_period(RecordType::Hour, MARCH_FIRST), (MARCH_FIRST - 150 - 3600, MARCH_FIRST - 150));
        assert_eq!(last_period(RecordType::Day, MARCH_FIRST), (MARCH_FIRST - 150 - 86_400, MARCH_FIRST - 150));
        // February 2026 has 28 days.
        assert_eq!(last_period(RecordType::Month, MARCH_FIRST), (MARCH_FIRST - 150 - 28 * 86_400, MARCH_FIRST - 150));
        let (begin, end) = last_period(RecordType::Year, MARCH_FIRST);
        assert_eq!((end - begin) / 86_400, 365);
        assert_eq!(end, 1_767_225_600, "2026-01-01");
    }

    #[test]
    fn january_closes_december_of_the_year_before() {
        let jan_15_2026 = 1_768_435_200;
        assert_eq!(last_period(RecordType::Month, jan_15_2026), (1_764_547_200, 1_767_225_600));
    }

    #[test]
    fn an_instant_on_a_boundary_closes_the_period_it_ends() {
        assert_eq!(last_period(RecordType::FiveMinutes, 600), (300, 600));
    }
}
