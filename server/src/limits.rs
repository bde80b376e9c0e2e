//! Limits per API key: requests per second (a token bucket per key, through `governor`) and
//! requests at once. A request past either is answered 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Why a request was refused, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was exceeded, for the error message.
    pub message: String,
    /// Whole seconds to wait (at least 1), for `Retry-After`.
    pub retry_after: u64,
}

/// The limits of every key, by its position among the keys.
pub struct KeyLimits {
    rate: Option<(NonZeroU32, DefaultKeyedRateLimiter<usize>)>,
    concurrent: Option<(usize, Vec<Arc<AtomicUsize>>)>,
}

/// A request counted against its key's concurrency until dropped.
pub struct InFlight(Option<Arc<AtomicUsize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl KeyLimits {
    /// Limits for `keys` keys: at most `per_second` requests a second each (bursts of as many),
    /// and `concurrent` at once each; `None` leaves that limit off.
    pub fn new(keys: usize, per_second: Option<NonZeroU32>, concurrent: Option<usize>) -> Self {
        KeyLimits {
            rate: per_second.map(|n| (n, RateLimiter::keyed(Quota::per_second(n)))),
            concurrent: concurrent.map(|n| (n.max(1), (0..keys).map(|_| Arc::default()).collect())),
        }
    }

    /// Admits a request of the key at `key`, or says why not.
    pub fn admit(&self, key: usize) -> Result<InFlight, Refusal> {
        if let Some((n, limiter)) = &self.rate {
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(Refusal {
                    message: format!("this API key's limit of {n} requests a second is reached"),
                    retry_after: whole_seconds(wait),
                });
            }
        }
        let Some((most, counts)) = &self.concurrent else {
            return Ok(InFlight(None));
        };
        let Some(count) = counts.get(key) else {
            return Ok(InFlight(None));
        };
        if count.fetch_add(1, Ordering::AcqRel) >= *most {
            count.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal {
                message: format!("this API key's limit of {most} requests at once is reached"),
                retry_after: 1,
            });
        }
        Ok(InFlight(Some(count.clone())))
    }
}

/// `wait` rounded up to whole seconds, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_rate_and_concurrency() {
        let limits = KeyLimits::new(2, NonZeroU32::new(3), Some(2));
        // Three at once pass the rate (a burst of three), the third not the concurrency.
        let a = limits.admit(0).unwrap();
        let b = limits.admit(0).unwrap();
        let refused = limits.admit(0).err().unwrap();
        assert!(
            refused.message.contains("2 requests at once"),
            "{refused:?}"
        );
        assert_eq!(refused.retry_after, 1);
        drop((a, b));
        // The burst of three is spent: the next waits about a third of a second.
        let refused = limits.admit(0).err().unwrap();
        assert!(
            refused.message.contains("3 requests a second"),
            "{refused:?}"
        );
        assert_eq!(refused.retry_after, 1);
        // Another key is unaffected.
        assert!(limits.admit(1).is_ok());
    }

    #[test]
    fn no_limits_admit_everything() {
        let limits = KeyLimits::new(1, None, None);
        let kept: Vec<_> = (0..1000).map(|_| limits.admit(0).unwrap()).collect();
        assert_eq!(kept.len(), 1000);
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(10)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
    }
}
