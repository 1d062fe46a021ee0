//! Scenario 4: slow or hostile clients. While 200 idle TCP connections are held open,
//! slowloris clients trickle request-head bytes, and oversized bodies and headers are
//! sent, a normal client keeps getting `/health/ready` and an authenticated GET answered
//! within a bound; the slow connections are closed by the server's request timeout.
//!
//! Raw sockets (blocking, on their own threads) so that nothing is buffered or fixed up by
//! an HTTP client library.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{admin_token, database, server_env, ServerProcess};

const IDLE_CONNECTIONS: usize = 200;
const SLOWLORIS: usize = 6;
/// actix's `client_request_timeout` the server sets: the whole request head must arrive
/// within it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A normal request must be answered within this, whatever the hostile clients do.
// Generous: CI runs other test binaries beside this one on 2 cores; the point is that
// the hostile clients never starve a normal one (their own timeout is 5 s and more).
const ANSWER_BOUND: Duration = Duration::from_secs(3);

/// How the server ended an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// It answered with this status.
    Status(u16),
    /// It closed the connection without a response.
    Closed,
}

/// Reads until a status line or EOF; `None` when nothing came before the read timeout.
fn read_ending(stream: &mut TcpStream) -> Option<Ending> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Some(status_of(&buf).map_or(Ending::Closed, Ending::Status));
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(status) = status_of(&buf) {
                    return Some(Ending::Status(status));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (!buf.is_empty()).then_some(Ending::Closed);
            }
            Err(_) => return Some(Ending::Closed),
        }
    }
}

fn status_of(buf: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(buf).ok()?;
    let line = &text[..text.find("\r\n")?];
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))?;
    rest.get(..3)?.parse().ok()
}

/// One slowloris connection: a request head sent one byte every 500 ms, never finished.
/// Returns how it ended and after how long.
fn slowloris(addr: &str) -> (Ending, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /health/ready HTTP/1.1\r\nHost: billing\r\nX-Slow: ")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if stream.write_all(b"a").is_err() {
            return (Ending::Closed, started.elapsed());
        }
        if let Some(ending) = read_ending(&mut stream) {
            return (ending, started.elapsed());
        }
    }
    panic!("a slowloris connection was kept open for 30 s");
}

