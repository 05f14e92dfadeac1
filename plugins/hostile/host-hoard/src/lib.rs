//! Attack: makes the host hold what the step's memory limit does not count, as much as it
//! can, per `input.attack`:
//! - `sockets`: creates `input.count` TCP sockets (no grant), keeping them open;
//! - `files`: opens `input.path` `input.count` times, keeping every descriptor;
//! - `fields`: creates `input.count` HTTP header `fields` of 16 KiB each, keeping them;
//! - `bodies`: creates `input.count` outgoing HTTP requests (never sent) and writes into
//!   each one's body as much as the host takes without blocking, keeping them all; says how
//!   many bytes the host took;
//! - `disk`: writes `input.count` bytes to `input.path`/big, then makes `input.files` empty
//!   files there, then (with `input.sparse`) a 1 TiB sparse file.
use serde::Deserialize;
use serde_json::{Value, json};
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Attack {
    attack: String,
    count: usize,
    #[serde(default)]
    path: String,
    #[serde(default)]
    files: usize,
    #[serde(default)]
    sparse: bool,
}

struct HostHoard;

impl Step for HostHoard {
    type Input = Attack;
    type Output = Value;

    fn meta() -> Meta {
        Meta::new("hostile-host-hoard", "1.0.0")
    }

    fn run(_ctx: &Context, attack: Attack) -> Result<Output<Value>, StepError> {
        match attack.attack.as_str() {
            "sockets" => {
                let (mut held, mut refused) = (Vec::new(), 0);
                for _ in 0..attack.count {
                    match std::net::TcpListener::bind("127.0.0.1:0") {
                        Ok(socket) => held.push(socket),
                        Err(_) => refused += 1,
                    }
                }
                Ok(Output::new(json!({"held": held.len(), "refused": refused})))
            }
            "files" => {
                let mut held = Vec::new();
                for _ in 0..attack.count {
                    let file = std::fs::File::open(&attack.path)
                        .map_err(|e| StepError::fatal(format!("open failed: {e}")))?;
                    held.push(file);
                }
                Ok(Output::new(json!({"held": held.len()})))
            }
            "fields" => {
                use wasip2::http::types::Fields;
                let value = vec![b'v'; 16 * 1024];
                let mut held = Vec::new();
                for i in 0..attack.count {
                    let fields = Fields::new();
                    let _ = fields.append(&format!("x-hoard-{i}"), &value);
                    held.push(fields);
                }
                Ok(Output::new(json!({"held": held.len()})))
            }
            "bodies" => {
                use wasip2::http::types::{Fields, OutgoingRequest};
                let chunk = vec![b'b'; 1 << 20];
                let (mut held, mut buffered) = (Vec::new(), 0u64);
                for _ in 0..attack.count {
                    let request = OutgoingRequest::new(Fields::new());
                    let body = request.body().map_err(|()| StepError::fatal("no body"))?;
                    let stream = body
                        .write()
                        .map_err(|()| StepError::fatal("no body stream"))?;
                    while let Ok(room) = stream.check_write() {
                        let n = room.min(chunk.len() as u64) as usize;
                        if n == 0 || stream.write(&chunk[..n]).is_err() {
                            break;
                        }
                        buffered += n as u64;
                    }
                    // Kept children first, so they are dropped before what owns them.
                    held.push((stream, body, request));
                }
                Ok(Output::new(
                    json!({"held": held.len(), "buffered": buffered}),
                ))
            }
            "disk" => {
                use std::io::Write;
                let dir = std::path::Path::new(&attack.path);
                let mut big = std::fs::File::create(dir.join("big"))
                    .map_err(|e| StepError::fatal(format!("create failed: {e}")))?;
                let chunk = vec![b'x'; 64 * 1024];
                let mut written = 0;
                while written < attack.count {
                    big.write_all(&chunk)
                        .map_err(|e| StepError::fatal(format!("write failed: {e}")))?;
                    written += chunk.len();
                }
                for i in 0..attack.files {
                    std::fs::File::create(dir.join(format!("f{i}")))
                        .map_err(|e| StepError::fatal(format!("create failed: {e}")))?;
                }
                if attack.sparse {
                    std::fs::File::create(dir.join("sparse"))
                        .and_then(|f| f.set_len(1 << 40))
                        .map_err(|e| StepError::fatal(format!("set_len failed: {e}")))?;
                }
                Ok(Output::new(
                    json!({"written": written, "files": attack.files}),
                ))
            }
            other => Err(StepError::invalid_input(format!(
                "unknown attack {other:?}"
            ))),
        }
    }
}

weir_sdk::export_step!(HostHoard);
