//! What one simulated browser received, checked against what was sent.
//!
//! Senders put a stamp in every message's text — this run's id, and the
//! microsecond they posted it — so a receiver can compute the delivery
//! latency from the text alone. Each client keeps a [`Tally`]: which ids it
//! got and how often (duplicates), whether an id came after a higher one
//! (out of order), and the latency of each message posted inside the
//! measurement window. Loss is decided at the end, against the ids the
//! server acknowledged to the senders.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Deserialize;

/// One message as every transport delivers it (other fields ignored).
#[derive(Debug, Deserialize)]
pub struct Msg {
    pub id: u64,
    pub text: String,
    /// The server's wall clock when it stored the message, ms.
    #[serde(default)]
    pub sent_at: u64,
}

/// A polling or long-polling answer.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub messages: Vec<Msg>,
    pub last_id: u64,
}

/// A WebSocket text frame from the server.
#[derive(Debug, Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: Option<Msg>,
}

/// Microseconds since the Unix epoch (the clock `sent_at` is on).
pub fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The text of the `seq`-th message of run `run`, posted at `t_us`.
pub fn stamp(run: &str, t_us: u64, seq: u64) -> String {
    format!("lg-{run} {t_us} #{seq}")
}

/// The post time in a stamped text of run `run`.
pub fn parse_stamp(run: &str, text: &str) -> Option<u64> {
    let rest = text
        .strip_prefix("lg-")?
        .strip_prefix(run)?
        .strip_prefix(' ')?;
    rest.split(' ').next()?.parse().ok()
}

/// Most ids one client tracks (the rest are ignored): bounds memory.
const MAX_TRACKED: u64 = 1 << 22;

/// One client's record of deliveries.
#[derive(Debug, Default)]
pub struct Tally {
    run: Arc<str>,
    /// Ids at or below this are older than the scenario.
    base: u64,
    /// Deliveries of id `base + 1 + i` (saturating).
    counts: Vec<u8>,
    /// Highest id received; mirrored into `high_shared` so the coordinator
    /// can see when every client has caught up.
    high: u64,
    high_shared: Arc<AtomicU64>,
    /// Posted-at window `[from, to)` whose messages are timed.
    window: (u64, u64),
    pub duplicates: u64,
    pub out_of_order: u64,
    /// (id, latency µs) of the first receipt of each timed message.
    pub samples: Vec<(u64, u64)>,
    /// Receipt wall-clock time minus the message's `sent_at` (the server's
    /// clock when it stored the message), µs, for the timed messages: the
    /// delivery alone, without the time it took to store the message.
    /// Millisecond resolution, since `sent_at` is in ms.
    pub after_store_us: Vec<u64>,
    /// Deliveries (duplicates included) received inside the window.
    pub receipts_in_window: u64,
    /// Response times of immediate polls answered inside the window, µs.
    pub rtt_us: Vec<u64>,
}

impl Tally {
    pub fn new(run: Arc<str>, base: u64, window: (u64, u64), high: Arc<AtomicU64>) -> Tally {
        high.store(base, Relaxed);
        Tally {
            run,
            base,
            high: base,
            high_shared: high,
            window,
            ..Tally::default()
        }
    }

    pub fn in_window(&self, t_us: u64) -> bool {
        self.window.0 <= t_us && t_us < self.window.1
    }

    /// Records one delivered message, received at `now_us`.
    pub fn record(&mut self, m: &Msg, now_us: u64) {
        let (id, text) = (m.id, m.text.as_str());
        if id <= self.base || id - self.base > MAX_TRACKED {
            return;
        }
        let i = (id - self.base - 1) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        if self.counts[i] > 0 {
            self.duplicates += 1;
        } else if id < self.high {
            self.out_of_order += 1;
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        if self.in_window(now_us) {
            self.receipts_in_window += 1;
        }
        if self.counts[i] == 1
            && let Some(sent) = parse_stamp(&self.run, text)
            && self.in_window(sent)
        {
            self.samples.push((id, now_us.saturating_sub(sent)));
            if m.sent_at > 0 {
                self.after_store_us
                    .push(wall_clock_us().saturating_sub(m.sent_at * 1000));
            }
        }
        if id > self.high {
            self.high = id;
            self.high_shared.store(id, Relaxed);
        }
    }

    /// The cursor a careful client resumes from.
    pub fn high(&self) -> u64 {
        self.high
    }

    /// How many of `expected` this client never received.
    pub fn lost(&self, expected: &[u64]) -> u64 {
        expected
            .iter()
            .filter(|&&id| {
                id > self.base
                    && self
                        .counts
                        .get((id - self.base - 1) as usize)
                        .is_none_or(|&c| c == 0)
            })
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let text = stamp("ab12", 123_456, 7);
        assert_eq!(parse_stamp("ab12", &text), Some(123_456));
        assert_eq!(parse_stamp("other", &text), None);
        assert_eq!(parse_stamp("ab12", "hello"), None);
    }

    #[test]
    fn counts_duplicates_order_and_loss() {
        let mut t = Tally::new("r".into(), 10, (0, 1_000), Arc::default());
        let m = |id, seq| Msg {
            id,
            text: stamp("r", 100, seq),
            sent_at: 0,
        };
        t.record(&m(11, 1), 150);
        t.record(&m(13, 3), 160);
        t.record(&m(12, 2), 170);
        t.record(&m(13, 3), 180);
        assert_eq!((t.duplicates, t.out_of_order), (1, 1));
        assert_eq!(t.lost(&[11, 12, 13, 14]), 1);
        assert_eq!(t.samples, vec![(11, 50), (13, 60), (12, 70)]);
        assert_eq!(t.receipts_in_window, 4);
        assert_eq!(t.high(), 13);
    }
}
