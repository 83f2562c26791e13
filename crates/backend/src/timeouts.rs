//! Topology timeouts: when a topology expires, what happens then, and how
//! `renew` moves the deadline.
//!
//! A new topology expires [`TimeoutConfig::initial`] after its creation,
//! without a warning for that first deadline. Later deadlines are set by
//! `renew(timeout)` to now + `timeout` seconds, at most
//! [`TimeoutConfig::max`] (global admins may go further), and by a role
//! that may renew (`manager`). [`TimeoutConfig::warning`] before the
//! deadline the users are warned (once); at the deadline the topology is
//! stopped, [`TimeoutConfig::destroy_after`] later destroyed and
//! [`TimeoutConfig::remove_after`] later removed. A timed-out topology
//! refuses `prepare`, `start` and `upload_grant`.
//!
//! Use: the timeout task calls [`TopologyTimeout::poll_event`] with the
//! current time, carries out the event it answers, stores
//! [`TopologyTimeout::after`] of that event, and repeats until it answers
//! `None`; [`TopologyTimeout::poll_at`] says when to look again.

use crate::permissions::{Role, TopologyOp, topology_op_role};

const DAY: i64 = 24 * 3600;

/// The timeout settings (ToMaTo's `topology_timeout` in `server_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// Seconds a new topology lives before its first deadline.
    pub initial: i64,
    /// The renewal the UI offers first, seconds.
    pub default: i64,
    /// The longest renewal, seconds (global admins may exceed it).
    pub max: i64,
    /// The renewals the UI offers, seconds.
    pub options: Vec<i64>,
    /// How long before the deadline users are warned, seconds.
    pub warning: i64,
    /// How long after the deadline (and stop) the topology is destroyed.
    pub destroy_after: i64,
    /// How long after the deadline the topology is removed.
    pub remove_after: i64,
}

impl TimeoutConfig {
    /// ToMaTo's values: 1 h initial, 3 d default, 30 d maximum, options
    /// 1/3/14/30 d, warning 1 d before, destroyed 14 d and removed 90 d
    /// after the deadline.
    pub fn tomato() -> TimeoutConfig {
        TimeoutConfig {
            initial: 3600,
            default: 3 * DAY,
            max: 30 * DAY,
            options: vec![DAY, 3 * DAY, 14 * DAY, 30 * DAY],
            warning: DAY,
            destroy_after: 14 * DAY,
            remove_after: 90 * DAY,
        }
    }

    /// Checks that the settings make sense: positive, options within the
    /// maximum, destruction before removal.
    pub fn validate(&self) -> Result<(), TimeoutError> {
        let bad = |field: &'static str, message: String| Err(TimeoutError::BadConfig { field, message });
        for (field, value) in [
            ("initial", self.initial),
            ("default", self.default),
            ("max", self.max),
            ("warning", self.warning),
            ("destroy_after", self.destroy_after),
            ("remove_after", self.remove_after),
        ] {
            if value <= 0 {
                return bad(field, format!("must be a positive number of seconds, not {value}"));
            }
        }
        if self.default > self.max {
            return bad("default", format!("{} is above max {}", self.default, self.max));
        }
        if let Some(o) = self.options.iter().find(|o| **o <= 0 || **o > self.max) {
            return bad("options", format!("{o} is not between 1 and max {}", self.max));
        }
        if self.remove_after <= self.destroy_after {
            return bad("remove_after", format!("must be after destroy_after ({})", self.destroy_after));
        }
        Ok(())
    }
}

/// How far the timeout procedure has gone (ToMaTo's `TimeoutStep`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutStep {
    /// Nothing done yet; a warning is due before the deadline.
    Initial,
    /// Warned (or no warning needed); the topology stops at the deadline.
    Warned,
    /// Stopped at the deadline; destruction follows.
    Stopped,
    /// Destroyed; removal follows.
    Destroyed,
}

impl TimeoutStep {
    /// Every step, in order.
    pub const ALL: [TimeoutStep; 4] =
        [TimeoutStep::Initial, TimeoutStep::Warned, TimeoutStep::Stopped, TimeoutStep::Destroyed];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            TimeoutStep::Initial => "initial",
            TimeoutStep::Warned => "warned",
            TimeoutStep::Stopped => "stopped",
            TimeoutStep::Destroyed => "destroyed",
        }
    }

    /// The step named `name`, or an error listing the names.
    pub fn parse(name: &str) -> Result<TimeoutStep, TimeoutError> {
        TimeoutStep::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| TimeoutError::UnknownStep(name.into()))
    }
}

