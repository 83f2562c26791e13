//! Usage records of one element or connection and their aggregation.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{RecordType, last_period};

/// Resources used over a record's time frame.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// CPU seconds (per core, so it can exceed wall time).
    pub cputime: f64,
    /// Memory in bytes (an average over the frame).
    pub memory: f64,
    /// Disk space in bytes (an average over the frame).
    pub diskspace: f64,
    /// Traffic in bytes.
    pub traffic: f64,
}

/// One usage record, in ToMaTo's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The time frame it covers.
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// Start, in seconds since the epoch.
    pub begin: f64,
    /// End, in seconds since the epoch.
    pub end: f64,
    /// `single` records behind this one (1 for a `single`).
    pub measurements: u64,
    /// What was used.
    pub usage: Usage,
}

/// One reading of an object's resources.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// CPU seconds used since the object began (an ever-growing counter).
    pub cputime: f64,
    /// Bytes sent and received since the object began (a counter).
    pub traffic: f64,
    /// Memory in use now, in bytes.
    pub memory: f64,
    /// Disk space in use now, in bytes.
    pub diskspace: f64,
}

/// Sums CPU time and traffic and averages memory and disk space weighted by
/// measurements; returns the usage and the total measurements.
pub fn combine<'a>(records: impl IntoIterator<Item = &'a UsageRecord>) -> (Usage, u64) {
    let mut total = Usage::default();
    let mut measurements = 0;
    for r in records {
        let weight = r.measurements as f64;
        total.cputime += r.usage.cputime;
        total.traffic += r.usage.traffic;
        total.memory += r.usage.memory * weight;
        total.diskspace += r.usage.diskspace * weight;
        measurements += r.measurements;
    }
    if measurements == 0 {
        return (Usage::default(), 0);
    }
    total.memory /= measurements as f64;
    total.diskspace /= measurements as f64;
    (total, measurements)
}

/// The records of one object, by type; see the crate documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageStatistics {
    /// When the object began, in seconds since the epoch; no record starts
    /// before it.
    begin: f64,
    /// Records per type, oldest first.
    records: [VecDeque<UsageRecord>; 6],
    /// The counters of the previous sample.
    last_cputime: Option<f64>,
    last_traffic: Option<f64>,
}

/// Change of an ever-growing counter; a smaller value means it was reset and
/// counts from zero.
fn counter_delta(last: &mut Option<f64>, value: f64) -> f64 {
    let delta = match *last {
        None => 0.0,
        Some(before) if value < before => value,
        Some(before) => value - before,
    };
    *last = Some(value);
    delta
}

impl UsageStatistics {
    /// No records yet, for an object that began at `begin`.
    pub fn new(begin: f64) -> UsageStatistics {
        UsageStatistics { begin, records: Default::default(), last_cputime: None, last_traffic: None }
    }

    /// When the object began.
    pub fn begin(&self) -> f64 {
        self.begin
    }

    /// The end of the newest `single` record: where the next sample's
    /// time frame begins.
    pub fn last_end(&self) -> Option<f64> {
        self.records[RecordType::Single.index()].back().map(|r| r.end)
    }

    /// Adds the `single` record of a sample taken from `begin` to `end`,
    /// closes the periods that ended by `end`, and drops the oldest records
    /// beyond each type's limit. The first sample has no CPU time or traffic
    /// (there is nothing to take a difference from).
    pub fn record(&mut self, begin: f64, end: f64, sample: &Sample) {
        let usage = Usage {
            cputime: counter_delta(&mut self.last_cputime, sample.cputime),
            traffic: counter_delta(&mut self.last_traffic, sample.traffic),
            memory: sample.memory,
            diskspace: sample.diskspace,
        };
        self.add_single(UsageRecord { kind: RecordType::Single, begin, end, measurements: 1, usage });
    }

    /// Adds a `single` record whose counters are already differences (one
    /// pulled from a host, or a share of one rolled up to a topology, user
    /// or organization), closes the periods that ended by its end and drops
    /// the oldest records beyond each type's limit. Records of other types
    /// are ignored: periods are only ever built here.
    pub fn add_single(&mut self, record: UsageRecord) {
        if record.kind != RecordType::Single {
            return;
        }
        let end = record.end;
        self.push(record);
        self.close_periods(end.floor() as i64);
        for kind in RecordType::ALL {
            let (records, keep) = (&mut self.records[kind.index()], kind.keep());
            while records.len() > keep {
                records.pop_front();
            }
        }
    }

    /// Builds each period record that ended by `now` and is not there yet,
    /// from the records of the type below; stops at the first type whose
    /// last period is already recorded (the coarser ones then are too).
    fn close_periods(&mut self, now: i64) {
        for pair in RecordType::ALL.windows(2) {
            let (below, kind) = (pair[0], pair[1]);
            let (begin, end) = last_period(kind, now);
            let (begin, end) = ((begin as f64).max(self.begin), end as f64);
            // A period that ended before the object began has nothing to
            // record (ToMaTo writes an empty, zero-length record here).
            if self.begin >= end {
                break;
            }
            if self.records[kind.index()].iter().any(|r| r.begin == begin && r.end == end) {
                break;
            }
            let parts = self.records[below.index()].iter().filter(|r| r.begin >= begin && r.end <= end);
            let (usage, measurements) = combine(parts);
            self.push(UsageRecord { kind, begin, end, measurements, usage });
        }
    }

    fn push(&mut self, record: UsageRecord) {
        self.records[record.kind.index()].push_back(record);
    }

    /// Records of type `kind`, oldest first, that end at or after `after`
    /// and begin at or before `before` (ToMaTo's `info(type, after, before)`).
    pub fn query(&self, kind: RecordType, after: Option<f64>, before: Option<f64>) -> Vec<UsageRecord> {
        self.records[kind.index()]
            .iter()
            .filter(|r| after.is_none_or(|a| r.end >= a) && before.is_none_or(|b| r.begin <= b))
            .cloned()
            .collect()
    }
}
