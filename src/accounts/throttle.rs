//! Slowing down password guessing without locking a class out.
//!
//! Two token buckets of *failed* sign-ins, both of which must have a token
//! left for an attempt to be tried at all:
//!
//! * **per name** (its canonical key): a handful of mistakes, then one more
//!   try every so often. This is what stops guessing one student's
//!   password. Nobody gets locked out for long: the bucket refills.
//! * **per address**: loose. A class of 60 behind one school NAT shares one
//!   address; with the defaults all 60 can each mistype their password three
//!   times in the same minute and nobody is refused. It only bounds a single
//!   machine spraying guesses over many names.
//!
//! An attempt takes its token *before* the password is checked and gets it
//! back if the password was right. Taking it afterwards would let a hundred
//! parallel guesses all pass the check while the first hash still runs.
//!
//! IPv6 addresses are counted per /64: one home or phone network owns a whole
//! /64 and can change its last 64 bits at will.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// How often buckets that have refilled completely are forgotten, so that
/// guessing at random names cannot grow memory without bound. On a clock,
/// not on every attempt: a sweep walks the whole map, and doing it under
/// the lock for each sign-in once the map is large would make every
/// student pay for every name ever guessed (as `limits.rs` explains for
/// the message rate).
const SWEEP_EVERY_MS: u64 = 1_000;

/// How many failed sign-ins are tolerated. Documented in `docs/limits.md`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignInLimits {
    /// Failures for one name before attempts are refused (0 = no limit).
    pub per_name_burst: u32,
    /// After that, one more attempt for that name every this long.
    pub per_name_every: Duration,
    /// Failures from one address before attempts are refused (0 = no limit).
    pub per_address_burst: u32,
    /// After that, one more attempt from that address every this long.
    pub per_address_every: Duration,
}

impl SignInLimits {
    /// The server's defaults: 5 failures per name, then one every 30 s;
    /// 200 failures per address, then one a second.
    pub const DEFAULT: SignInLimits = SignInLimits {
        per_name_burst: 5,
        per_name_every: Duration::from_secs(30),
        per_address_burst: 200,
        per_address_every: Duration::from_secs(1),
    };

    /// No limit at all (`--no-limits`, and tests that are not about limits).
    pub const UNLIMITED: SignInLimits = SignInLimits {
        per_name_burst: 0,
        per_name_every: Duration::ZERO,
        per_address_burst: 0,
        per_address_every: Duration::ZERO,
    };
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits::DEFAULT
    }
}

/// The two sets of buckets.
#[derive(Debug)]
pub struct Throttle {
    names: Buckets<String>,
    addresses: Buckets<IpAddr>,
}

impl Throttle {
    /// Buckets for `limits`.
    pub fn new(limits: SignInLimits) -> Throttle {
        Throttle {
            names: Buckets::new(limits.per_name_burst, limits.per_name_every),
            addresses: Buckets::new(limits.per_address_burst, limits.per_address_every),
        }
    }

    /// Takes one token for `name_key` (if the name could be a name at all)
    /// and one for `from`, or says how long to wait. Takes none when it
    /// refuses.
    pub fn begin(&self, name_key: Option<&str>, from: IpAddr, now_ms: u64) -> Result<(), Duration> {
        let from = per_network(from);
        self.addresses.take(&from, now_ms)?;
        if let Some(key) = name_key
            && let Err(wait) = self.names.take(&key.to_owned(), now_ms)
        {
            self.addresses.give_back(&from, now_ms);
            return Err(wait);
        }
        Ok(())
    }

    /// The password was right: the attempt was no failure after all.
    pub fn succeeded(&self, name_key: &str, from: IpAddr, now_ms: u64) {
        self.addresses.give_back(&per_network(from), now_ms);
        self.names.give_back(&name_key.to_owned(), now_ms);
    }
}

