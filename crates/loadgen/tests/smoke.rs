//! The load generator runs end to end on a tiny fleet (seconds): service, setup, ingest with
//! alarms, baseline, JSON report. The real figures come from release runs (docs/benchmarks.md).

use std::process::Command;

#[test]
fn a_tiny_run_reports_every_figure() {
    let dir = std::env::temp_dir().join(format!("sealwatch-loadgen-smoke-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch-loadgen"))
        .args([
            "--transits",
            "40",
            "--zones",
            "10",
            "--routes",
            "3",
            "--connections",
            "2",
            "--batch",
            "20",
            "--warmup",
            "0.2",
            "--duration",
            "1",
            "--violations",
            "0.05",
            "--json",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["backend"], "sqlite");
    assert!(
        r["ingest"]["observations_accepted"].as_u64().unwrap() > 0,
        "{r}"
    );
    assert_eq!(r["ingest"]["observations_not_accepted"], 0, "{r}");
    assert!(r["alarms"]["raised"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["alarms"]["unmatched"], 0, "{r}");
    assert!(r["memory"]["bytes_per_transit"].as_u64().is_some(), "{r}");
    assert!(
        r["baseline"]["rows_per_second"].as_f64().unwrap() > 0.0,
        "{r}"
    );
}
