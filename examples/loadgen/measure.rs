//! Clocks, latency percentiles, and the server's CPU and memory read from
//! `/proc`.
//!
//! Latency is measured inside this one process: a sender writes the time
//! it posts a message into the message's text, and whichever client
//! receives it subtracts that from the time of receipt. One monotonic clock
//! on both ends, so no clock skew.
//!
//! The server's cost comes from the kernel's accounting for its process:
//! `/proc/<pid>/stat` fields 14 and 15 (`utime`, `stime`, in clock ticks)
//! for CPU time, and `VmRSS` in `/proc/<pid>/status` for resident memory.
//! The load generator reads its own `/proc/self/stat` too, to show that it
//! was not the bottleneck.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The load generator's epoch: every timestamp is microseconds since it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the load generator started.
pub fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// The `Instant` of a timestamp from [`now_us`].
pub fn instant_of(us: u64) -> tokio::time::Instant {
    (epoch() + Duration::from_micros(us)).into()
}

/// Percentiles of a set of latencies in microseconds, reported in ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles (the value at or below which p% of the
    /// samples fall). Sorts `samples`.
    pub fn of(samples: &mut [u64]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[i.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        let sum: u64 = samples.iter().sum();
        Percentiles {
            count: samples.len(),
            mean: sum as f64 / samples.len() as f64 / 1000.0,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: *samples.last().unwrap_or(&0) as f64 / 1000.0,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count, "mean_ms": round(self.mean), "p50_ms": round(self.p50),
            "p95_ms": round(self.p95), "p99_ms": round(self.p99), "max_ms": round(self.max),
        })
    }
}

/// Three decimals is plenty for milliseconds.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`).
fn clock_tick() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 overall are 12 and 13 counted from field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_tick())
}

/// Resident memory of a process in KiB (`VmRSS`).
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Watches the server process (when its pid is known) and this one:
/// samples the server's RSS every 100 ms to catch the peak, and reads CPU
/// time on demand.
#[derive(Clone)]
pub struct Monitor {
    pub server_pid: Option<String>,
    peak_rss: Arc<AtomicU64>,
}

/// CPU times at one moment, to subtract.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuMark {
    pub server: Option<f64>,
    pub loadgen: f64,
    pub at: Option<Instant>,
}

/// Resource use over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub seconds: f64,
    pub server_cpu_s: Option<f64>,
    pub loadgen_cpu_s: f64,
    pub server_peak_rss_kib: Option<u64>,
}

impl Monitor {
    /// Starts the sampler (it stops when the runtime does).
    pub fn start(server_pid: Option<u32>) -> Monitor {
        let monitor = Monitor {
            server_pid: server_pid.map(|p| p.to_string()),
            peak_rss: Arc::new(AtomicU64::new(0)),
        };
        if let Some(pid) = monitor.server_pid.clone() {
            let peak = Arc::clone(&monitor.peak_rss);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                // Bounded: the sampler ends with the process, or when the
                // server is gone.
                while let Some(rss) = rss_kib(&pid) {
                    peak.fetch_max(rss, Relaxed);
                    tick.tick().await;
                }
            });
        }
        monitor
    }

    pub fn mark(&self) -> CpuMark {
        CpuMark {
            server: self.server_pid.as_deref().and_then(cpu_seconds),
            loadgen: cpu_seconds("self").unwrap_or(0.0),
            at: Some(Instant::now()),
        }
    }

    /// Forgets the peak so far (call at the start of a phase).
    pub fn reset_peak(&self) {
        let now = self.server_pid.as_deref().and_then(rss_kib).unwrap_or(0);
        self.peak_rss.store(now, Relaxed);
    }

    pub fn rss_now(&self) -> Option<u64> {
        self.server_pid.as_deref().and_then(rss_kib)
    }

    /// Resource use between two marks, and the RSS peak since the last
    /// [`Monitor::reset_peak`].
    pub fn usage(&self, from: CpuMark, to: CpuMark) -> Usage {
        let seconds = match (from.at, to.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        Usage {
            seconds,
            server_cpu_s: match (from.server, to.server) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            loadgen_cpu_s: to.loadgen - from.loadgen,
            server_peak_rss_kib: self
                .server_pid
                .as_ref()
                .map(|_| self.peak_rss.load(Relaxed)),
        }
    }
}

impl Usage {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "window_s": round(self.seconds),
            "server_cpu_s": self.server_cpu_s.map(round),
            "server_cpu_pct": self.server_cpu_s.map(|c| round(100.0 * c / self.seconds.max(1e-9))),
            "loadgen_cpu_s": round(self.loadgen_cpu_s),
            "loadgen_cpu_pct": round(100.0 * self.loadgen_cpu_s / self.seconds.max(1e-9)),
            "server_peak_rss_kib": self.server_peak_rss_kib,
        })
    }

    /// "server 0.42 s CPU (21%), peak 12.3 MiB; loadgen 0.30 s (15%)"
    pub fn line(&self) -> String {
        let server = match (self.server_cpu_s, self.server_peak_rss_kib) {
            (Some(cpu), Some(rss)) => format!(
                "server {cpu:.2} s CPU ({:.0}%), peak RSS {:.1} MiB; ",
                100.0 * cpu / self.seconds.max(1e-9),
                rss as f64 / 1024.0
            ),
            _ => String::from("server CPU/RSS: give --server-pid; "),
        };
        format!(
            "{server}loadgen {:.2} s CPU ({:.0}%)",
            self.loadgen_cpu_s,
            100.0 * self.loadgen_cpu_s / self.seconds.max(1e-9)
        )
    }
}
