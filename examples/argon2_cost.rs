//! What one password hash costs on this machine, for the parameters the
//! server uses and a few around them (the numbers behind "Argon2id
//! parameters" in `docs/decisions.md`).
//!
//! ```sh
//! cargo run --release --example argon2_cost            # 20 hashes each
//! cargo run --release --example argon2_cost -- 50      # 50 hashes each
//! ```
//!
//! Each set is hashed a few times to warm up, then `N` times on one thread,
//! the way the server runs each hash (one blocking-pool thread per hash,
//! one lane). It prints the median, the fastest and the slowest hash, what
//! verifying costs (the same work: a verification *is* a hash), and how long
//! a class of 60 signing in at the same moment waits for the last one with
//! the server's default hashing concurrency.

use std::time::{Duration, Instant};

use weebsockets::accounts::{
    PasswordParams, default_hash_concurrency, hash_blocking, verify_blocking,
};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("the argument is a number of hashes"))
        .unwrap_or(20);
    let sets = [
        (
            "m=46 MiB t=1: OWASP's first, the server's",
            PasswordParams::DEFAULT,
        ),
        (
            "m=19 MiB t=2: OWASP's second, argon2's own",
            params(19 * 1024, 2),
        ),
        ("m=12 MiB t=3: OWASP's third", params(12 * 1024, 3)),
        ("m=64 MiB t=1", params(64 * 1024, 1)),
        (
            "m=64 MiB t=3: RFC 9106's second, one lane",
            params(64 * 1024, 3),
        ),
        ("m=8 KiB t=1: tests only", PasswordParams::FAST_FOR_TESTS),
    ];
    let concurrency = default_hash_concurrency();
    println!(
        "{runs} hashes per set; {} cores, server hashes {concurrency} at a time\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "parameters", "median", "min", "max", "verify", "60 at once"
    );
    for (label, params) in sets {
        for _ in 0..3 {
            hash_blocking(&params, "warm-up password").expect("hashes");
        }
        let mut hashes = Vec::with_capacity(runs);
        let mut phc = None;
        for i in 0..runs {
            let password = format!("correct horse battery {i}");
            let start = Instant::now();
            phc = Some(hash_blocking(&params, &password).expect("hashes"));
            hashes.push(start.elapsed());
        }
        let phc = phc.expect("at least one hash");
        let mut verifies = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            assert!(!verify_blocking(&phc, "wrong password"));
            verifies.push(start.elapsed());
        }
        hashes.sort();
        verifies.sort();
        let median = hashes[hashes.len() / 2];
        let class = median * 60u32.div_ceil(concurrency as u32);
        println!(
            "{label:<44} {:>9} {:>9} {:>9} {:>9} {:>12}",
            ms(median),
            ms(hashes[0]),
            ms(hashes[hashes.len() - 1]),
            ms(verifies[verifies.len() / 2]),
            ms(class),
        );
    }
}

fn params(memory_kib: u32, iterations: u32) -> PasswordParams {
    PasswordParams {
        memory_kib,
        iterations,
        lanes: 1,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
