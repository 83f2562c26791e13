//! Usage accounting of elements and connections, the way ToMaTo keeps it.
//!
//! A hostmanager samples every element and connection once a minute: CPU
//! time and traffic as the kernel's ever-growing counters, memory and disk
//! space as levels. [`UsageStatistics::record`] turns a sample into a
//! `single` [`UsageRecord`] (counters become deltas; a counter that went
//! down was reset, and counts from zero), then closes every aggregate
//! period that has ended: the last whole five minutes, hour, day, month
//! and year in UTC, each built from the records of the type below it.
//! CPU time and traffic are summed, memory and disk space averaged weighted
//! by the number of measurements, and `measurements` counts the `single`
//! records behind a record. Each type keeps only its newest records
//! ([`RecordType::keep`]: 15, 12, 24, 30, 12, 5).
//!
//! Everything here is plain data and functions: the caller passes the
//! times in (seconds since the epoch), so tests run on any clock.
//!
//! Architecture invariant: no I/O, no clock; what is sampled and where
//! records are stored is the caller's business.

mod period;
mod statistics;

pub use period::last_period;
pub use statistics::{Sample, Usage, UsageRecord, UsageStatistics, combine};

use serde::{Deserialize, Serialize};

/// The time frame a record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordType {
    /// One measurement.
    #[serde(rename = "single")]
    Single,
    /// Five minutes, aligned to multiples of five minutes.
    #[serde(rename = "5minutes")]
    FiveMinutes,
    /// One hour.
    #[serde(rename = "hour")]
    Hour,
    /// One day (UTC).
    #[serde(rename = "day")]
    Day,
    /// One calendar month (UTC).
    #[serde(rename = "month")]
    Month,
    /// One calendar year (UTC).
    #[serde(rename = "year")]
    Year,
}

impl RecordType {
    /// All types, finest first; each aggregates the one before it.
    pub const ALL: [RecordType; 6] = [
        RecordType::Single,
        RecordType::FiveMinutes,
        RecordType::Hour,
        RecordType::Day,
        RecordType::Month,
        RecordType::Year,
    ];

    /// ToMaTo's name (`single`, `5minutes`, `hour`, `day`, `month`, `year`).
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Single => "single",
            RecordType::FiveMinutes => "5minutes",
            RecordType::Hour => "hour",
            RecordType::Day => "day",
            RecordType::Month => "month",
            RecordType::Year => "year",
        }
    }

    /// The type named `name`, or an error naming the allowed names.
    pub fn from_name(name: &str) -> Result<RecordType, String> {
        RecordType::ALL.into_iter().find(|t| t.name() == name).ok_or_else(|| {
            let names: Vec<&str> = RecordType::ALL.iter().map(|t| t.name()).collect();
            format!("`type`: unknown record type `{name}`; allowed: {}", names.join(", "))
        })
    }

    /// How many records of this type are kept (ToMaTo's hostmanager).
    pub fn keep(self) -> usize {
        match self {
            RecordType::Single => 15,
            RecordType::FiveMinutes => 12,
            RecordType::Hour => 24,
            RecordType::Day => 30,
            RecordType::Month => 12,
            RecordType::Year => 5,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}
