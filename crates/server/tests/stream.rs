//! The live stream resumes: a client that reconnects with `Last-Event-ID` gets exactly what
//! it missed (events, alarms, handling steps) and then the live items, with no gap and no
//! repeat, even after the service restarted.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod common;
use common::request;

/// An open stream; reads `(id, event name, data)` items.
struct Stream(BufReader<TcpStream>);

impl Stream {
    async fn open(addr: SocketAddr, query: &str, last_event_id: Option<i64>) -> Stream {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let resume = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let head = format!("GET /api/v1/stream{query} HTTP/1.1\r\nHost: t\r\n{resume}\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        Stream(BufReader::new(conn))
    }

    /// The next item, or `None` when nothing comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(i64, String, Value)> {
        let read = async {
            let (mut id, mut name) = (None, None);
            let mut line = String::new();
            loop {
                line.clear();
                if self.0.read_line(&mut line).await.unwrap() == 0 {
                    return None;
                }
                let l = line.trim_end();
                if let Some(v) = l.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = l.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = l.strip_prefix("data:")
                    && let Some(name) = name.clone()
                {
                    // Notices (`reset`, `lagged`) carry no id: 0 here.
                    return Some((
                        id.unwrap_or(0),
                        name,
                        serde_json::from_str(v.trim()).unwrap(),
                    ));
                }
            }
        };
        tokio::time::timeout(wait, read).await.ok().flatten()
    }
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> Value {
    let (status, _, text) = request(addr, "POST", path, Some(body)).await;
    assert!(status < 300, "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn at(ms: i64) -> String {
    model::Timestamp::from_unix_ms(ms).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_with_last_event_id_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("sealwatch-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    let running = server::start(config()).await.unwrap();
    let addr = running.addr;
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        post(addr, "/api/v1/zones", z.clone()).await;
    }
    let now = server::wall_clock().unix_ms();
    let mut transit = example["transits"][0].clone();
    transit["sealed_at"] = json!(at(now - 600_000));
    transit["deadline"] = json!(at(now + 3_600_000));
    post(addr, "/api/v1/transits", transit).await;

    let mut live = Stream::open(addr, "", None).await;
    // Unlocked without authorisation: an alarm.
    post(
        addr,
        "/api/v1/observations",
        json!([{"device": "D1", "t": at(now - 300_000), "lat": 29.31, "lon": 120.07, "lock": "unlocked", "seq": 1}]),
    )
    .await;
    let mut seen = Vec::new();
    while let Some(item) = live.next(Duration::from_secs(5)).await {
        let is_alarm = item.1 == "alarm";
        seen.push(item);
        if is_alarm {
            break;
        }
    }
    let alarm = seen.last().unwrap().clone();
    assert_eq!(
        (alarm.1.as_str(), alarm.2["kind"].as_str()),
        ("alarm", Some("illegal_opening"))
    );
    let alarm_id = alarm.2["id"].as_i64().unwrap();
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    // The client goes away; meanwhile the alarm is handled.
    drop(live);
    post(
        addr,
        &format!("/api/v1/alarms/{alarm_id}/acknowledge"),
        json!({"actor": "officer.zhang"}),
    )
    .await;
    // A client that only wants alarms, resuming from the alarm: the handling step.
    let mut alarms = Stream::open(addr, "?only=alarms", Some(alarm.0)).await;
    let update = alarms
        .next(Duration::from_secs(5))
        .await
        .expect("the missed step");
    assert_eq!(update.1, "alarm_update");
    assert_eq!(update.2["id"], alarm_id);
    assert_eq!(update.2["state"]["state"], "acknowledged");
    assert_eq!(update.2["step"]["actor"], "officer.zhang");
    assert!(
        alarms.next(Duration::from_millis(300)).await.is_none(),
        "nothing repeated"
    );
    drop(alarms);

    // The service restarts; more happens while the client is away.
    running.stop().await.unwrap();
    let running = server::start(config()).await.unwrap();
    let addr = running.addr;
    post(
        addr,
        &format!("/api/v1/alarms/{alarm_id}/dispatch"),
        json!({"actor": "supervisor.wang"}),
    )
    .await;
    let mut resumed = Stream::open(addr, "", Some(update.0)).await;
    let dispatched = resumed
        .next(Duration::from_secs(5))
        .await
        .expect("missed across the restart");
    assert!(dispatched.0 > update.0);
    assert_eq!(dispatched.2["step"]["step"], "dispatch");
    // Then the live items continue on the same connection, with later ids.
    post(
        addr,
        &format!("/api/v1/alarms/{alarm_id}/resolve"),
        json!({"actor": "patrol.7", "outcome": "false_alarm"}),
    )
    .await;
    let resolved = resumed
        .next(Duration::from_secs(5))
        .await
        .expect("live after the backlog");
    assert_eq!(resolved.2["step"]["step"], "resolve");
    assert_eq!(resolved.0, dispatched.0 + 1);

    // An id this feed never gave (a restored database): the client is told, then goes on live.
    let mut lost = Stream::open(addr, "", Some(resolved.0 + 1_000)).await;
    let reset = lost
        .next(Duration::from_secs(5))
        .await
        .expect("a reset notice");
    assert_eq!(reset.1, "reset", "{reset:?}");
    assert_eq!(reset.2["newest"], resolved.0);
    post(
        addr,
        &format!("/api/v1/alarms/{alarm_id}/close"),
        json!({"actor": "supervisor.wang"}),
    )
    .await;
    let closed = lost
        .next(Duration::from_secs(5))
        .await
        .expect("live after the reset");
    assert_eq!(closed.2["step"]["step"], "close");

    // A malformed Last-Event-ID is a problem naming it.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: t\r\nLast-Event-ID: yesterday\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut text)
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("Last-Event-ID"), "{text}");
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
