//! Users through the real binary: the first start of `sealwatch serve` makes `admin` with a
//! random password printed once (and never again), or takes it from the configuration; the
//! `sealwatch user` commands add, list, disable and reset users.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-users-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts `sealwatch serve` on a free port; returns it, its address and what it printed to
/// stderr before listening.
// The child is handed to the caller, which stops and waits for it (`stop`).
#[allow(clippy::zombie_processes)]
fn serve(dir: &Path, env: &[(&str, &str)]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut before = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ended before listening: {before}");
        }
        if let Some(addr) = line.trim().strip_prefix("sealwatch: listening on http://") {
            let addr = addr.to_owned();
            // Keep draining stderr so the service never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return (child, addr, before);
        }
        before.push_str(&line);
    }
}

/// Signs in; the status.
fn sign_in(addr: &str, username: &str, password: &str) -> u16 {
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_first_start_makes_admin_with_a_password_shown_once() {
    let dir = temp("first");
    let (child, addr, said) = serve(&dir, &[]);
    assert!(
        said.contains("administrator `admin` created with the password"),
        "{said}"
    );
    // The password is the indented line, 24 characters.
    let password = said
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 24 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .expect("the password is printed")
        .to_owned();
    assert_eq!(sign_in(&addr, "admin", &password), 201);
    assert_eq!(sign_in(&addr, "admin", "admin"), 401, "no default password");
    stop(child);

    // The second start says nothing of it: the password was shown once.
    let (child, addr, said) = serve(&dir, &[]);
    assert!(!said.contains("created"), "{said}");
    assert!(!said.contains(&password), "{said}");
    assert_eq!(sign_in(&addr, "admin", &password), 201);
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_first_password_can_come_from_the_configuration() {
    let dir = temp("configured");
    let chosen = "chosen-by-the-operator";
    let (child, addr, said) = serve(&dir, &[("SEALWATCH_AUTH_INITIAL_ADMIN_PASSWORD", chosen)]);
    assert!(!said.contains(chosen), "never echoed: {said}");
    assert!(!said.contains("created with the password"), "{said}");
    assert_eq!(sign_in(&addr, "admin", chosen), 201);
    stop(child);
    // Too short a configured password stops the start, naming the key.
    let dir2 = temp("configured-short");
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir2)
        .env("SEALWATCH_AUTH_INITIAL_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.initial_admin_password"), "{stderr}");
    assert!(!stderr.contains("short\n"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

/// Runs `sealwatch user ...` on `dir`; exit code, stdout, stderr.
fn user(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_are_created_listed_disabled_and_reset() {
    let dir = temp("cli");
    let (code, out, err) = user(
        &dir,
        &[
            "create",
            "bob",
            "--role",
            "officer",
            "--organisation",
            "Yiwu office",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let bob_password = out.trim().to_owned();
    assert_eq!(bob_password.len(), 24, "{out}");
    assert!(err.contains("shown this once"), "{err}");
    // Taken whatever the case; a bad username and a short password are named.
    let (code, _, err) = user(&dir, &["create", "BOB", "--role", "officer"], None);
    assert_eq!(code, 2);
    assert!(err.contains("taken"), "{err}");
    let (code, _, err) = user(&dir, &["create", "no spaces", "--role", "officer"], None);
    assert_eq!(code, 2);
    assert!(err.contains("username:"), "{err}");
    let (code, _, err) = user(
        &dir,
        &["create", "eve", "--role", "auditor", "--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(code, 2);
    assert!(err.contains("at least 12"), "{err}");
    let (code, out, _) = user(
        &dir,
        &["create", "eve", "--role", "auditor", "--password-stdin"],
        Some("eve-chose-this-one\n"),
    );
    assert_eq!(code, 0);
    assert!(out.is_empty(), "a chosen password is not printed: {out}");

    let (code, out, _) = user(&dir, &["list"], None);
    assert_eq!(code, 0);
    assert!(
        out.contains("bob\tofficer\tYiwu office\t-\tactive"),
        "{out}"
    );
    assert!(out.contains("eve\tauditor"), "{out}");
    assert!(
        !out.contains(&bob_password) && !out.contains("argon2"),
        "{out}"
    );

    let (child, addr, _) = serve(&dir, &[]);
    assert_eq!(sign_in(&addr, "bob", &bob_password), 201);
    assert_eq!(sign_in(&addr, "eve", "eve-chose-this-one"), 201);
    // Disabled: refused, with the same answer as a wrong password.
    assert_eq!(user(&dir, &["disable", "bob"], None).0, 0);
    assert_eq!(sign_in(&addr, "bob", &bob_password), 401);
    // A new password replaces the old one.
    let (code, out, _) = user(&dir, &["reset-password", "eve"], None);
    assert_eq!(code, 0);
    let new = out.trim().to_owned();
    assert_eq!(sign_in(&addr, "eve", "eve-chose-this-one"), 401);
    assert_eq!(sign_in(&addr, "eve", &new), 201);
    stop(child);
    let (code, _, err) = user(&dir, &["disable", "nobody"], None);
    assert_eq!(code, 2);
    assert!(err.contains("nobody"), "{err}");
    let (_, out, _) = user(&dir, &["list"], None);
    assert!(
        out.contains("bob\tofficer\tYiwu office\t-\tdisabled"),
        "{out}"
    );
    // Every change is in the audit chain, in order, and no password is.
    let audit = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["audit", "list", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&audit.stdout);
    let changes: Vec<String> = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .filter(|a| a.starts_with("user."))
        .collect();
    assert_eq!(
        changes,
        [
            "user.create",
            "user.create",
            "user.disable",
            "user.reset_password"
        ],
        "{listed}"
    );
    assert!(
        !listed.contains(&bob_password) && !listed.contains(&new),
        "{listed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tokens_can_be_scoped_to_an_organisation() {
    let dir = temp("token-org");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .arg("token")
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let token = run(&[
        "create",
        "--role",
        "carrier",
        "--label",
        "tracking feed",
        "--organisation",
        "Ningbo Carriers Ltd",
    ]);
    assert!(token.trim().starts_with("swt_"), "{token}");
    run(&["create", "--role", "gateway"]);
    let list = run(&["list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("\tcarrier\tNingbo Carriers Ltd\t") && l.ends_with("tracking feed")),
        "{list}"
    );
    assert!(list.lines().any(|l| l.contains("\tgateway\t-\t")), "{list}");
    assert!(!list.contains(token.trim()), "secrets are never listed");
    let _ = std::fs::remove_dir_all(&dir);
}
