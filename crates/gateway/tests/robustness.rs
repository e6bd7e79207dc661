//! The gateway under abuse, over real sockets: garbage, floods, slow senders, silent and
//! half-closed peers, too many connections, frames faster than allowed. Each time, a device
//! that behaves is served throughout.

mod common;

use std::time::{Duration, Instant};

use common::{Device, Got, device_time, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GOOD: &str = "013912345678";

/// The service and gateway with `configure`d limits, and a device that has logged in.
async fn with_good_device(
    name: &str,
    configure: impl FnOnce(&mut gateway::Config),
) -> (common::Harness, Device) {
    let h = common::start(name, configure).await;
    common::register_device(h.api(), GOOD, None).await;
    common::declare_sealed_transit(h.api(), "GW1", GOOD).await;
    let mut good = Device::connect(h.jt808(), GOOD).await;
    good.log_in().await;
    (h, good)
}

/// Whether the gateway has closed `conn`: a read gives end of file or an error within
/// `within` (bytes it sends meanwhile are read and dropped).
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_skipped_and_the_next_frame_answered() {
    let (h, mut good) = with_good_device("garbage", |_| {}).await;
    let mut noisy = Device::connect(h.jt808(), "013900000009").await;
    // Deterministic noise with delimiters, escapes and parentheses in it.
    let mut x: u32 = 0x2545_f491;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    for chunk in noise.chunks(997) {
        noisy.send(chunk).await;
    }
    good.alive().await;
    // A frame after the noise is found and answered (a refusal: it never authenticated).
    // The delimiter first closes whatever half-frame the noise left open.
    noisy.send(&[0x7e]).await;
    let (frame, serial) = noisy.heartbeat();
    noisy.send(&frame).await;
    let answer = loop {
        match noisy.recv(Duration::from_secs(5)).await {
            Got::Message(m) if m.header.message_id == 0x8001 => match m.body {
                jt808::Body::GeneralResponse(g) if g.reply_serial == serial => break g.result,
                _ => continue,
            },
            Got::Message(_) => continue,
            other => panic!("no answer after the noise: {other:?}"),
        }
    };
    assert_eq!(answer, 1);
    let stats = h.gateway.stats();
    assert!(
        stats.garbage_bytes + stats.malformed_frames + stats.bad_check_codes > 0,
        "{stats:?}"
    );
    good.alive().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_without_delimiters_is_cut_off_with_memory_bounded() {
    let (h, mut good) = with_good_device("flood", |_| {}).await;
    let before = rss_kib();
    // 32 MiB of bytes that never make a frame: first outside any frame, then inside one
    // that never ends.
    for opening in [None, Some(0x7e_u8)] {
        let mut flood = TcpStream::connect(h.jt808()).await.unwrap();
        let block = vec![0x30u8; 64 * 1024];
        if let Some(b) = opening {
            flood.write_all(&[b]).await.unwrap();
        }
        let mut sent = 0usize;
        let cut_off = loop {
            if sent >= 32 << 20 {
                break false;
            }
            match tokio::time::timeout(Duration::from_secs(5), flood.write_all(&block)).await {
                Ok(Ok(())) => sent += block.len(),
                // Reset by the gateway, or no longer read at all.
                Ok(Err(_)) | Err(_) => break true,
            }
        };
        assert!(
            cut_off || closed_within(&mut flood, Duration::from_secs(5)).await,
            "the flood connection was not closed ({sent} bytes sent)"
        );
        good.alive().await;
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 16 * 1024, "resident memory grew by {grown} KiB");
    assert!(
        eventually(Duration::from_secs(5), || h.gateway.stats().closed_flood
            == 2)
        .await,
        "{:?}",
        h.gateway.stats()
    );
    good.alive().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_frame_is_taken_and_a_silent_connection_closed() {
    let idle = Duration::from_secs(1);
    let h = common::start("slow", |c| c.idle_timeout = idle).await;
    common::register_device(h.api(), GOOD, None).await;
    common::declare_sealed_transit(h.api(), "GW1", GOOD).await;
    let mut slow = Device::connect(h.jt808(), GOOD).await;
    slow.log_in().await;
    let (_, time) = device_time(20);
    let (frame, serial) = slow.location(time, false);
    // One byte every 100 ms: slow, never idle for a second.
    let trickle = tokio::spawn(async move {
        for &b in &frame {
            slow.send(&[b]).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    // Meanwhile another device is served.
    let mut other = Device::connect(h.jt808(), GOOD).await;
    other.log_in().await;
    other.alive().await;
    drop(other);
    let mut slow = trickle.await.unwrap();
    assert_eq!(
        slow.general_response(serial).await,
        0,
        "the trickled report"
    );
    // Then silence: closed after the idle timeout, not before.
    let silent_from = Instant::now();
    assert!(matches!(
        slow.recv(Duration::from_secs(5)).await,
        Got::Closed
    ));
    let after = silent_from.elapsed();
    assert!(
        after >= idle - Duration::from_millis(150) && after < Duration::from_secs(4),
        "closed after {after:?}"
    );
    assert!(h.gateway.stats().closed_idle >= 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sender_that_never_authenticates_loses_its_slot() {
    let idle = Duration::from_secs(1);
    let h = common::start("slowloris", |c| c.idle_timeout = idle).await;
    let mut slow = TcpStream::connect(h.jt808()).await.unwrap();
    let started = Instant::now();
    // A byte every 100 ms, never a frame: never idle, never authenticated.
    let closed = loop {
        if slow.write_all(b"0").await.is_err() {
            break true;
        }
        let mut b = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(5) {
            break false;
        }
    };
    let after = started.elapsed();
    assert!(closed, "still open after {after:?}");
    assert!(
        after >= idle - Duration::from_millis(150),
        "closed after {after:?}"
    );
    assert_eq!(h.gateway.stats().closed_unauthenticated, 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_and_half_closed_peers_are_released() {
    let (h, mut good) = with_good_device("halfopen", |c| {
        c.idle_timeout = Duration::from_secs(1);
        c.max_connections = 3;
    })
    .await;
    // Keep the good device talking so that it is never idle.
    let keep = tokio::spawn(async move {
        for _ in 0..12 {
            good.alive().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        good
    });
    // A peer that vanished: it neither sends, nor reads, nor closes. The gateway releases it
    // after the idle timeout.
    let mut vanished = TcpStream::connect(h.jt808()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || h
            .gateway
            .stats()
            .connections_open
            == 2)
        .await
    );
    assert!(
        eventually(Duration::from_secs(4), || h
            .gateway
            .stats()
            .connections_open
            == 1)
        .await,
        "{:?}",
        h.gateway.stats()
    );
    assert!(closed_within(&mut vanished, Duration::from_secs(1)).await);
    // A peer that half-closes (sends FIN, still reads) is released at once.
    let mut half = TcpStream::connect(h.jt808()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || h
            .gateway
            .stats()
            .connections_open
            == 2)
        .await
    );
    half.shutdown().await.unwrap();
    assert!(
        eventually(Duration::from_millis(500), || h
            .gateway
            .stats()
            .connections_open
            == 1)
        .await,
        "{:?}",
        h.gateway.stats()
    );
    assert!(closed_within(&mut half, Duration::from_secs(1)).await);
    let mut good = keep.await.unwrap();
    good.alive().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let (h, mut good) = with_good_device("maxconn", |c| c.max_connections = 3).await;
    let _a = TcpStream::connect(h.jt808()).await.unwrap();
    let mut b = TcpStream::connect(h.jt808()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || h
            .gateway
            .stats()
            .connections_open
            == 3)
        .await
    );
    let mut over = TcpStream::connect(h.jt808()).await.unwrap();
    assert!(closed_within(&mut over, Duration::from_secs(2)).await);
    assert_eq!(h.gateway.stats().connections_refused, 1);
    good.alive().await;
    // Once one goes, a new one is served.
    b.shutdown().await.unwrap();
    drop(b);
    assert!(
        eventually(Duration::from_secs(2), || h
            .gateway
            .stats()
            .connections_open
            == 2)
        .await
    );
    let mut again = Device::connect(h.jt808(), GOOD).await;
    again.log_in().await;
    again.alive().await;
    good.alive().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_beyond_the_rate_are_read_later_not_lost() {
    let (h, mut good) = with_good_device("rate", |c| c.max_frames_per_s = 20).await;
    let mut burst = Vec::new();
    let mut serials = Vec::new();
    for _ in 0..60 {
        let (frame, serial) = good.heartbeat();
        burst.extend_from_slice(&frame);
        serials.push(serial);
    }
    let started = Instant::now();
    good.send(&burst).await;
    for serial in serials {
        assert_eq!(good.general_response(serial).await, 0);
    }
    // 20 at once, then 20 a second.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
    assert!(h.gateway.stats().throttled >= 30, "{:?}", h.gateway.stats());
    h.stop().await;
}
