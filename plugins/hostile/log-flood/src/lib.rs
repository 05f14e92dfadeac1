//! Attack: floods the structured log with `input.lines` lines (default 200,000) and writes
//! `input.stdout_bytes` (default 64 MiB) to stdout and stderr, then succeeds.
use serde::Deserialize;
use std::io::Write;
use weir_sdk::{Context, Meta, Output, Step, StepError, log};

#[derive(Deserialize)]
struct Flood {
    #[serde(default = "default_lines")]
    lines: u64,
    #[serde(default = "default_stdout_bytes")]
    stdout_bytes: u64,
}

fn default_lines() -> u64 {
    200_000
}

fn default_stdout_bytes() -> u64 {
    64 << 20
}

struct LogFlood;

impl Step for LogFlood {
    type Input = Flood;
    type Output = u64;

    fn meta() -> Meta {
        Meta::new("hostile-log-flood", "1.0.0")
    }

    fn run(_ctx: &Context, flood: Flood) -> Result<Output<u64>, StepError> {
        for i in 0..flood.lines {
            log::info(&format!("flood line {i} {}", "z".repeat(100)));
        }
        let chunk = vec![b'o'; 64 * 1024];
        let mut written = 0;
        while written < flood.stdout_bytes {
            let _ = std::io::stdout().write_all(&chunk);
            let _ = std::io::stderr().write_all(&chunk);
            written += chunk.len() as u64;
        }
        Ok(Output::new(flood.lines))
    }
}

weir_sdk::export_step!(LogFlood);
