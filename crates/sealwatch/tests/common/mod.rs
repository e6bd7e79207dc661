//! What the tests that run `sealwatch serve` share: the command, a request with a token, and
//! the service as a child process stopped however the test ends.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `sealwatch ARGS` with extra environment; exit code, stdout, stderr.
pub fn sealwatch_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sealwatch"));
    c.args(args)
        .env_remove("SEALWATCH_STORE_DATABASE_URL")
        .env_remove("SEALWATCH_STORE_DATABASE_SCHEMA");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

pub fn sealwatch(args: &[&str]) -> (Option<i32>, String, String) {
    sealwatch_with(args, &[])
}

/// One HTTP request with a bearer token; status and JSON body.
pub fn api(addr: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `sealwatch serve`, killed however the test ends.
pub struct Serving {
    pub child: std::process::Child,
    /// Every line the service wrote to stderr up to the last one waited for.
    pub lines: Vec<String>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Starts `sealwatch serve ARGS` with `env` and reads its stderr until `until` has seen a
    /// line it accepts (every line is kept in `lines`); then drains the rest in a thread.
    pub fn start(args: &[&str], env: &[(&str, &str)], until: impl Fn(&str) -> bool) -> Serving {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sealwatch"));
        c.arg("serve")
            .args(args)
            .env("SEALWATCH_SERVER_LISTEN", "127.0.0.1:0")
            .env_remove("SEALWATCH_STORE_DATABASE_URL")
            .env_remove("SEALWATCH_STORE_DATABASE_SCHEMA")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "serve ended before it was ready: {lines:?}"
            );
            lines.push(line.trim().to_owned());
            if until(line.trim()) {
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Serving { child, lines }
    }

    /// The HTTP API's address, from the line `sealwatch: listening on http://ADDR`.
    pub fn http(&self) -> String {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("sealwatch: listening on http://"))
            .expect("the API's address")
            .to_owned()
    }
}
