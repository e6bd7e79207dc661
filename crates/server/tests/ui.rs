//! The web UI served from a directory (ui.rs): pages, hashed assets with a long cache, the
//! page that says how to build it, and no path leaving the directory.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One GET, raw (the path is sent as given, dots and escapes included); status, head, body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_is_served_and_no_path_leaves_its_directory() {
    let root = fresh_dir("ui-serve");
    let ui = root.join("dist");
    std::fs::create_dir_all(ui.join("assets")).unwrap();
    std::fs::write(
        ui.join("index.html"),
        "<!doctype html><html><head><title>ui</title></head><body>the UI</body></html>",
    )
    .unwrap();
    std::fs::write(ui.join("assets/index-AbC123.js"), "console.log(1)").unwrap();
    std::fs::write(ui.join("assets/.env"), "SECRET=dot").unwrap();
    // Beside the UI's directory: what a traversal would reach.
    std::fs::write(root.join("secret.txt"), "SECRET=outside").unwrap();
    std::fs::write(ui.join("secret.txt"), "SECRET=inside-not-an-asset").unwrap();

    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), root.join("data"));
    config.auth_required = true;
    config.ui = server::ui::UiConfig {
        dir: Some(ui.clone()),
        tile_url: Some("https://tiles.example/{z}/{x}/{y}.png?a=1&b=\"2\"".into()),
    };
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    // Pages: index.html for every client-side route, no credential needed, never cached.
    for path in ["/", "/map", "/alarms", "/transits/T-1", "/patrol?x=1"] {
        let (status, head, body) = get(addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(head.contains("content-type: text/html"), "{path}: {head}");
        assert!(head.contains("cache-control: no-cache"), "{path}: {head}");
        assert!(body.contains("the UI"), "{path}");
        // The tile server, escaped into a meta element.
        assert!(
            body.contains(
                "content=\"https://tiles.example/{z}/{x}/{y}.png?a=1&amp;b=&quot;2&quot;\""
            ),
            "{body}"
        );
    }
    // Hashed assets: a year's cache.
    let (status, head, body) = get(addr, "/assets/index-AbC123.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(head.contains("immutable"), "{head}");
    assert_eq!(body, "console.log(1)");

    // Nothing outside assets/ and no hidden file, however the path is written.
    for path in [
        "/assets/../secret.txt",
        "/assets/../../secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/assets/.env",
        "/assets/..\\secret.txt",
        "/assets//etc/passwd",
        "/assets/",
        "/../secret.txt",
        "/secret.txt",
    ] {
        let (status, _, body) = get(addr, path).await;
        assert!(
            !body.contains("SECRET="),
            "{path} leaked a file: {status} {body}"
        );
        assert!(
            status == 404 || status == 200 || status == 400,
            "{path}: {status}"
        );
    }
    // The API keeps its own answers.
    let (status, head, _) = get(addr, "/api/v1/no-such-route").await;
    assert_eq!(status, 401);
    assert!(head.contains("problem+json"), "{head}");
    let (status, _, _) = get(addr, "/healthz").await;
    assert_eq!(status, 200);
    running.stop().await.unwrap();

    // Without a built UI: a page that says how to build it.
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), root.join("data2"));
    config.ui.dir = Some(root.join("not-built"));
    let running = server::start(config).await.unwrap();
    let (status, head, body) = get(running.addr, "/").await;
    assert_eq!(status, 503);
    assert!(head.contains("text/html"), "{head}");
    assert!(
        body.contains("npm --prefix ui ci &amp;&amp; npm --prefix ui run build"),
        "{body}"
    );
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
