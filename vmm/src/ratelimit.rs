//! Bounds on what a guest can make the VMM print or remember.
//!
//! * [`RateLimiter`]: Xen's `__printk_ratelimit` (xen/drivers/char/console.c), a token bucket
//!   of `burst` messages refilled at one message per `interval_ms`: a burst of 10 messages,
//!   then one every 5 s, and when a message gets through after some were dropped, a
//!   "N messages suppressed" line first. Time is passed in by the caller (milliseconds), so the
//!   limiter is pure and tests drive it with a fake clock.
//! * [`BoundedSet`]: "report this once" bookkeeping of fixed size; once full, new keys are not
//!   remembered but counted, so the summary can say how many it no longer names.

use std::collections::BTreeSet;

/// Xen's `printk_ratelimit_ms`: minimum time between messages once the burst is spent.
pub const XEN_RATELIMIT_MS: u64 = 5 * 1000;
/// Xen's `printk_ratelimit_burst`: messages let through before rate limiting starts.
pub const XEN_RATELIMIT_BURST: u64 = 10;

/// What the caller does with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; when `suppressed` > 0, first print that many messages were suppressed.
    Print { suppressed: u64 },
    /// Drop it (it is counted).
    Suppress,
}

/// Xen's printk rate limit (one instance per output stream; Xen has one global instance).
#[derive(Clone, Debug)]
pub struct RateLimiter {
    interval_ms: u64,
    burst: u64,
    /// Tokens in milliseconds, at most `burst * interval_ms`; a message costs `interval_ms`.
    toks: u64,
    last_ms: u64,
    /// Suppressed since the last message that got through (Xen's `missed`).
    missed: u64,
    /// Totals over the limiter's life, for the summary.
    pub printed: u64,
    pub suppressed: u64,
}

impl Default for RateLimiter {
    /// Xen's defaults: a burst of 10, then one message per 5 s.
    fn default() -> Self {
        RateLimiter::new(XEN_RATELIMIT_MS, XEN_RATELIMIT_BURST)
    }
}

impl RateLimiter {
    /// A full bucket at time 0 (Xen starts with `toks = 10 * 5 * 1000`).
    pub fn new(interval_ms: u64, burst: u64) -> Self {
        RateLimiter {
            interval_ms,
            burst,
            toks: burst.saturating_mul(interval_ms),
            last_ms: 0,
            missed: 0,
            printed: 0,
            suppressed: 0,
        }
    }

    /// Xen's `__printk_ratelimit` at time `now_ms` (monotonic; an earlier time adds nothing).
    pub fn check(&mut self, now_ms: u64) -> Verdict {
        self.toks = self
            .toks
            .saturating_add(now_ms.saturating_sub(self.last_ms))
            .min(self.burst.saturating_mul(self.interval_ms));
        self.last_ms = self.last_ms.max(now_ms);
        if self.toks >= self.interval_ms {
            self.toks -= self.interval_ms;
            self.printed += 1;
            Verdict::Print {
                suppressed: std::mem::take(&mut self.missed),
            }
        } else {
            self.missed += 1;
            self.suppressed += 1;
            Verdict::Suppress
        }
    }

    /// Messages suppressed since the last one printed; resets the count (for a final
    /// "N messages suppressed" line at exit, which Xen never prints because it never exits).
    pub fn take_missed(&mut self) -> u64 {
        std::mem::take(&mut self.missed)
    }
}

/// Outcome of [`BoundedSet::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time: the key is now remembered.
    New,
    /// Already remembered.
    Repeat,
    /// Not remembered and the set is full: counted in [`BoundedSet::untracked`].
    Untracked,
}

/// A set that never holds more than `capacity` keys.
#[derive(Clone, Debug)]
pub struct BoundedSet<T: Ord> {
    keys: BTreeSet<T>,
    capacity: usize,
    /// Inserts of keys that were not remembered because the set was full (repeats of one
    /// such key count each time: the set cannot tell them apart).
    pub untracked: u64,
}

impl<T: Ord> BoundedSet<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            keys: BTreeSet::new(),
            capacity,
            untracked: 0,
        }
    }

    pub fn insert(&mut self, key: T) -> Seen {
        if self.keys.contains(&key) {
            Seen::Repeat
        } else if self.keys.len() < self.capacity {
            self.keys.insert(key);
            Seen::New
        } else {
            self.untracked += 1;
            Seen::Untracked
        }
    }

    /// Keys remembered (at most the capacity).
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_interval_like_xen() {
        let mut r = RateLimiter::default();
        // Ten messages at t = 0 pass, the eleventh does not.
        for _ in 0..10 {
            assert_eq!(r.check(0), Verdict::Print { suppressed: 0 });
        }
        for _ in 0..5 {
            assert_eq!(r.check(100), Verdict::Suppress);
        }
        // 4.999 s later: still one token short.
        assert_eq!(r.check(4_999), Verdict::Suppress);
        // At 5 s a message passes and reports the six it replaces.
        assert_eq!(r.check(5_000), Verdict::Print { suppressed: 6 });
        assert_eq!(r.check(5_001), Verdict::Suppress);
        assert_eq!(r.check(10_000), Verdict::Print { suppressed: 1 });
        assert_eq!((r.printed, r.suppressed), (12, 7));
    }

    #[test]
    fn a_quiet_period_refills_at_most_the_burst() {
        let mut r = RateLimiter::new(1000, 3);
        for _ in 0..3 {
            assert!(matches!(r.check(0), Verdict::Print { .. }));
        }
        assert_eq!(r.check(0), Verdict::Suppress);
        // An hour of silence gives back 3 messages, not 3600.
        let t = 3_600_000;
        for _ in 0..3 {
            assert!(matches!(r.check(t), Verdict::Print { .. }));
        }
        assert_eq!(r.check(t), Verdict::Suppress);
        assert_eq!(r.take_missed(), 1);
        assert_eq!(r.take_missed(), 0);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let mut r = RateLimiter::new(1000, 1);
        assert!(matches!(r.check(5000), Verdict::Print { .. }));
        assert_eq!(r.check(10), Verdict::Suppress);
        assert_eq!(r.check(5999), Verdict::Suppress);
        assert!(matches!(r.check(6000), Verdict::Print { suppressed: 2 }));
    }

    #[test]
    fn huge_numbers_saturate() {
        let mut r = RateLimiter::new(u64::MAX, u64::MAX);
        assert!(matches!(r.check(u64::MAX), Verdict::Print { .. }));
        let mut r = RateLimiter::new(0, 0);
        // A zero interval lets everything through (and never divides by it).
        assert!(matches!(r.check(0), Verdict::Print { .. }));
    }

    #[test]
    fn bounded_set_stops_growing_and_counts_the_rest() {
        let mut s = BoundedSet::new(3);
        assert_eq!(s.insert(1), Seen::New);
        assert_eq!(s.insert(1), Seen::Repeat);
        assert_eq!(s.insert(2), Seen::New);
        assert_eq!(s.insert(3), Seen::New);
        assert_eq!(s.insert(4), Seen::Untracked);
        assert_eq!(s.insert(4), Seen::Untracked);
        assert_eq!(s.insert(2), Seen::Repeat);
        for k in 5..100_000 {
            s.insert(k);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.untracked, 2 + 99_995);
    }
}
