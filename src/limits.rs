//! Limits that keep one client from spoiling the room for everybody else.
//!
//! A classroom network is hostile by accident: a student's script that posts
//! in a tight loop, a page reloaded fifty times, a phone that sleeps with its
//! connection half open. Every limit here is explicit, set by a flag (see
//! [`crate::config::Config`]), documented in `docs/limits.md`, and answered
//! with the contract's JSON error — a refusal is never a silent drop.
//!
//! Two shapes of limit:
//! * [`RateLimiter`] — a token bucket per client address for posting
//!   messages: `rate` tokens per second, at most `burst` saved up. Written
//!   out here rather than taken from a crate: it is a dozen lines, and the
//!   arithmetic (refill by elapsed time, cap at the burst) is worth reading.
//! * [`ConnectionLimiter`] — how many long-lived things (WebSockets, SSE
//!   streams, held long polls) one address, and the whole server, may have
//!   open at once. Acquiring returns a guard; dropping the guard gives the
//!   slot back, however the connection ended.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often buckets that carry no information (refilled to the brim) are
/// swept out, so the map cannot grow without bound however many clients
/// appear. On a clock, not on every call: a sweep walks the whole map, and
/// doing that under the lock for each message once the map is large would
/// make every sender pay for every address ever seen.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Token bucket per key (a client address; any hashable key works).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    /// Tokens added per second (0 = unlimited).
    rate: f64,
    /// Bucket size.
    burst: f64,
    buckets: Mutex<Buckets<K>>,
}

#[derive(Debug)]
struct Buckets<K> {
    by_key: HashMap<K, Bucket>,
    /// When the last sweep ran.
    swept: Instant,
    /// Sweeps so far (for the tests).
    sweeps: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// `rate` per second on average, `burst` at once; a rate of 0 (or less)
    /// disables the limit.
    pub fn new(rate: f64, burst: u32) -> RateLimiter<K> {
        RateLimiter {
            rate: rate.max(0.0),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(Buckets {
                by_key: HashMap::new(),
                swept: Instant::now(),
                sweeps: 0,
            }),
        }
    }

    /// Takes one token for `key`, or says how long to wait for one.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// [`check`](RateLimiter::check) at a given moment (tests move the clock).
    fn check_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let (rate, burst) = (self.rate, self.burst);
        // unwrap: nothing panics while holding this lock.
        let mut buckets = self.buckets.lock().unwrap();
        if now.saturating_duration_since(buckets.swept) >= SWEEP_EVERY {
            // A bucket that has refilled completely carries no information.
            buckets
                .by_key
                .retain(|_, b| b.refilled(now, rate, burst) < burst);
            buckets.swept = now;
            buckets.sweeps += 1;
        }
        let bucket = buckets.by_key.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        bucket.tokens = bucket.refilled(now, rate, burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }
}

/// Whose share of a limit something counts against (see
/// `identity::Peer::who`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    /// A signed-in person: all their tabs and devices together (the
    /// account's name).
    Account(Arc<str>),
    /// A guest's browser tab (or a document editor's `client`).
    Tab(String),
    /// A client that says neither (curl, a script): its address.
    Address(IpAddr),
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This person (account, or a guest's tab) has too many open (429).
    PerPerson(u32),
    /// This address has too many open — the looser outer bound for a
    /// class behind one address (429).
    PerAddress(u32),
    /// The server as a whole is full (503).
    Total(u32),
}

/// Counts open connections of one kind: per person, per address, in total.
///
/// A person is whatever [`Who`] the caller keys by —
/// an account, a guest's tab, or (a client that says nothing) its address.
/// The per-address count is kept as an outer bound only: a school that
/// reaches the server through one address is one address for 60 students.
#[derive(Debug)]
pub struct ConnectionLimiter<K = Who> {
    /// What is being counted, for error messages ("WebSocket connections").
    pub what: &'static str,
    per_person: u32,
    per_ip: u32,
    total: u32,
    state: Mutex<ConnState<K>>,
}

#[derive(Debug)]
struct ConnState<K> {
    by_person: HashMap<K, u32>,
    by_ip: HashMap<IpAddr, u32>,
    total: u32,
}

impl<K: std::hash::Hash + Eq + Clone> ConnectionLimiter<K> {
    /// At most `per_person` per person, `per_ip` per address and `total`
    /// overall (0 = unlimited).
    pub fn new(
        what: &'static str,
        per_person: u32,
        per_ip: u32,
        total: u32,
    ) -> Arc<ConnectionLimiter<K>> {
        Arc::new(ConnectionLimiter {
            what,
            per_person,
            per_ip,
            total,
            state: Mutex::new(ConnState {
                by_person: HashMap::new(),
                by_ip: HashMap::new(),
                total: 0,
            }),
        })
    }

