//! What the HTTP tests share: one request on a fresh connection, as a client would send it.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request on a fresh connection; returns status, content type and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    request_with(addr, method, path, &[], body.as_bytes()).await
}

/// One HTTP/1.1 request with a JSON body; the status and the answer as JSON (a string when it
/// is not JSON).
#[allow(dead_code)]
pub async fn json(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, text) = request(addr, method, path, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One HTTP/1.1 request with extra headers and a body of any bytes; returns status, content
/// type and body.
#[allow(dead_code)]
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// A service on a fresh SQLite directory named after the test, with the zones of the
/// contract's example posted; returns it, its directory and the example's first transit
/// (to be declared by the test, with its own times).
#[allow(dead_code)]
pub async fn start_with_example(
    name: &str,
    config: impl FnOnce(&mut server::Config),
) -> (server::Running, std::path::PathBuf, Value) {
    let dir = std::env::temp_dir().join(format!("sealwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config(&mut c);
    let running = server::start(c).await.unwrap();
    let example: Value =
        serde_json::from_str(include_str!("../../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        let (status, _, body) =
            request(running.addr, "POST", "/api/v1/zones", Some(z.clone())).await;
        assert_eq!(status, 204, "{body}");
    }
    let transit = example["transits"][0].clone();
    (running, dir, transit)
}