/// Something the timeout task must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutEvent {
    /// Tell the topology's users that it will expire.
    Warn,
    /// Stop the topology.
    Stop,
    /// Destroy the topology.
    Destroy,
    /// Remove the topology.
    Remove,
}

/// A topology's deadline and how far its timeout procedure has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyTimeout {
    /// The deadline, seconds since the epoch.
    pub at: i64,
    /// What has been done about it.
    pub step: TimeoutStep,
}

impl TopologyTimeout {
    /// The timeout of a topology created at `now`: the initial deadline,
    /// with no warning (ToMaTo starts new topologies as already warned).
    pub fn new(now: i64, config: &TimeoutConfig) -> TopologyTimeout {
        TopologyTimeout { at: now.saturating_add(config.initial), step: TimeoutStep::Warned }
    }

    /// `renew(timeout)` at `now` by someone whose role on the topology is
    /// `role` and who is (or is not) a global admin. The new deadline is
    /// now + `timeout`; a renewal longer than the warning time warns again.
    pub fn renew(
        &self,
        now: i64,
        timeout: i64,
        role: Role,
        global_admin: bool,
        config: &TimeoutConfig,
    ) -> Result<TopologyTimeout, TimeoutError> {
        let need = topology_op_role(TopologyOp::Renew);
        if role < need {
            return Err(TimeoutError::RoleTooLow { need, have: role });
        }
        if timeout <= 0 {
            return Err(TimeoutError::InvalidTimeout { timeout, max: config.max });
        }
        if timeout > config.max && !global_admin {
            return Err(TimeoutError::AboveMaximum { timeout, max: config.max });
        }
        let step = if timeout > config.warning { TimeoutStep::Initial } else { TimeoutStep::Warned };
        Ok(TopologyTimeout { at: now.saturating_add(timeout), step })
    }

    /// Whether the deadline has passed at `now`.
    pub fn is_timed_out(&self, now: i64) -> bool {
        now >= self.at
    }

    /// The event due at `now`, if any; events come one at a time, in order.
    pub fn poll_event(&self, now: i64, config: &TimeoutConfig) -> Option<TimeoutEvent> {
        let at = self.poll_at(config)?;
        if now < at {
            return None;
        }
        Some(match self.step {
            TimeoutStep::Initial => TimeoutEvent::Warn,
            TimeoutStep::Warned => TimeoutEvent::Stop,
            TimeoutStep::Stopped => TimeoutEvent::Destroy,
            TimeoutStep::Destroyed => TimeoutEvent::Remove,
        })
    }

    /// When the next event falls due, seconds since the epoch; `None` once
    /// only removal is left to do and it has been done by the caller.
    pub fn poll_at(&self, config: &TimeoutConfig) -> Option<i64> {
        Some(match self.step {
            TimeoutStep::Initial => self.at.saturating_sub(config.warning),
            TimeoutStep::Warned => self.at,
            TimeoutStep::Stopped => self.at.saturating_add(config.destroy_after),
            TimeoutStep::Destroyed => self.at.saturating_add(config.remove_after),
        })
    }

    /// The timeout after `event` has been carried out.
    pub fn after(&self, event: TimeoutEvent) -> TopologyTimeout {
        let step = match event {
            TimeoutEvent::Warn => TimeoutStep::Warned,
            TimeoutEvent::Stop => TimeoutStep::Stopped,
            TimeoutEvent::Destroy | TimeoutEvent::Remove => TimeoutStep::Destroyed,
        };
        TopologyTimeout { at: self.at, step: step.max(self.step) }
    }

    /// Refuses `prepare`, `start` and `upload_grant` once timed out.
    pub fn check_action(&self, now: i64, action: &str) -> Result<(), TimeoutError> {
        if self.is_timed_out(now) && ["prepare", "start", "upload_grant"].contains(&action) {
            return Err(TimeoutError::TimedOut { action: action.to_string(), at: self.at });
        }
        Ok(())
    }
}

