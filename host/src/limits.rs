//! Per-step resource limits, and the host-wide ceilings that clamp them.

use std::time::Duration;

use serde::Serialize;

/// Default wall-clock budget of one attempt: long enough for real work, short enough that a
/// stuck step is noticed quickly.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default linear-memory budget of one attempt.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Default largest output payload; protects the journal and downstream steps.
pub const DEFAULT_OUTPUT_BYTES: u64 = 1024 * 1024;
/// Default number of structured log lines one attempt may emit before lines are dropped.
pub const DEFAULT_LOG_LINES: u64 = 1_000;
/// Default bytes of structured log one attempt may emit before lines are dropped.
pub const DEFAULT_LOG_BYTES: u64 = 256 * 1024;
/// Default bytes of stdout and of stderr kept per attempt; the rest is counted and dropped.
pub const DEFAULT_STDIO_BYTES: u64 = 64 * 1024;
/// Default outgoing HTTP requests one attempt may make; stops request loops.
pub const DEFAULT_HTTP_REQUESTS: u64 = 32;
/// Table elements a guest may grow to; guards host memory against table-growth bombs.
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Host-side resources one attempt may hold at once: open files and directories, streams,
/// pollables, HTTP requests, responses and header `fields`. Each is host memory (and, for a
/// file, a descriptor) outside the step's linear memory; past the bound the call that would
/// make one more traps. As many as a process gets descriptors by default on Linux, which is
/// why `weir` raises its own descriptor limit at startup ([`raise_descriptor_limit`]).
pub const MAX_HOST_RESOURCES: usize = 1_024;
/// Bytes one HTTP header `fields` resource may hold on the host (its in-memory size). With
/// [`MAX_HOST_RESOURCES`] this bounds what headers a step builds can make the host hold:
/// 32 MiB beside the step's memory limit.
pub const MAX_HTTP_FIELDS_BYTES: usize = 32 * 1024;

/// Bytes of one chunk an outgoing HTTP body takes from the step before the connection sends
/// it; a body holds at most two on the host (one being sent, one waiting). wasi-http's own
/// default is 1 MiB, which let a step hold 2 MiB of host memory per unsent request.
pub const OUTGOING_BODY_CHUNK_BYTES: usize = 32 * 1024;

/// Bytes of one attempt's replay tape: its clock reads, random bytes and HTTP exchanges
/// (response bodies as the step read them). Past it the tape stops and says why, and the
/// run cannot be replayed; the attempt itself is not affected.
pub const REPLAY_TAPE_BYTES: u64 = 4 * 1024 * 1024;

/// Raises the process's soft limit on open descriptors to its hard limit, as servers do. The
/// usual soft default (1,024) is what a single attempt may hold in host resources, and a host
/// holds many attempts, connections and its journal at once. Returns the limit now in force.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Descriptors a `weir serve` process keeps beyond its steps and connections: the journal
/// and its WAL, the listener, the database pool, logs and the plugin watcher.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The descriptors a `weir serve` host may need at worst: each of `workers` runs executing
/// `max_parallel` steps at once, each holding [`MAX_HOST_RESOURCES`], with `connections`
/// open and [`RESERVED_DESCRIPTORS`] beside them. Past the process's limit, a host whose
/// steps all hoard files could no longer accept a connection or open its journal.
pub fn descriptors_needed(workers: usize, max_parallel: usize, connections: usize) -> u64 {
    let steps = (workers as u64).saturating_mul(max_parallel as u64);
    steps
        .saturating_mul(MAX_HOST_RESOURCES as u64)
        .saturating_add(connections as u64)
        .saturating_add(RESERVED_DESCRIPTORS)
}

/// The soft limit on open descriptors now in force (`ulimit -n`).
pub fn descriptor_limit() -> std::io::Result<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft)
}

