/// Password guessing, and the cost of passwords. Guessing one name is
/// refused after a few failures with a "retry after" — for the right
/// password too, and the same way for names that do not exist — and
/// allowed again once the wait is over; a class of 60 behind one school
/// address, each mistyping a couple of times, still all get in, while one
/// address spraying guesses over many names is slowed down. With the real
/// Argon2id parameters, an unknown name takes as long as a wrong password
/// (the medians of 30 interleaved tries each agree within a generous
/// tolerance), and the hashing runs off the async thread: a current-thread
/// runtime keeps ticking its timer while four sign-ins hash.
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weebsockets::accounts::{
    AccountError, Accounts, AccountsConfig, ManualClock, PasswordParams, SignInLimits,
};

const NAT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const PASSWORD: &str = "correct horse";

/// Cheap hashes, the server's default sign-in limits, a hand-driven clock.
fn with_default_limits() -> (Accounts, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let config = AccountsConfig {
        password: PasswordParams::FAST_FOR_TESTS,
        sign_in_limits: SignInLimits::DEFAULT,
        hash_concurrency: 2,
        ..AccountsConfig::default()
    };
    let accounts =
        Accounts::open_with_clock(Path::new(":memory:"), config, Arc::new(clock.clone())).unwrap();
    (accounts, clock)
}

