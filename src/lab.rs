//! The teacher's network lab: inject latency, jitter or an outage into
//! every transport, live, to make the failure modes visible.
//!
//! * **Latency** delays every delivery: the answer of a polling GET or long
//!   poll, and every WebSocket/SSE frame.
//! * **Jitter** adds a random extra delay (0..=jitter) to each delivery.
//!   This is what breaks setInterval polling: its requests overlap, so a
//!   later request can overtake an earlier one and the page receives old
//!   news after new news. setTimeout polling never has two requests in
//!   flight, so it cannot be overtaken. On a WebSocket or SSE stream frames
//!   are delayed *without* being reordered — TCP would never reorder them
//!   either — see [`OrderedDelay`].
//! * **Outage** makes the transport endpoints answer `503` and closes open
//!   WebSocket and SSE connections, so the class can watch each client
//!   notice, back off, retry and recover.
//!
//! The delay is applied *after* the server has read the log, as if the
//! answer were slow on the wire: that is what makes stale answers arrive
//! late.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

/// The largest latency or jitter the lab accepts, in milliseconds.
pub const MAX_DELAY_MS: u64 = 30_000;

/// The lab's settings, as `GET /api/lab` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSettings {
    /// Fixed delay added to every delivery.
    pub latency_ms: u64,
    /// Up to this much random delay on top of `latency_ms`.
    pub jitter_ms: u64,
    /// When true, the transport endpoints are "down".
    pub outage: bool,
}

/// A `PUT /api/lab` body: every field optional, missing fields keep their
/// value (merge semantics, per the contract).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabChange {
    /// New latency, if given.
    pub latency_ms: Option<u64>,
    /// New jitter, if given.
    pub jitter_ms: Option<u64>,
    /// New outage state, if given.
    pub outage: Option<bool>,
}

/// Shared handle to the lab; cheap to clone.
#[derive(Clone)]
pub struct Lab {
    settings: watch::Sender<LabSettings>,
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Lab {
    /// A lab with everything off.
    pub fn new() -> Lab {
        Lab {
            settings: watch::channel(LabSettings::default()).0,
        }
    }

    /// The current settings.
    pub fn settings(&self) -> LabSettings {
        *self.settings.borrow()
    }

    /// Merges `change` into the settings; returns the result, or which field
    /// is out of bounds.
    pub fn apply(&self, change: LabChange) -> Result<LabSettings, String> {
        for (name, value) in [
            ("latency_ms", change.latency_ms),
            ("jitter_ms", change.jitter_ms),
        ] {
            if value.is_some_and(|v| v > MAX_DELAY_MS) {
                return Err(format!("{name} must be between 0 and {MAX_DELAY_MS}"));
            }
        }
        let mut result = LabSettings::default();
        self.settings.send_modify(|s| {
            if let Some(v) = change.latency_ms {
                s.latency_ms = v;
            }
            if let Some(v) = change.jitter_ms {
                s.jitter_ms = v;
            }
            if let Some(v) = change.outage {
                s.outage = v;
            }
            result = *s;
        });
        Ok(result)
    }

    /// True while the outage is on.
    pub fn outage(&self) -> bool {
        self.settings.borrow().outage
    }

    /// Resolves when the outage is (or already was) switched on.
    pub fn outage_started(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut rx = self.settings.subscribe();
        async move {
            if rx.wait_for(|s| s.outage).await.is_err() {
                // The lab is gone (server stopping): never resolve.
                std::future::pending::<()>().await;
            }
        }
    }

    /// One delivery's delay: latency plus a random share of the jitter.
    pub fn sample_delay(&self) -> Duration {
        let s = self.settings();
        let jitter = if s.jitter_ms > 0 {
            rand::random_range(0..=s.jitter_ms)
        } else {
            0
        };
        Duration::from_millis(s.latency_ms + jitter)
    }
}

/// Delays a stream of frames by the lab's latency and jitter while keeping
/// their order: a frame is never due before the frame ahead of it.
///
/// Each WebSocket and SSE connection owns one.
#[derive(Debug, Default)]
pub struct OrderedDelay {
    last_due: Option<Instant>,
}

impl OrderedDelay {
    /// When the next frame may be sent; `None` means "now" (no delay is
    /// configured and nothing earlier is still waiting).
    pub fn due(&mut self, lab: &Lab) -> Option<Instant> {
        let delay = lab.sample_delay();
        let now = Instant::now();
        let earliest = self.last_due.filter(|due| *due > now);
        if delay.is_zero() && earliest.is_none() {
            return None;
        }
        let due = (now + delay).max(earliest.unwrap_or(now));
        self.last_due = Some(due);
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_fields_left_out() {
        let lab = Lab::new();
        lab.apply(LabChange {
            latency_ms: Some(100),
            jitter_ms: Some(50),
            outage: None,
        })
        .unwrap();
        let s = lab
            .apply(LabChange {
                outage: Some(true),
                ..LabChange::default()
            })
            .unwrap();
        assert_eq!(
            s,
            LabSettings {
                latency_ms: 100,
                jitter_ms: 50,
                outage: true
            }
        );
        assert!(
            lab.apply(LabChange {
                jitter_ms: Some(MAX_DELAY_MS + 1),
                ..LabChange::default()
            })
            .is_err()
        );
        assert_eq!(lab.settings(), s, "a refused change changes nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn ordered_delay_never_reorders() {
        let lab = Lab::new();
        lab.apply(LabChange {
            latency_ms: Some(10),
            jitter_ms: Some(1_000),
            outage: None,
        })
        .unwrap();
        let mut delay = OrderedDelay::default();
        let mut previous = Instant::now();
        for _ in 0..1_000 {
            let due = delay.due(&lab).expect("a delay is configured");
            assert!(due >= previous);
            previous = due;
        }
    }
}
