//! Aggregation on a virtual clock: a day of minute samples, counter resets,
//! weighted averages, retention, ToMaTo's JSON shape, and conservation of
//! CPU time and traffic for random loads.

use accounting::{RecordType, Sample, UsageStatistics};
use proptest::prelude::*;

/// 2026-03-01 00:00:00 UTC.
const MIDNIGHT: i64 = 1_772_323_200;

/// Samples once a minute for `minutes`, the `i`-th ending at
/// `start + 60 (i + 1)`, with counters and levels from `load(i)`.
fn run(start: i64, minutes: i64, mut load: impl FnMut(i64) -> Sample) -> UsageStatistics {
    let mut stats = UsageStatistics::new(start as f64);
    for i in 0..minutes {
        let end = (start + 60 * (i + 1)) as f64;
        stats.record(end - 0.01, end, &load(i));
    }
    stats
}

#[test]
fn a_day_of_minute_samples_fills_every_type_and_keeps_only_the_newest() {
    // Half a CPU second and 1000 bytes per minute, memory 100 or 300.
    let stats = run(MIDNIGHT, 24 * 60 + 5, |i| Sample {
        cputime: 0.5 * i as f64,
        traffic: 1000.0 * i as f64,
        memory: if i % 2 == 0 { 100.0 } else { 300.0 },
        diskspace: 4096.0,
    });
    let singles = stats.query(RecordType::Single, None, None);
    assert_eq!(singles.len(), 15);
    assert!(singles.iter().all(|r| r.measurements == 1 && r.usage.cputime == 0.5 && r.usage.traffic == 1000.0));

    let fives = stats.query(RecordType::FiveMinutes, None, None);
    assert_eq!(fives.len(), 12);
    let last = fives.last().expect("one");
    assert_eq!((last.begin, last.end), ((MIDNIGHT + 86_400) as f64, (MIDNIGHT + 86_700) as f64));
    assert_eq!(last.measurements, 5);
    assert_eq!((last.usage.cputime, last.usage.traffic, last.usage.diskspace), (2.5, 5000.0, 4096.0));

    let hours = stats.query(RecordType::Hour, None, None);
    assert_eq!(hours.len(), 24);
    assert!(hours.iter().all(|h| h.measurements == 60 && h.usage.memory == 200.0), "{hours:?}");
    // The first sample has no difference to take, so the first hour has 59
    // half-seconds; the others 60.
    assert_eq!(hours[0].usage.cputime, 29.5);
    assert!(hours[1..].iter().all(|h| h.usage.cputime == 30.0));

    let days = stats.query(RecordType::Day, None, None);
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].begin, days[0].end, days[0].measurements), (MIDNIGHT as f64, (MIDNIGHT + 86_400) as f64, 1440));
    assert_eq!(days[0].usage.cputime, 0.5 * 1439.0);
    assert_eq!(days[0].usage.traffic, 1000.0 * 1439.0);

    // The month and year closed before the object began are not recorded.
    assert!(stats.query(RecordType::Month, None, None).is_empty());
    assert!(stats.query(RecordType::Year, None, None).is_empty());
}

#[test]
fn samples_chained_by_last_end_fill_every_period() {
    // As the hostmanager samples: each record from the previous one's end.
    // (Records from the object's beginning each time would leave every
    // period after the first five minutes without measurements.)
    let mut stats = UsageStatistics::new(MIDNIGHT as f64);
    for i in 0..3 * 60 {
        let end = (MIDNIGHT + 60 * (i + 1)) as f64;
        let begin = stats.last_end().unwrap_or(stats.begin());
        stats.record(begin, end, &Sample { cputime: i as f64, traffic: 0.0, memory: 8.0, diskspace: 0.0 });
    }
    let singles = stats.query(RecordType::Single, None, None);
    assert!(singles.windows(2).all(|w| w[1].begin == w[0].end), "{singles:?}");
    let hours = stats.query(RecordType::Hour, None, None);
    assert_eq!(hours.len(), 3);
    assert!(hours.iter().all(|h| h.measurements == 60 && h.usage.memory == 8.0), "{hours:?}");
    assert!(stats.query(RecordType::FiveMinutes, None, None).iter().all(|r| r.measurements == 5));
}

#[test]
fn singles_pulled_from_a_host_rebuild_the_host_s_aggregates() {
    // The backend keeps its own statistics from the `single` records it
    // pulls; they must close the same periods as the host's.
    let host = run(MIDNIGHT, 3 * 60 + 7, |i| Sample {
        cputime: 0.25 * i as f64,
        traffic: 64.0 * i as f64,
        memory: (i % 7) as f64 * 10.0,
        diskspace: 1.0,
    });
    let mut pulled = UsageStatistics::new(MIDNIGHT as f64);
    let mut reference = UsageStatistics::new(MIDNIGHT as f64);
    for i in 0..3 * 60 + 7 {
        let end = (MIDNIGHT + 60 * (i + 1)) as f64;
        let sample = Sample {
            cputime: 0.25 * i as f64,
            traffic: 64.0 * i as f64,
            memory: (i % 7) as f64 * 10.0,
            diskspace: 1.0,
        };
        reference.record(end - 0.01, end, &sample);
        let single = reference.query(RecordType::Single, Some(end), None).pop().expect("the new single");
        pulled.add_single(single);
    }
    for kind in RecordType::ALL {
        assert_eq!(pulled.query(kind, None, None), host.query(kind, None, None), "{kind:?}");
    }
    // Aggregates are never taken as singles.
    let hour = host.query(RecordType::Hour, None, None).pop().expect("an hour");
    let before = pulled.clone();
    pulled.add_single(hour);
    assert_eq!(pulled, before);
}