    /// Takes a slot for `person` at `ip`, released when the guard drops.
    pub fn acquire(self: &Arc<Self>, person: K, ip: IpAddr) -> Result<ConnectionGuard<K>, Refusal> {
        // unwrap: nothing panics while holding this lock.
        let mut state = self.state.lock().unwrap();
        if self.total > 0 && state.total >= self.total {
            return Err(Refusal::Total(self.total));
        }
        let at_ip = state.by_ip.get(&ip).copied().unwrap_or(0);
        if self.per_ip > 0 && at_ip >= self.per_ip {
            return Err(Refusal::PerAddress(self.per_ip));
        }
        let of_person = state.by_person.get(&person).copied().unwrap_or(0);
        if self.per_person > 0 && of_person >= self.per_person {
            return Err(Refusal::PerPerson(self.per_person));
        }
        state.by_ip.insert(ip, at_ip + 1);
        state.by_person.insert(person.clone(), of_person + 1);
        state.total += 1;
        Ok(ConnectionGuard {
            limiter: Arc::clone(self),
            person,
            ip,
        })
    }

    /// Connections open right now.
    pub fn open(&self) -> u32 {
        // unwrap: see acquire.
        self.state.lock().unwrap().total
    }
}

/// One open connection's slot.
#[derive(Debug)]
pub struct ConnectionGuard<K: std::hash::Hash + Eq + Clone = Who> {
    limiter: Arc<ConnectionLimiter<K>>,
    person: K,
    ip: IpAddr,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for ConnectionGuard<K> {
    fn drop(&mut self) {
        // unwrap: see acquire.
        let mut state = self.limiter.state.lock().unwrap();
        state.total -= 1;
        // Forget keys with nothing open: the maps stay as small as the set
        // of currently connected clients.
        release(&mut state.by_ip, &self.ip);
        release(&mut state.by_person, &self.person);
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn bucket_allows_burst_then_refuses_with_a_wait() {
        let limiter: RateLimiter = RateLimiter::new(2.0, 3);
        for _ in 0..3 {
            limiter.check(A).unwrap();
        }
        let wait = limiter.check(A).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        // Another address has its own bucket.
        limiter.check(B).unwrap();
    }

    #[test]
    fn idle_buckets_are_swept_on_a_clock_not_on_every_call() {
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        // Many addresses, each sending once: far more than any sweep
        // threshold a per-call sweep would use.
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            limiter.check_at(ip, start).unwrap();
        }
        for _ in 0..1_000 {
            let _ = limiter.check_at(A, start + Duration::from_millis(500));
        }
        let swept = |l: &RateLimiter| {
            let b = l.buckets.lock().unwrap();
            (b.sweeps, b.by_key.len())
        };
        assert_eq!(
            swept(&limiter),
            (0, 10_001),
            "no sweep within the first second"
        );
        // A second later every bucket but A's has refilled: one sweep
        // forgets them.
        limiter
            .check_at(B, start + Duration::from_millis(1_600))
            .unwrap();
        let (sweeps, left) = swept(&limiter);
        assert_eq!(sweeps, 1);
        assert!(left <= 2, "{left} buckets left");
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter: RateLimiter = RateLimiter::new(0.0, 1);
        for _ in 0..10_000 {
            limiter.check(A).unwrap();
        }
    }

    #[test]
    fn connection_slots_come_back_when_guards_drop() {
        let limiter = ConnectionLimiter::new("test", 0, 2, 3);
        let a1 = limiter.acquire(A, A).unwrap();
        let _a2 = limiter.acquire(A, A).unwrap();
        assert_eq!(limiter.acquire(A, A).unwrap_err(), Refusal::PerAddress(2));
        let _b1 = limiter.acquire(B, B).unwrap();
        assert_eq!(limiter.acquire(B, B).unwrap_err(), Refusal::Total(3));
        drop(a1);
        assert_eq!(limiter.open(), 2);
        limiter.acquire(B, B).unwrap();
    }

    #[test]
    fn people_behind_one_address_each_get_their_own_share() {
        // Three people at one address, two connections each allowed, the
        // address allowing five: the third person's second is the sixth.
        let limiter = ConnectionLimiter::new("test", 2, 5, 0);
        let mut open = Vec::new();
        for person in ["ada", "bob"] {
            open.push(limiter.acquire(person, A).unwrap());
            open.push(limiter.acquire(person, A).unwrap());
            assert_eq!(
                limiter.acquire(person, A).unwrap_err(),
                Refusal::PerPerson(2)
            );
        }
        open.push(limiter.acquire("cy", A).unwrap());
        assert_eq!(
            limiter.acquire("cy", A).unwrap_err(),
            Refusal::PerAddress(5)
        );
        // Elsewhere, cy is only limited as a person.
        open.push(limiter.acquire("cy", B).unwrap());
        assert_eq!(limiter.open(), 6);
    }
}