/// What one attempt may consume. `fuel: None` means no instruction metering: the attempt is
/// bounded by its timeout alone and runs on the engine without fuel instrumentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Instructions ("fuel") the attempt may execute; `None` disables metering.
    pub fuel: Option<u64>,
    /// Wall-clock time for the whole attempt, host calls included.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Bytes of linear memory (all memories together).
    pub memory_bytes: u64,
    /// Bytes of output payload.
    pub output_bytes: u64,
    /// Structured log lines.
    pub log_lines: u64,
    /// Structured log bytes.
    pub log_bytes: u64,
    /// Bytes kept of stdout, and separately of stderr.
    pub stdio_bytes: u64,
    /// Outgoing HTTP requests.
    pub http_requests: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: None,
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            output_bytes: DEFAULT_OUTPUT_BYTES,
            log_lines: DEFAULT_LOG_LINES,
            log_bytes: DEFAULT_LOG_BYTES,
            stdio_bytes: DEFAULT_STDIO_BYTES,
            http_requests: DEFAULT_HTTP_REQUESTS,
        }
    }
}

impl Limits {
    /// The host-wide ceilings used when none are configured: generous, but finite.
    pub fn default_ceilings() -> Self {
        Self {
            fuel: None,
            timeout: Duration::from_secs(15 * 60),
            memory_bytes: 4 * 1024 * 1024 * 1024,
            output_bytes: 64 * 1024 * 1024,
            log_lines: 100_000,
            log_bytes: 16 * 1024 * 1024,
            stdio_bytes: 16 * 1024 * 1024,
            http_requests: 10_000,
        }
    }

    /// These limits with every value lowered to at most the ceiling's. A ceiling with fuel
    /// forces metering on every step, so no step can opt out of it.
    pub fn clamped_to(&self, ceiling: &Limits) -> Limits {
        let fuel = match (self.fuel, ceiling.fuel) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Limits {
            fuel,
            timeout: self.timeout.min(ceiling.timeout),
            memory_bytes: self.memory_bytes.min(ceiling.memory_bytes),
            output_bytes: self.output_bytes.min(ceiling.output_bytes),
            log_lines: self.log_lines.min(ceiling.log_lines),
            log_bytes: self.log_bytes.min(ceiling.log_bytes),
            stdio_bytes: self.stdio_bytes.min(ceiling.stdio_bytes),
            http_requests: self.http_requests.min(ceiling.http_requests),
        }
    }
}

/// `64MiB`, `1GB`, `4096` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("{text:?} is not a size such as 64MiB or 1GB"))
}

/// `2s`, `500ms`, `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 2s or 500ms: {e}"))?;
    if d.is_zero() {
        return Err(
            "a timeout of zero would stop every step at once; give a positive duration".into(),
        );
    }
    Ok(d)
}

/// Serializes durations as humantime strings ("1s 500ms") so reports read naturally.
mod humantime_serde_compat {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping_lowers_every_limit_to_the_ceiling() {
        let wanted = Limits {
            fuel: Some(10),
            timeout: Duration::from_secs(100),
            memory_bytes: 1 << 40,
            ..Limits::default()
        };
        let ceiling = Limits {
            fuel: Some(5),
            timeout: Duration::from_secs(1),
            memory_bytes: 1 << 20,
            ..Limits::default_ceilings()
        };
        let clamped = wanted.clamped_to(&ceiling);
        assert_eq!(clamped.fuel, Some(5));
        assert_eq!(clamped.timeout, Duration::from_secs(1));
        assert_eq!(clamped.memory_bytes, 1 << 20);
    }

    #[test]
    fn a_ceiling_with_fuel_forces_metering() {
        let ceiling = Limits {
            fuel: Some(7),
            ..Limits::default_ceilings()
        };
        assert_eq!(Limits::default().clamped_to(&ceiling).fuel, Some(7));
        assert_eq!(
            Limits::default()
                .clamped_to(&Limits::default_ceilings())
                .fuel,
            None
        );
    }
}