#[test]
fn a_counter_that_goes_down_was_reset_and_counts_from_zero() {
    let counters = [10.0, 15.0, 3.0, 7.0];
    let stats = run(MIDNIGHT, 4, |i| Sample { cputime: counters[i as usize], ..Sample::default() });
    let deltas: Vec<f64> = stats.query(RecordType::Single, None, None).iter().map(|r| r.usage.cputime).collect();
    assert_eq!(deltas, [0.0, 5.0, 3.0, 4.0]);
}

#[test]
fn a_partial_first_period_starts_when_the_object_began() {
    let start = MIDNIGHT + 120;
    let stats = run(start, 4, |_| Sample { memory: 50.0, ..Sample::default() });
    let fives = stats.query(RecordType::FiveMinutes, None, None);
    assert_eq!(fives.len(), 1);
    assert_eq!((fives[0].begin, fives[0].end, fives[0].measurements), (start as f64, (MIDNIGHT + 300) as f64, 3));
    assert_eq!(fives[0].usage.memory, 50.0);
}

#[test]
fn the_month_closes_with_all_its_days_and_the_year_with_all_its_months() {
    // Sample once every 6 hours through February and March 2026: the
    // daily records of March (31 of them) all reach March's record even
    // though only 30 days are kept.
    let feb_first = MIDNIGHT - 28 * 86_400;
    let mut stats = UsageStatistics::new(feb_first as f64);
    let mut t = feb_first;
    let mut cpu = 0.0;
    while t <= MIDNIGHT + 31 * 86_400 + 6 * 3600 {
        t += 6 * 3600;
        cpu += 1.0;
        stats.record(t as f64, t as f64, &Sample { cputime: cpu, ..Sample::default() });
    }
    let months = stats.query(RecordType::Month, None, None);
    let march = months.iter().find(|m| m.begin == MIDNIGHT as f64).expect("March closed");
    assert_eq!(march.measurements, 31 * 4);
    assert_eq!(march.usage.cputime, 31.0 * 4.0);
    assert_eq!(stats.query(RecordType::Day, None, None).len(), 30);
}

#[test]
fn records_serialize_in_tomato_s_shape_and_types_by_name() {
    let stats = run(MIDNIGHT, 1, |_| Sample { memory: 1.5, diskspace: 2.0, ..Sample::default() });
    let record = &stats.query(RecordType::Single, None, None)[0];
    let json = serde_json::to_value(record).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "type": "single", "begin": (MIDNIGHT + 60) as f64 - 0.01, "end": (MIDNIGHT + 60) as f64,
            "measurements": 1, "usage": {"cputime": 0.0, "memory": 1.5, "diskspace": 2.0, "traffic": 0.0}
        })
    );
    assert_eq!(RecordType::from_name("5minutes"), Ok(RecordType::FiveMinutes));
    assert_eq!(
        RecordType::from_name("week"),
        Err("`type`: unknown record type `week`; allowed: single, 5minutes, hour, day, month, year".to_string())
    );
}

#[test]
fn query_selects_by_end_after_and_begin_before() {
    let stats = run(MIDNIGHT, 10, |_| Sample::default());
    let after = (MIDNIGHT + 300) as f64;
    let got = stats.query(RecordType::Single, Some(after), Some(after + 60.0));
    assert_eq!(got.iter().map(|r| r.end as i64 - MIDNIGHT).collect::<Vec<_>>(), [300, 360]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the load, every closed hour holds exactly the CPU time and
    /// traffic of the minutes in it, and the measurement-weighted memory.
    #[test]
    fn hours_conserve_cpu_time_traffic_and_mean_memory(
        steps in prop::collection::vec((0u32..1000, 0u32..100_000, 0u32..1_000_000), 180..300),
    ) {
        let (mut cpu, mut traffic) = (0.0, 0.0);
        let mut per_minute = Vec::new();
        let stats = run(MIDNIGHT, steps.len() as i64, |i| {
            let (c, t, m) = steps[i as usize];
            cpu += f64::from(c) / 100.0;
            traffic += f64::from(t);
            per_minute.push((if i == 0 { 0.0 } else { f64::from(c) / 100.0 }, if i == 0 { 0.0 } else { f64::from(t) }, f64::from(m)));
            Sample { cputime: cpu, traffic, memory: f64::from(m), diskspace: 0.0 }
        });
        for hour in stats.query(RecordType::Hour, None, None) {
            let first = ((hour.begin as i64 - MIDNIGHT) / 60) as usize;
            let minutes = &per_minute[first..first + 60];
            let cpu: f64 = minutes.iter().map(|m| m.0).sum();
            let traffic: f64 = minutes.iter().map(|m| m.1).sum();
            let memory: f64 = minutes.iter().map(|m| m.2).sum::<f64>() / 60.0;
            prop_assert_eq!(hour.measurements, 60);
            prop_assert!((hour.usage.cputime - cpu).abs() < 1e-6);
            prop_assert!((hour.usage.traffic - traffic).abs() < 1e-3);
            prop_assert!((hour.usage.memory - memory).abs() < 1e-6);
        }
    }
}
