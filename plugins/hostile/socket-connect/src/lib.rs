//! Attack: opens a raw TCP connection to `input.addr` and sends bytes.
use serde::Deserialize;
use std::io::Write;
use weir_sdk::{Context, Meta, Output, Step, StepError};

#[derive(Deserialize)]
struct Target {
    addr: String,
}

struct SocketConnect;

impl Step for SocketConnect {
    type Input = Target;
    type Output = String;

    fn meta() -> Meta {
        Meta::new("hostile-socket-connect", "1.0.0")
    }

    fn run(_ctx: &Context, target: Target) -> Result<Output<String>, StepError> {
        let mut stream = std::net::TcpStream::connect(&target.addr)
            .map_err(|e| StepError::fatal(format!("connect to {} failed: {e}", target.addr)))?;
        stream
            .write_all(b"exfiltrated")
            .map_err(|e| StepError::fatal(format!("write failed: {e}")))?;
        Ok(Output::new(format!("connected to {}", target.addr)))
    }
}

weir_sdk::export_step!(SocketConnect);
