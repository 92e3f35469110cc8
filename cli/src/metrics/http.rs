//! A minimal HTTP/1.1 responder for scrapes: one request per connection,
//! answered and closed. `GET /metrics` (or `HEAD`) gets the metrics, any
//! other path 404, any other method 405.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::CaptureMetrics;

/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A request head longer than this is refused.
const MAX_HEAD: usize = 8192;
/// A client that does not finish its request in this time is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers scrapes on `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, metrics: Arc<CaptureMetrics>) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let metrics = Arc::clone(&metrics);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(socket, &metrics)).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("metrics: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn answer(mut socket: TcpStream, metrics: &CaptureMetrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() <= MAX_HEAD {
        if socket.read_buf(&mut head).await? == 0 {
            break;
        }
    }
    let response = respond(&head, || metrics.encode());
    socket.write_all(&response).await?;
    socket.shutdown().await
}

/// The whole response to a request head; `body` renders the metrics.
fn respond(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next(), words.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    let (status, content_type, text) = match (method, path, words.next()) {
        (Some("GET" | "HEAD"), Some("/metrics"), Some(_)) => ("200 OK", CONTENT_TYPE, body()),
        (Some("GET" | "HEAD"), Some(_), Some(_)) => ("404 Not Found", "text/plain", "not found\n".into()),
        (Some(_), Some(_), Some(_)) => ("405 Method Not Allowed", "text/plain", "only GET and HEAD\n".into()),
        _ => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    if method != Some("HEAD") {
        out.extend_from_slice(text.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_to(head: &str) -> String {
        String::from_utf8(respond(head.as_bytes(), || "# EOF\n".into())).expect("utf-8")
    }

    #[test]
    fn metrics_path_gets_the_text_with_its_length() {
        let r = answer_to("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Length: 6\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\n# EOF\n"), "{r}");
        assert!(answer_to("GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
    }

    #[test]
    fn head_has_no_body() {
        let r = answer_to("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"), "{r}");
    }

    #[test]
    fn other_paths_methods_and_garbage_are_refused() {
        assert!(answer_to("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(answer_to("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(answer_to("").starts_with("HTTP/1.1 400 "));
        assert!(answer_to("GET\r\n\r\n").starts_with("HTTP/1.1 400 "));
    }
}