/// Sends `head` and then up to `body_len` bytes of body in 64 KiB chunks, stopping as
/// soon as the server answers or closes; returns how the server ended it.
fn oversized(addr: &str, head: &[u8], body_len: usize) -> Ending {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    let write = stream.write_all(head);
    if write.is_ok() {
        while sent < body_len {
            if let Some(ending) = read_ending(&mut stream) {
                return ending;
            }
            let n = chunk.len().min(body_len - sent);
            if stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    read_ending(&mut stream).unwrap_or(Ending::Closed)
}

/// A normal client on fresh connections: `/health/ready` and an authenticated GET, every
/// 100 ms until `stop`; returns the slowest answer and how many rounds it made.
async fn normal_client(address: String, stop: Arc<AtomicBool>) -> (Duration, u32) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let token = admin_token();
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        for (path, auth) in [
            ("/health/ready", false),
            ("/api/v1/billing/invoices?limit=5", true),
        ] {
            let started = Instant::now();
            let mut request = http.get(format!("{address}{path}"));
            if auth {
                request = request.bearer_auth(&token);
            }
            let response = request.send().await.unwrap();
            let took = started.elapsed();
            assert_eq!(response.status(), 200, "{path}");
            assert!(took <= ANSWER_BOUND, "{path} took {took:?}");
            slowest = slowest.max(took);
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (slowest, rounds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_slow_and_oversized_clients_neither_starve_normal_ones_nor_hold_connections() {
    let started = Instant::now();
    let db = database(true).await;
    let stripe = billing_stripe_emulator::FakeStripe::start().await;
    let server = ServerProcess::start(&server_env(db.url(), &stripe.base_url())).await;
    let addr = server.socket_addr();

    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(normal_client(server.address.clone(), Arc::clone(&stop)));

    let idle: Vec<TcpStream> = (0..IDLE_CONNECTIONS)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let opened = Instant::now();

    let slow: Vec<_> = (0..SLOWLORIS)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || slowloris(&addr))
        })
        .collect();

    let hostile_addr = addr.clone();
    let (body_cl, body_chunked, header_64k, header_256k) = tokio::task::spawn_blocking(move || {
        let addr = hostile_addr.as_str();
        let five_mib = 5 * 1024 * 1024;
        let body_cl = oversized(
            addr,
            format!(
                "POST /api/v1/billing/stripe/webhook HTTP/1.1\r\nHost: billing\r\n\
                 Content-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\n\
                 Content-Length: {five_mib}\r\n\r\n"
            )
            .as_bytes(),
            five_mib,
        );
        // Without a Content-Length the limit can only be enforced while reading: one
        // chunk of 5 MiB announced, then streamed.
        let body_chunked = oversized(
            addr,
            format!(
                "POST /api/v1/billing/stripe/webhook HTTP/1.1\r\nHost: billing\r\n\
                 Content-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{five_mib:x}\r\n"
            )
            .as_bytes(),
            five_mib,
        );
        let big_header = |size: usize| {
            let value = "h".repeat(size);
            oversized(
                addr,
                format!("GET /health/ready HTTP/1.1\r\nHost: billing\r\nX-Big: {value}\r\n\r\n")
                    .as_bytes(),
                0,
            )
        };
        (
            body_cl,
            body_chunked,
            big_header(64 * 1024),
            big_header(256 * 1024),
        )
    })
    .await
    .unwrap();

    let slow_endings: Vec<(Ending, Duration)> =
        slow.into_iter().map(|t| t.join().unwrap()).collect();

    // The idle connections: closed by the server once the request timeout passed.
    let idle_endings = tokio::task::spawn_blocking(move || {
        let by = opened + REQUEST_TIMEOUT + Duration::from_secs(5);
        idle.into_iter()
            .map(|mut s| {
                let left = by
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10));
                s.set_read_timeout(Some(left)).unwrap();
                read_ending(&mut s)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();

    stop.store(true, Ordering::Relaxed);
    let (slowest, rounds) = probe.await.unwrap();

    assert!(
        matches!(body_cl, Ending::Status(413) | Ending::Closed),
        "5 MiB body with Content-Length: {body_cl:?}"
    );
    assert!(
        matches!(body_chunked, Ending::Status(413) | Ending::Closed),
        "5 MiB chunked body: {body_chunked:?}"
    );
    // Below actix's fixed 128 KiB request-head limit a big header is accepted.
    assert!(
        matches!(header_64k, Ending::Status(200 | 431)),
        "64 KiB header: {header_64k:?}"
    );
    assert!(
        matches!(header_256k, Ending::Status(431) | Ending::Closed),
        "256 KiB header: {header_256k:?}"
    );
    for (ending, after) in &slow_endings {
        assert!(
            *after <= REQUEST_TIMEOUT + Duration::from_secs(5),
            "a slowloris connection lasted {after:?} ({ending:?})"
        );
    }
    let still_open = idle_endings.iter().filter(|e| e.is_none()).count();
    assert_eq!(still_open, 0, "idle connections the server never closed");
    assert!(rounds > 0, "the normal client never got an answer");
    eprintln!(
        "hostile clients: 5 MiB body {body_cl:?}, 5 MiB chunked {body_chunked:?}, \
         64 KiB header {header_64k:?}, 256 KiB header {header_256k:?}, slowloris {:?}, \
         idle {:?}, normal client slowest {slowest:?} over {rounds} rounds, {:?}",
        slow_endings,
        idle_endings.first(),
        started.elapsed()
    );
}

/// A webhook body trickled one byte per 500 ms after a complete head: actix times out
/// heads only, so the webhook's own body timeout (10 s) must end it with a 408.
#[tokio::test]
async fn a_webhook_body_trickled_byte_by_byte_is_cut_off_with_408() {
    let db = database(true).await;
    let stripe = billing_stripe_emulator::FakeStripe::start().await;
    let server = ServerProcess::start(&server_env(db.url(), &stripe.base_url())).await;
    let addr = server.socket_addr();

    let (ending, took) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .write_all(
                b"POST /api/v1/billing/stripe/webhook HTTP/1.1\r\nHost: billing\r\n\
                  Content-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\n\
                  Content-Length: 1000\r\n\r\n",
            )
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if stream.write_all(b" ").is_err() {
                return (Ending::Closed, started.elapsed());
            }
            if let Some(ending) = read_ending(&mut stream) {
                return (ending, started.elapsed());
            }
        }
        panic!("a trickled body was read for 30 s");
    })
    .await
    .unwrap();

    assert_eq!(ending, Ending::Status(408));
    assert!(took < Duration::from_secs(15), "{took:?}");
}
