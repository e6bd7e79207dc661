//! Timers as data: the supervisor never reads a clock, it is told the time by its inputs and
//! fires the timers that fall before each input, in a fixed order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use model::Timestamp;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The transit is sealed at its `sealed_at`.
    Seal,
    /// The time limit of the journey.
    Deadline,
    /// Communication-loss check; re-armed lazily (see `Supervisor::fire`).
    CommLoss,
    /// A confirmed stop reaches its limit.
    Stop,
    /// A held decision (see `HOLD_MAX`) is settled by the last known state.
    Held,
    /// A declared checkpoint's time; the generation is the checkpoint's index.
    Checkpoint,
}

impl TimerKind {
    /// Order among things due at the same instant: sealing happens before a report at the same
    /// time is looked at (phase 0 < inputs' phase 1); expiries happen after it (phase 2), so a
    /// report that arrives exactly at a limit is in time.
    fn phase(self) -> u8 {
        match self {
            TimerKind::Seal => 0,
            _ => 2,
        }
    }
}

/// The phase of an input (see [`TimerKind::phase`]).
pub(crate) const INPUT_PHASE: u8 = 1;
/// The phase of a clock tick: everything due at or before the tick fires.
pub(crate) const TICK_PHASE: u8 = 3;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Timer {
    pub(crate) at: Timestamp,
    pub(crate) kind: TimerKind,
    pub(crate) transit: u32,
    /// Compared with the transit's generation for this kind: a stale timer is skipped, which is
    /// cheaper than removing it from the heap.
    pub(crate) generation: u32,
    seq: u64,
}

impl Timer {
    fn key(&self) -> (Timestamp, u8, u64) {
        (self.at, self.kind.phase(), self.seq)
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> Ordering {
        self.key().cmp(&other.key())
    }
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    /// Insertion counter: ties in time and phase fire in the order they were set.
    seq: u64,
}

impl Timers {
    pub(crate) fn set(&mut self, at: Timestamp, kind: TimerKind, transit: u32, generation: u32) {
        self.seq += 1;
        self.heap.push(Reverse(Timer {
            at,
            kind,
            transit,
            generation,
            seq: self.seq,
        }));
    }

    /// The next timer due before `(t, phase)`, removed from the heap.
    pub(crate) fn pop_due(&mut self, t: Timestamp, phase: u8) -> Option<Timer> {
        let next = self.heap.peek()?.0;
        if (next.at, next.kind.phase()) < (t, phase) {
            self.heap.pop();
            Some(next)
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
