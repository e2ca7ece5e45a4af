//! The Prometheus endpoint of `hyflow run` and `replay` (`--metrics ADDR`): `GET /metrics`
//! serves the run's recorder as OpenMetrics text, `GET /health` says whether the run is well.
//! One thread, plain HTTP/1.1 over `std::net`, one request per connection (what Prometheus and
//! curl do); nothing else is served.

use super::Recorder;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The address `--metrics` binds when given without one: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// Whether the run is well: `Err(why)` once it failed.
pub type Health = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A running endpoint; dropping it stops the thread.
pub struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses `--metrics`' value: `HOST:PORT`, or a bare port (on loopback).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let full = if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
        format!("127.0.0.1:{s}")
    } else {
        s.to_string()
    };
    full.parse().map_err(|_| {
        format!("`{s}` is not an address to listen on (e.g. 127.0.0.1:9464, [::1]:9464 or 9464)")
    })
}

/// Starts serving `recorder` on `addr`.
pub fn serve(
    addr: SocketAddr,
    recorder: Arc<Recorder>,
    health: Health,
) -> std::io::Result<Endpoint> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("hyflow-metrics".into())
        .spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if let Err(e) = answer(conn, &recorder, &health) {
                            tracing::debug!("metrics endpoint: {e}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        tracing::warn!("metrics endpoint: {e}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })?;
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(Endpoint {
        addr,
        stop,
        thread: Some(thread),
    })
}

/// Reads one request and writes its answer.
fn answer(conn: TcpStream, recorder: &Recorder, health: &Health) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.by_ref().take(8192).read_line(&mut line)?;
    // Headers are read and ignored (bounded, so a client cannot make us read forever).
    let mut header = String::new();
    for _ in 0..100 {
        header.clear();
        if reader.by_ref().take(8192).read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            recorder.render(),
        ),
        ("GET" | "HEAD", "/health") => match health() {
            Ok(()) => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_string()),
            Err(why) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("failed: {why}\n"),
            ),
        },
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics or /health\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let mut out = conn;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn serves_metrics_health_and_refuses_the_rest() {
        let r = Arc::new(Recorder::default());
        {
            let _g = r.install();
            metrics::counter!("hyflow_rows_read_total").increment(42);
        }
        let well = Arc::new(AtomicBool::new(true));
        let w = well.clone();
        let health: Health = Arc::new(move || {
            if w.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("disk full".into())
            }
        });
        let e = serve(parse_addr("127.0.0.1:0").unwrap(), r, health).unwrap();
        let m = get(e.addr(), "/metrics");
        assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
        assert!(m.contains("application/openmetrics-text"), "{m}");
        assert!(m.contains("\nhyflow_rows_read_total 42\n"), "{m}");
        assert!(get(e.addr(), "/health").ends_with("\r\n\r\nok\n"));
        well.store(false, Ordering::SeqCst);
        let h = get(e.addr(), "/health");
        assert!(
            h.starts_with("HTTP/1.1 503") && h.ends_with("failed: disk full\n"),
            "{h}"
        );
        assert!(get(e.addr(), "/nope").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(parse_addr("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        assert!(
            parse_addr("localhost")
                .unwrap_err()
                .contains("not an address")
        );
    }
}
