//! An in-memory link target backed by `netem`, for tests and examples.
//!
//! [`MemoryLink`] holds two [`netem::LinkDirection`]s and applies changes
//! with `handle_params` at a fixed instant (the console has no clock). The
//! data plane's links implement [`LinkTarget`] themselves; switches use
//! [`crate::ManagedSwitch`] everywhere.

use netem::{DirectionParams, Instant, LinkDirection, ParamsError, ParamsUpdate};

use crate::link::{Direction, LinkStatus, LinkTarget};
use crate::reply::TargetError;

/// Both directions of a link, in memory.
#[derive(Debug, Clone)]
pub struct MemoryLink {
    lr: LinkDirection,
    rl: LinkDirection,
    now: Instant,
}

impl MemoryLink {
    /// A link with the given parameters per direction.
    pub fn new(lr: DirectionParams, rl: DirectionParams) -> Result<MemoryLink, ParamsError> {
        Ok(MemoryLink { lr: LinkDirection::new(lr)?, rl: LinkDirection::new(rl)?, now: Instant::ZERO })
    }

    /// An ideal link (no delay, loss or rate limit) with per-direction seeds.
    pub fn ideal() -> MemoryLink {
        MemoryLink::new(DirectionParams::ideal(1), DirectionParams::ideal(2)).expect("ideal parameters are valid")
    }

    /// The direction `dir`, to drive frames through it.
    pub fn direction_mut(&mut self, dir: Direction) -> &mut LinkDirection {
        match dir {
            Direction::LeftRight => &mut self.lr,
            Direction::RightLeft => &mut self.rl,
        }
    }

    /// Sets the instant at which later changes apply.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    fn direction(&self, dir: Direction) -> &LinkDirection {
        match dir {
            Direction::LeftRight => &self.lr,
            Direction::RightLeft => &self.rl,
        }
    }
}

impl LinkTarget for MemoryLink {
    fn params(&self, dir: Direction) -> DirectionParams {
        self.direction(dir).params().clone()
    }

    fn status(&self, dir: Direction) -> LinkStatus {
        // netem counts held copies but not their bytes.
        LinkStatus { queued_bytes: 0, queued_frames: self.direction(dir).held_frames() as u64 }
    }

    fn apply(&mut self, dir: Direction, update: &ParamsUpdate) -> Result<(), TargetError> {
        let now = self.now;
        self.direction_mut(dir).handle_params(now, update).map_err(TargetError::from)
    }
}