/// Why a timeout operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeoutError {
    /// The caller may not renew.
    #[error("renew needs the role {need} on this topology; you have {have}")]
    RoleTooLow {
        /// The least role.
        need: Role,
        /// The caller's role.
        have: Role,
    },
    /// Zero or negative.
    #[error("`timeout`: {timeout} is not a duration; allowed: 1 to {max} seconds")]
    InvalidTimeout {
        /// The requested duration.
        timeout: i64,
        /// The maximum.
        max: i64,
    },
    /// Longer than the maximum.
    #[error("`timeout`: {timeout} seconds is greater than the maximum of {max} seconds")]
    AboveMaximum {
        /// The requested duration.
        timeout: i64,
        /// The maximum.
        max: i64,
    },
    /// The topology has timed out.
    #[error("the topology timed out at {at}; renew it before {action}")]
    TimedOut {
        /// The refused action.
        action: String,
        /// The deadline that passed.
        at: i64,
    },
    /// A setting is wrong.
    #[error("timeout setting `{field}`: {message}")]
    BadConfig {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A stored step name is not one we know.
    #[error("`timeout_step`: unknown step `{0}`; allowed: initial, warned, stopped, destroyed")]
    UnknownStep(String),
}

impl TimeoutError {
    /// ToMaTo's error code.
    pub fn code(&self) -> &'static str {
        match self {
            TimeoutError::RoleTooLow { .. } => "denied",
            TimeoutError::TimedOut { .. } => "timed_out",
            TimeoutError::BadConfig { .. } => "invalid_configuration",
            TimeoutError::InvalidTimeout { .. } | TimeoutError::AboveMaximum { .. } | TimeoutError::UnknownStep(_) => {
                "invalid_value"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_700_000_000;

    /// Runs the timeout task at `now` until nothing is due; returns the
    /// events in order.
    fn run(t: &mut TopologyTimeout, now: i64, c: &TimeoutConfig) -> Vec<TimeoutEvent> {
        let mut events = Vec::new();
        while let Some(e) = t.poll_event(now, c) {
            events.push(e);
            if e == TimeoutEvent::Remove {
                break;
            }
            *t = t.after(e);
        }
        events
    }

    #[test]
    fn tomato_settings_are_valid() {
        let c = TimeoutConfig::tomato();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.initial, c.default, c.max, c.warning), (3600, 259_200, 2_592_000, 86_400));
    }

    #[test]
    fn a_new_topology_stops_after_an_hour_without_warning() {
        let c = TimeoutConfig::tomato();
        let mut t = TopologyTimeout::new(T0, &c);
        assert_eq!(t.at, T0 + 3600);
        assert_eq!(run(&mut t, T0 + 3599, &c), []);
        assert_eq!(run(&mut t, T0 + 3600, &c), [TimeoutEvent::Stop]);
        assert_eq!(run(&mut t, T0 + 3600 + 14 * DAY - 1, &c), []);
        assert_eq!(run(&mut t, T0 + 3600 + 14 * DAY, &c), [TimeoutEvent::Destroy]);
        assert_eq!(run(&mut t, T0 + 3600 + 90 * DAY, &c), [TimeoutEvent::Remove]);
    }

    #[test]
    fn a_renewed_topology_is_warned_a_day_before() {
        let c = TimeoutConfig::tomato();
        let t = TopologyTimeout::new(T0, &c);
        let mut t = t.renew(T0 + 10, 3 * DAY, Role::Manager, false, &c).unwrap();
        assert_eq!(t, TopologyTimeout { at: T0 + 10 + 3 * DAY, step: TimeoutStep::Initial });
        assert_eq!(t.poll_at(&c), Some(T0 + 10 + 2 * DAY));
        assert_eq!(run(&mut t, T0 + 10 + 2 * DAY - 1, &c), []);
        assert_eq!(run(&mut t, T0 + 10 + 2 * DAY, &c), [TimeoutEvent::Warn]);
        // A task that was down for weeks catches up in order.
        assert_eq!(run(&mut t, T0 + 100 * DAY, &c), [TimeoutEvent::Stop, TimeoutEvent::Destroy, TimeoutEvent::Remove]);
        // A short renewal needs no warning.
        let short = t.renew(T0, 3600, Role::Owner, false, &c).unwrap();
        assert_eq!(short.step, TimeoutStep::Warned);
    }

