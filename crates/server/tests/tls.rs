//! HTTPS served directly: a self-signed certificate made for the test, a real TLS handshake
//! by a rustls client that trusts only that certificate, a request over it; the session
//! cookie is `Secure` there; a plain-HTTP client gets no answer; bad files are named.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    let dir = std::env::temp_dir().join(format!("sealwatch-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, made.cert.pem()).unwrap();
    std::fs::write(&key_file, made.signing_key.serialize_pem()).unwrap();

    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.join("data"));
    config.auth_required = true;
    config.tls = Some(server::tls::TlsFiles {
        cert_file: cert_file.clone(),
        key_file: key_file.clone(),
    });
    {
        let mut store = server::open_store(&config).unwrap();
        let hash = server::users::hash_password("a-long-enough-password").unwrap();
        store
            .create_user(&server::users::new_user(
                "carol",
                model::Role::Officer,
                None,
                hash,
                server::wall_clock(),
            ))
            .unwrap();
    }
    let running = server::start(config.clone()).await.unwrap();
    let addr = running.addr;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let https = |method: &'static str, path: &'static str, body: String| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            tls.write_all(head.as_bytes()).await.unwrap();
            let mut raw = Vec::new();
            // A peer closing without close_notify is an error to rustls; what was read counts.
            let _ = tls.read_to_end(&mut raw).await;
            String::from_utf8_lossy(&raw).into_owned()
        }
    };
    let health = https("GET", "/healthz", String::new()).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let signed_in = https(
        "POST",
        "/api/v1/session",
        json!({"username": "carol", "password": "a-long-enough-password"}).to_string(),
    )
    .await;
    assert!(signed_in.starts_with("HTTP/1.1 201"), "{signed_in}");
    let set_cookie = signed_in
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw).await;
    assert!(!String::from_utf8_lossy(&raw).contains("200 OK"));
    running.stop().await.unwrap();

    // A key file that is not a key: refused at start, naming the setting and the file.
    config.tls = Some(server::tls::TlsFiles {
        cert_file: cert_file.clone(),
        key_file: cert_file.clone(),
    });
    let err = server::start(config.clone()).await.unwrap_err().to_string();
    assert!(err.contains("server.tls_key_file"), "{err}");
    config.tls = Some(server::tls::TlsFiles {
        cert_file: dir.join("missing.pem"),
        key_file,
    });
    let err = server::start(config).await.unwrap_err().to_string();
    assert!(
        err.contains("server.tls_cert_file") && err.contains("missing.pem"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
