//! The guest's stdout and stderr, captured into bounded buffers.
//!
//! Nothing is inherited from the host process. Bytes past `Limits::stdio_bytes` are counted
//! and dropped rather than failing the write, so a chatty guest neither traps nor grows the
//! host's memory.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: u64,
    limit: usize,
}

/// One captured stream; clones share the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct Capture(Arc<Mutex<Buffer>>);

impl Capture {
    pub(crate) fn new(limit: u64) -> Self {
        Self(Arc::new(Mutex::new(Buffer {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            ..Buffer::default()
        })))
    }

    fn write(&self, data: &[u8]) {
        let mut buf = self.0.lock().expect("capture poisoned");
        let room = buf.limit.saturating_sub(buf.bytes.len());
        let kept = data.len().min(room);
        buf.bytes.extend_from_slice(&data[..kept]);
        buf.dropped += (data.len() - kept) as u64;
    }

    /// The kept text (lossily decoded) and the number of bytes dropped.
    pub(crate) fn take(&self) -> (String, u64) {
        let mut buf = self.0.lock().expect("capture poisoned");
        let text = String::from_utf8_lossy(&buf.bytes).into_owned();
        buf.bytes.clear();
        (text, buf.dropped)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_limit_and_counts_the_rest() {
        let capture = Capture::new(5);
        capture.write(b"hello world");
        capture.write(b"!");
        assert_eq!(capture.take(), ("hello".to_string(), 7));
    }
}
