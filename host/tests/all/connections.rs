//! `weir serve`'s connections over real sockets: a half-sent request is closed after the
//! header timeout, an idle keep-alive connection after the idle timeout, and at the
//! connection cap new connections (a probe's) are still answered: at once when a
//! connection is idle, once one closes when none is.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::serve::Sidecar;

const HEADER_TIMEOUT: Duration = Duration::from_millis(800);
const IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

async fn sidecar(max_connections: usize) -> Sidecar {
    Sidecar::start(|config, _| {
        config.header_timeout = HEADER_TIMEOUT;
        config.idle_timeout = IDLE_TIMEOUT;
        config.max_connections = max_connections;
    })
    .await
}

fn addr(s: &Sidecar) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Instant) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&seen).into(), Instant::now()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

/// Sends a complete request and reads its answer, leaving the connection open.
async fn request_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: weir\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `GET /healthz` on a new connection, within `limit`.
async fn probe(s: &Sidecar, limit: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::builder().timeout(limit).build().unwrap();
    let r = client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/healthz got no answer in {limit:?}: {e}"));
    assert_eq!(r.status(), StatusCode::OK);
    started.elapsed()
}

#[tokio::test]
async fn half_sent_and_idle_connections_are_closed_on_time() {
    let s = sidecar(64).await;

    // A request whose header never ends: closed after the header timeout.
    let mut half = TcpStream::connect(addr(&s)).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: weir\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    // A connection that says nothing at all is held to the header timeout too.
    let mut silent = TcpStream::connect(addr(&s)).await.unwrap();
    // A keep-alive connection that goes idle after one answer.
    let mut idle = TcpStream::connect(addr(&s)).await.unwrap();
    let answer = request_on(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answered = Instant::now();

    let (_, closed) = until_closed(&mut half, Duration::from_secs(10)).await;
    let waited = closed - sent;
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_millis(50) && waited < HEADER_TIMEOUT * 4,
        "a half-sent request was closed after {waited:?}, the header timeout is {HEADER_TIMEOUT:?}"
    );
    let (said, closed) = until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(said.is_empty(), "{said}");
    assert!(
        closed - sent < HEADER_TIMEOUT * 4,
        "a silent connection stayed open"
    );
    let (_, closed) = until_closed(&mut idle, Duration::from_secs(10)).await;
    let waited = closed - answered;
    assert!(
        waited >= IDLE_TIMEOUT - Duration::from_millis(50) && waited < IDLE_TIMEOUT * 3,
        "an idle connection was closed after {waited:?}, the idle timeout is {IDLE_TIMEOUT:?}"
    );

    // A connection in use is not idle: requests a little apart keep it open past the
    // idle timeout.
    let mut busy = TcpStream::connect(addr(&s)).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < IDLE_TIMEOUT * 2 {
        let answer = request_on(&mut busy).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(IDLE_TIMEOUT / 3).await;
    }
    s.server.unwrap().shutdown().await.unwrap();
}

#[tokio::test]
async fn at_the_connection_cap_probes_are_still_answered() {
    let s = sidecar(4).await;

    // Four idle keep-alive connections fill the cap: a new one is answered at once, the
    // longest idle closed to make room.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr(&s)).await.unwrap();
        assert!(request_on(&mut stream).await.starts_with("HTTP/1.1 200"));
        idle.push(stream);
    }
    let took = probe(&s, Duration::from_secs(5)).await;
    assert!(took < IDLE_TIMEOUT / 2, "the probe waited {took:?}");
    let (_, _) = until_closed(&mut idle[0], Duration::from_secs(1)).await;

    // Four connections in the middle of a request (none can be closed for room): a new one
    // waits, and is answered once they are closed.
    drop(idle);
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr(&s)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = probe(&s, Duration::from_secs(10)).await;
    assert!(
        took >= HEADER_TIMEOUT / 2,
        "the probe was answered in {took:?} while every place was taken"
    );
    s.server.unwrap().shutdown().await.unwrap();
}