    #[test]
    fn renew_is_bounded_and_needs_a_manager() {
        let c = TimeoutConfig::tomato();
        let t = TopologyTimeout::new(T0, &c);
        assert_eq!(
            t.renew(T0, 31 * DAY, Role::Owner, false, &c),
            Err(TimeoutError::AboveMaximum { timeout: 31 * DAY, max: 30 * DAY })
        );
        assert_eq!(t.renew(T0, 31 * DAY, Role::Owner, true, &c).map(|t| t.at), Ok(T0 + 31 * DAY));
        assert_eq!(t.renew(T0, 30 * DAY, Role::Manager, false, &c).map(|t| t.at), Ok(T0 + 30 * DAY));
        for role in [Role::Null, Role::User] {
            let e = t.renew(T0, DAY, role, false, &c).unwrap_err();
            assert_eq!(e.code(), "denied");
            assert_eq!(e.to_string(), format!("renew needs the role manager on this topology; you have {role}"));
        }
        let e = t.renew(T0, 0, Role::Owner, true, &c).unwrap_err();
        assert_eq!(e.to_string(), "`timeout`: 0 is not a duration; allowed: 1 to 2592000 seconds");
    }

    #[test]
    fn timed_out_topologies_refuse_prepare_start_and_upload_grant() {
        let c = TimeoutConfig::tomato();
        let t = TopologyTimeout::new(T0, &c);
        for a in ["prepare", "start", "upload_grant", "stop", "destroy"] {
            assert_eq!(t.check_action(T0, a), Ok(()));
        }
        for a in ["prepare", "start", "upload_grant"] {
            let e = t.check_action(T0 + 3600, a).unwrap_err();
            assert_eq!(e.code(), "timed_out");
        }
        for a in ["stop", "destroy", "renew", "(remove)"] {
            assert_eq!(t.check_action(T0 + 3600, a), Ok(()), "{a}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = TimeoutConfig::tomato();
        c.options.push(40 * DAY);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "timeout setting `options`: 3456000 is not between 1 and max 2592000"
        );
        let mut c = TimeoutConfig::tomato();
        c.warning = 0;
        assert!(c.validate().unwrap_err().to_string().starts_with("timeout setting `warning`"));
        assert_eq!(TimeoutStep::parse("late").unwrap_err().code(), "invalid_value");
        for s in TimeoutStep::ALL {
            assert_eq!(TimeoutStep::parse(s.name()), Ok(s));
        }
    }

    proptest! {
        /// Whatever renewals happen, the deadline never lies beyond now +
        /// max for non-admins, and the events of a run are always a suffix
        /// of warn, stop, destroy, remove, each at or after its time.
        #[test]
        fn deadlines_are_bounded_and_events_ordered(
            renewals in prop::collection::vec((0i64..40 * DAY, -10i64..40 * DAY), 0..5),
            checks in prop::collection::vec(0i64..200 * DAY, 1..8),
        ) {
            let c = TimeoutConfig::tomato();
            let mut t = TopologyTimeout::new(T0, &c);
            let mut now = T0;
            for (wait, timeout) in renewals {
                now += wait;
                match t.renew(now, timeout, Role::Manager, false, &c) {
                    Ok(n) => {
                        prop_assert!(n.at <= now + c.max && n.at > now);
                        t = n;
                    }
                    Err(_) => prop_assert!(timeout <= 0 || timeout > c.max),
                }
            }
            let mut checks = checks;
            checks.sort();
            let order = [TimeoutEvent::Warn, TimeoutEvent::Stop, TimeoutEvent::Destroy, TimeoutEvent::Remove];
            let mut seen = Vec::new();
            for offset in checks {
                let at = now + offset;
                let before = t;
                for e in run(&mut t, at, &c) {
                    let due = match e {
                        TimeoutEvent::Warn => before.at - c.warning,
                        TimeoutEvent::Stop => before.at,
                        TimeoutEvent::Destroy => before.at + c.destroy_after,
                        TimeoutEvent::Remove => before.at + c.remove_after,
                    };
                    prop_assert!(at >= due, "{e:?} at {at} before {due}");
                    seen.push(e);
                }
                if seen.last() == Some(&TimeoutEvent::Remove) {
                    break;
                }
            }
            let start = order.iter().position(|e| Some(e) == seen.first()).unwrap_or(0);
            prop_assert_eq!(&seen[..], &order[start..start + seen.len()]);
        }
    }
}