/// IPv4 as is; IPv6 cut to its /64 (and IPv4-mapped IPv6 back to IPv4).
fn per_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Token buckets keyed by `K`, on the caller's clock.
///
/// Each bucket is kept as one number, the moment it will be full again
/// (the "generic cell rate algorithm"): taking a token pushes that moment
/// one refill period later, and an attempt is refused when it would be more
/// than `burst` periods away. Integer milliseconds, so the waits it answers
/// are exact.
#[derive(Debug)]
struct Buckets<K> {
    /// Milliseconds to refill one token.
    every_ms: u64,
    /// `burst × every_ms`: how far in the future "full again" may be. 0 turns
    /// the limit off.
    depth_ms: u64,
    /// Key → when its bucket is full again, and when the map was last
    /// swept. Only touched for a few arithmetic operations: a std mutex,
    /// never held across an `.await`.
    map: Mutex<(HashMap<K, u64>, u64)>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(burst: u32, every: Duration) -> Buckets<K> {
        let every_ms = every.as_millis() as u64;
        Buckets {
            every_ms,
            // A zero refill time would mean "infinitely fast": no limit.
            depth_ms: every_ms.saturating_mul(u64::from(burst)),
            map: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn take(&self, key: &K, now_ms: u64) -> Result<(), Duration> {
        if self.depth_ms == 0 {
            return Ok(());
        }
        // unwrap: nothing panics while holding this lock.
        let mut guard = self.map.lock().unwrap();
        let (map, swept_at) = &mut *guard;
        if now_ms >= *swept_at + SWEEP_EVERY_MS {
            // A full bucket carries no information.
            map.retain(|_, full_at| *full_at > now_ms);
            *swept_at = now_ms;
        }
        let full_at = map.get(key).copied().unwrap_or(now_ms).max(now_ms);
        let after = full_at + self.every_ms;
        if after - now_ms > self.depth_ms {
            Err(Duration::from_millis(after - now_ms - self.depth_ms))
        } else {
            map.insert(key.clone(), after);
            Ok(())
        }
    }

    fn give_back(&self, key: &K, now_ms: u64) {
        if self.depth_ms == 0 {
            return;
        }
        // unwrap: see take.
        let mut guard = self.map.lock().unwrap();
        let map = &mut guard.0;
        if let Some(full_at) = map.get_mut(key) {
            *full_at = full_at.saturating_sub(self.every_ms).max(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const NAT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_name_gets_its_burst_then_waits() {
        let throttle = Throttle::new(SignInLimits::DEFAULT);
        for _ in 0..5 {
            throttle.begin(Some("ada"), NAT, 0).unwrap();
        }
        let wait = throttle.begin(Some("ada"), NAT, 0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        // Another name from the same address is not affected.
        throttle.begin(Some("grace"), NAT, 0).unwrap();
        // The same name from another address is: the name is what is being
        // guessed, wherever the guesses come from.
        assert!(throttle.begin(Some("ada"), OTHER, 0).is_err());
        // Ten seconds later, twenty seconds remain.
        assert_eq!(
            throttle.begin(Some("ada"), NAT, 10_000).unwrap_err(),
            Duration::from_secs(20)
        );
        throttle.begin(Some("ada"), NAT, 30_000).unwrap();
    }

    #[test]
    fn success_gives_the_token_back() {
        let throttle = Throttle::new(SignInLimits::DEFAULT);
        for _ in 0..100 {
            throttle.begin(Some("ada"), NAT, 0).unwrap();
            throttle.succeeded("ada", NAT, 0);
        }
    }

    #[test]
    fn a_class_of_sixty_behind_one_address_may_each_mistype_three_times() {
        let throttle = Throttle::new(SignInLimits::DEFAULT);
        // All within one minute: 180 failures from one address.
        for attempt in 0..180u64 {
            let student = format!("student{}", attempt % 60);
            throttle
                .begin(Some(&student), NAT, attempt * 333)
                .unwrap_or_else(|wait| panic!("attempt {attempt} refused for {wait:?}"));
        }
        // And then each signs in correctly.
        for s in 0..60 {
            let student = format!("student{s}");
            throttle.begin(Some(&student), NAT, 60_000).unwrap();
            throttle.succeeded(&student, NAT, 60_000);
        }
    }

    #[test]
    fn one_address_spraying_many_names_is_slowed() {
        let throttle = Throttle::new(SignInLimits::DEFAULT);
        for i in 0..200 {
            throttle.begin(Some(&format!("n{i}")), NAT, 0).unwrap();
        }
        assert_eq!(
            throttle.begin(Some("fresh"), NAT, 0).unwrap_err(),
            Duration::from_secs(1)
        );
        // The refused attempt took no token from "fresh".
        for _ in 0..5 {
            throttle.begin(Some("fresh"), OTHER, 0).unwrap();
        }
    }

    #[test]
    fn ipv6_is_counted_per_slash_64() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(per_network(a.into()), per_network(b.into()));
        assert_ne!(per_network(a.into()), per_network(c.into()));
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(per_network(mapped.into()), NAT);
    }

    #[test]
    fn unlimited_never_refuses() {
        let throttle = Throttle::new(SignInLimits::UNLIMITED);
        for _ in 0..10_000 {
            throttle.begin(Some("ada"), NAT, 0).unwrap();
        }
    }
}
