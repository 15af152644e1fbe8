//! The clock that sessions expire by and sign-in limits refill by.
//!
//! Sessions live for days, so a test cannot wait for one to expire. Instead
//! every time the accounts module reads goes through a [`Clock`]: the server
//! uses [`SystemClock`] (the wall clock — expiry dates are stored in the
//! database and must mean the same after a restart), tests use a
//! [`ManualClock`] and move it forward by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A future that resolves at a moment of a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where "now" comes from, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now_ms(&self) -> u64;
    /// Resolves once [`now_ms`](Clock::now_ms) has reached `at_ms` — or
    /// earlier: callers check the time again after waking, so a clock may
    /// wake them early (the system clock does, see [`SystemClock`]).
    fn sleep_until(&self, at_ms: u64) -> Sleep;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep of the [`SystemClock`]. Tokio's timers run on a
/// monotonic clock that stops while a laptop is suspended, whereas expiry
/// dates are wall-clock dates; waking at least this often bounds how late an
/// expiry is noticed after the teacher's laptop wakes up.
pub const MAX_SYSTEM_SLEEP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep {
        let wait = Duration::from_millis(at_ms.saturating_sub(self.now_ms())).min(MAX_SYSTEM_SLEEP);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to. Sleepers wake when
/// [`advance`](ManualClock::advance) passes their moment.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<u64>>,
}

impl ManualClock {
    /// A clock that reads `start_ms`.
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(start_ms)),
        }
    }

    /// Moves the clock forward by `by`, waking every sleeper whose moment
    /// has come.
    pub fn advance(&self, by: Duration) {
        self.now
            .send_modify(|now| *now = now.saturating_add(by.as_millis() as u64));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            // Err only if the clock was dropped: then time stands still for
            // ever, so never waking is the honest answer.
            if now.wait_for(|now| *now >= at_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_their_moment_is_passed() {
        let clock = ManualClock::new(1_000);
        let mut sleep = clock.sleep_until(1_500);
        // Not yet: polling once must leave it pending.
        assert!(futures_util::poll!(&mut sleep).is_pending());
        clock.advance(Duration::from_millis(499));
        assert!(futures_util::poll!(&mut sleep).is_pending());
        clock.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(5), sleep)
            .await
            .expect("woken at 1500");
        assert_eq!(clock.now_ms(), 1_500);
    }

    #[test]
    fn the_system_clock_is_the_wall_clock() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let now = SystemClock.now_ms();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(before.as_millis() as u64 <= now && now <= after.as_millis() as u64);
    }
}
