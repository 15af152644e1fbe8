/// Timing must not tell which names exist. With the real Argon2id
/// parameters (no `--insecure-fast-passwords`), a sign-in with a wrong
/// password for a real account and one with a name nobody has are timed
/// over HTTP, interleaved, 30 of each, next to a request that goes the
/// same way but hashes nothing. Both kinds of failure cost one hash; their
/// medians must differ by far less than a hash does.
use std::time::{Duration, Instant};

mod common;

use common::accounts::*;
use serde_json::{Value, json};

const ROUNDS: usize = 30;

#[derive(Clone, Copy, Debug)]
enum Try {
    /// A real account, a wrong password: one verification.
    WrongPassword,
    /// A name with no account: one verification, against the dummy hash.
    UnknownName,
    /// The same request with no password in the body: refused (400)
    /// before any hashing. What a request costs without the hash.
    NoHash,
}

use Try::*;

/// Every order of the three, so that whatever the machine does meanwhile
/// (another build starting, the CPU clocking down) falls on each kind
/// alike, and none always goes first.
const ORDERS: [[Try; 3]; 6] = [
    [WrongPassword, UnknownName, NoHash],
    [UnknownName, NoHash, WrongPassword],
    [NoHash, WrongPassword, UnknownName],
    [UnknownName, WrongPassword, NoHash],
    [WrongPassword, NoHash, UnknownName],
    [NoHash, UnknownName, WrongPassword],
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn an_unknown_name_costs_what_a_wrong_password_costs() {
    // The real costs: this is the one test that must not use
    // --insecure-fast-passwords.
    let server = common::start_with(|c| c.insecure_fast_passwords = false);
    let mut browser = Browser::new(&server);
    // One account per round: a name gets five failures before the
    // sign-in throttle steps in, and this test is about time, not about
    // the throttle. (60 failures from one address are well within its
    // 200.)
    for round in 0..ROUNDS {
        Browser::new(&server)
            .sign_up(&format!("student{round}"), PASSWORD)
            .await
            .expect(201, "");
    }

    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut answers: Vec<Value> = Vec::new();
    for round in 0..ROUNDS {
        for kind in ORDERS[round % ORDERS.len()] {
            let body = match kind {
                WrongPassword => {
                    json!({"name": format!("student{round}"), "password": "not the password"})
                }
                UnknownName => {
                    json!({"name": format!("nobody{round}"), "password": "not the password"})
                }
                NoHash => json!({"name": format!("student{round}")}),
            };
            let start = Instant::now();
            let answer = browser.post("/api/session", body).await;
            let took = start.elapsed();
            match kind {
                NoHash => {
                    answer.expect(400, "bad_json");
                }
                _ => {
                    answer.expect(401, "bad_credentials");
                    answers.push(answer.body.clone());
                }
            }
            times[kind as usize].push(took);
        }
    }
    // Same answer, every time.
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");

    let [wrong, unknown, no_hash] = times.map(median);
    // What verifying a real account's password costs.
    let hash = wrong.saturating_sub(no_hash);
    let apart = wrong.abs_diff(unknown);
    println!(
        "medians of {ROUNDS}: wrong password {wrong:?}, unknown name {unknown:?}, \
         no hash {no_hash:?}; one hash ≈ {hash:?}, the two failures {apart:?} apart"
    );
    // The real costs are in use: tens of milliseconds (a toy hash would
    // make the comparison below meaningless).
    assert!(
        hash >= Duration::from_millis(5),
        "one hash is only {hash:?}"
    );
    // A leak worth the name — no hash for unknown names (their median
    // would sit next to the no-hash one), a cheaper dummy, two
    // verifications for a real account — is a whole hash of difference. What is left (a hash-map lookup) is microseconds; the
    // rest is the noise of a shared machine, which the medians of
    // interleaved tries keep well under half a hash.
    assert!(
        apart <= hash / 2,
        "wrong password {wrong:?} vs unknown name {unknown:?}: {apart:?} apart, one hash {hash:?}"
    );
}
