//! Exponential backoff with jitter, for retrying a downstream that is away:
//! the delay doubles from `min` to `max`, and each wait is a random 50–100 %
//! of it, so many BeTrace instances that lost the same collector do not all
//! come back at the same instant.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let max = max.max(min);
        Backoff { min, max, current: min }
    }

    /// The next wait, and doubles the delay for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        delay.mul_f64(0.5 + 0.5 * random_unit())
    }

    /// Back to `min`, after a success.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// A number in [0, 1). Each `RandomState` is seeded afresh (randomly per
/// thread, then incremented), which is random enough for jitter and needs no
/// random-number crate.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter_below_them() {
        let min = Duration::from_millis(100);
        let mut backoff = Backoff::new(min, Duration::from_millis(700));
        let bounds = [100, 200, 400, 700, 700];
        for bound in bounds {
            let delay = backoff.next_delay();
            let bound = Duration::from_millis(bound);
            assert!(delay >= bound / 2 && delay <= bound, "{delay:?} for {bound:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn jitter_varies() {
        let draws: std::collections::HashSet<u64> = (0..20).map(|_| random_unit().to_bits()).collect();
        assert!(draws.len() > 10);
        assert!((0..1000).map(|_| random_unit()).all(|u| (0.0..1.0).contains(&u)));
    }
}
