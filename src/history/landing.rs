//! Where recorded samples can still land: the earliest instant a recording rule's sample (or
//! an `ALERTS` sample) not yet in the history may be stamped with. A recorded sample lands in
//! the newest tick at or before its instant, so every tick whose successor is at or before
//! this instant is final: nothing will be added to it any more.
//!
//! The rules task moves it forward before each round (its evaluation time less the largest
//! query offset of any group); readers that must see ticks only once they are final, such as
//! remote write, hold back the ticks after it. Owns that one instant; it never reads the
//! history or the rules itself.

use std::sync::atomic::{AtomicI64, Ordering};

/// The earliest instant (ms since the epoch) a recorded sample still to come can carry.
/// Starts at `i64::MIN`: until the rules task has said otherwise, no tick is final.
#[derive(Debug)]
pub struct Landing(AtomicI64);

impl Default for Landing {
    fn default() -> Self {
        Self(AtomicI64::new(i64::MIN))
    }
}

impl Landing {
    /// Says no recorded sample still to come is stamped before `at_ms` (ms since the epoch).
    /// It may move back, when a reload brings a group with a larger query offset: ticks read
    /// as final before that stay read.
    ///
    /// ```
    /// use ipfs_sentinel::history::landing::Landing;
    /// let landing = Landing::default();
    /// assert_eq!(landing.floor(), i64::MIN);
    /// landing.set(6_000);
    /// assert_eq!(landing.floor(), 6_000);
    /// ```
    pub fn set(&self, at_ms: i64) {
        self.0.store(at_ms, Ordering::Release);
    }

    /// The earliest instant a recorded sample still to come can carry (ms since the epoch).
    pub fn floor(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}