fn retry_after(result: Result<impl std::fmt::Debug, AccountError>) -> Duration {
    match result {
        Err(err @ AccountError::RateLimited(_)) => {
            assert_eq!(err.code(), "rate_limited");
            assert_eq!(err.status(), 429);
            err.retry_after()
                .expect("a rate limit says how long to wait")
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
}

#[tokio::test]
async fn guessing_one_name_is_refused_with_a_retry_after() {
    let (accounts, clock) = with_default_limits();
    accounts.create("ada", PASSWORD, false).await.unwrap();
    let limits = SignInLimits::DEFAULT;
    for _ in 0..limits.per_name_burst {
        assert!(matches!(
            accounts.sign_in("ada", "guess", NAT).await,
            Err(AccountError::BadCredentials)
        ));
    }
    // Refused now, even with the right password (or the guesser would learn
    // it was right), and from any address, in any case.
    assert_eq!(
        retry_after(accounts.sign_in("ada", PASSWORD, NAT).await),
        limits.per_name_every
    );
    assert!(retry_after(accounts.sign_in("ADA", PASSWORD, ELSEWHERE).await) > Duration::ZERO);

    clock.advance(limits.per_name_every / 2);
    assert_eq!(
        retry_after(accounts.sign_in("ada", PASSWORD, NAT).await),
        limits.per_name_every / 2
    );
    clock.advance(limits.per_name_every / 2);
    accounts.sign_in("ada", PASSWORD, NAT).await.unwrap();
}

#[tokio::test]
async fn names_that_do_not_exist_are_limited_the_same_way() {
    let (accounts, _clock) = with_default_limits();
    for _ in 0..SignInLimits::DEFAULT.per_name_burst {
        assert!(matches!(
            accounts.sign_in("nobody", "guess", NAT).await,
            Err(AccountError::BadCredentials)
        ));
    }
    // So a refusal does not reveal whether the name exists.
    assert_eq!(
        retry_after(accounts.sign_in("nobody", "guess", NAT).await),
        SignInLimits::DEFAULT.per_name_every
    );
}

#[tokio::test]
async fn a_class_of_sixty_behind_one_address_is_not_locked_out() {
    let (accounts, clock) = with_default_limits();
    let names: Vec<String> = (0..60).map(|i| format!("student{i:02}")).collect();
    for name in &names {
        accounts.create(name, PASSWORD, false).await.unwrap();
    }
    // The first minute of the class: everyone behind the school's NAT signs
    // in, and every one of them mistypes twice first.
    for (i, name) in names.iter().enumerate() {
        for typo in ["correct hose", "Correct horse"] {
            assert!(matches!(
                accounts.sign_in(name, typo, NAT).await,
                Err(AccountError::BadCredentials)
            ));
        }
        let signed_in = accounts.sign_in(name, PASSWORD, NAT).await;
        assert!(signed_in.is_ok(), "student {i}: {signed_in:?}");
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(accounts.signed_in().len(), 60);
}

#[tokio::test]
async fn one_address_spraying_many_names_is_slowed() {
    let (accounts, _clock) = with_default_limits();
    accounts.create("ada", PASSWORD, false).await.unwrap();
    for i in 0..SignInLimits::DEFAULT.per_address_burst {
        assert!(matches!(
            accounts
                .sign_in(&format!("name{i}"), "password1", NAT)
                .await,
            Err(AccountError::BadCredentials)
        ));
    }
    assert_eq!(
        retry_after(accounts.sign_in("another", "password1", NAT).await),
        SignInLimits::DEFAULT.per_address_every
    );
    // Someone at another address is not affected.
    accounts.sign_in("ada", PASSWORD, ELSEWHERE).await.unwrap();
}

/// The real parameters (the cost is the point), no sign-in limits (20
/// failures for one name would be refused otherwise).
fn real_costs(hash_concurrency: usize) -> Accounts {
    let config = AccountsConfig {
        password: PasswordParams::DEFAULT,
        sign_in_limits: SignInLimits::UNLIMITED,
        hash_concurrency,
        ..AccountsConfig::default()
    };
    Accounts::open(Path::new(":memory:"), config).unwrap()
}

/// The two tests that measure time take turns, so that neither's hashing
/// is the other's noise.
static COSTLY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn an_unknown_name_takes_as_long_as_a_wrong_password() {
    let _turn = COSTLY.lock().await;
    let accounts = real_costs(1);
    accounts.create("ada", PASSWORD, false).await.unwrap();
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, and in alternating order, so that whatever else the
    // machine does (and whichever goes first) slows both alike.
    for i in 0..60 {
        let unknown_name = i % 4 == 1 || i % 4 == 2;
        let name = if unknown_name {
            format!("nobody{i}")
        } else {
            "ada".into()
        };
        let start = Instant::now();
        let err = accounts
            .sign_in(&name, "wrong password", NAT)
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, AccountError::BadCredentials));
        if unknown_name {
            unknown.push(took);
        } else {
            wrong.push(took);
        }
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    println!("median wrong password {wrong:?}, unknown name {unknown:?}");
    // Both really hash: skipping the dummy hash for unknown names would
    // make them answer in microseconds.
    assert!(wrong >= Duration::from_millis(2), "{wrong:?}");
    let (fast, slow) = (wrong.min(unknown), wrong.max(unknown));
    // Within a third of each other: the real difference is one hash-map
    // lookup, the rest is the noise of a shared 2-core machine; a leak
    // worth the name (no hash, a cheaper one, two hashes) is far outside.
    assert!(
        fast.as_secs_f64() >= 0.67 * slow.as_secs_f64(),
        "wrong password {wrong:?} vs unknown name {unknown:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn hashing_leaves_the_async_thread_free() {
    let _turn = COSTLY.lock().await;
    // Heavier than the default (64 MiB, 3 passes), so that one hash is far
    // longer than any hiccup of a busy machine's scheduler.
    let config = AccountsConfig {
        password: PasswordParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            lanes: 1,
        },
        sign_in_limits: SignInLimits::UNLIMITED,
        hash_concurrency: 1,
        ..AccountsConfig::default()
    };
    let accounts = Accounts::open(Path::new(":memory:"), config).unwrap();
    accounts.create("ada", PASSWORD, false).await.unwrap();

    // A 1 ms timer on this runtime's only thread, recording the longest
    // gap between two of its ticks, until told to stop.
    let stop = Arc::new(tokio::sync::Notify::new());
    let ticker = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            let (mut last, mut longest, mut ticks) = (Instant::now(), Duration::ZERO, 0u32);
            let stopped = stop.notified();
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        let now = Instant::now();
                        longest = longest.max(now - last);
                        (last, ticks) = (now, ticks + 1);
                    }
                    () = &mut stopped => return (longest, ticks),
                }
            }
        }
    });
    tokio::task::yield_now().await;

    let start = Instant::now();
    let sign_ins = (0..4).map(|_| accounts.sign_in("ada", PASSWORD, NAT));
    for result in futures_util::future::join_all(sign_ins).await {
        result.unwrap();
    }
    let hashing = start.elapsed();
    stop.notify_one();
    let (longest, ticks) = ticker.await.unwrap();
    println!("four sign-ins {hashing:?}; {ticks} ticks, longest gap {longest:?}");

    // The four hashes ran one at a time (concurrency 1), so had any of them
    // run on this thread, the timer would have waited a quarter of the
    // whole time at least once. Measured against the same window, this
    // holds however slow a busy machine makes the hashes.
    assert!(longest < hashing / 8, "gap {longest:?} in {hashing:?}");
    // And the timer really ticked all along (at least every 10 ms on
    // average), so the gap is not small for want of ticks.
    assert!(
        f64::from(ticks) >= hashing.as_secs_f64() * 100.0,
        "{ticks} ticks in {hashing:?}"
    );
}
