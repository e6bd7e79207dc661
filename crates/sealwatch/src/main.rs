//! `sealwatch`: the command line.

mod demo;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Supervision of goods under customs control with Smart Security Devices.
#[derive(Debug, Parser)]
#[command(name = "sealwatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a scenario file and print its alarms as JSON lines, in time order.
    Replay {
        /// The scenario (see docs/scenario.md).
        scenario: PathBuf,
        /// Print events (sealed, departed, arrived, alarm_cleared, ...) beside the alarms.
        #[arg(long)]
        events: bool,
    },
    /// Check a scenario file; exit 2 naming the first error.
    Validate { scenario: PathBuf },
    /// Run the service: HTTP API under /api/v1, live stream, metrics.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        /// Directory of the embedded database (sealwatch.db).
        #[arg(long, default_value = "sealwatch-data")]
        data_dir: PathBuf,
        /// A PostgreSQL URL, instead of the embedded database.
        #[arg(long, env = "SEALWATCH_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Run the service with a simulated fleet on real corridors (THIS IS A DEMO).
    Demo {
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "sealwatch-demo")]
        data_dir: PathBuf,
        /// How many times faster than real time the demo's clock runs.
        #[arg(long, default_value_t = 120.0)]
        speed: f64,
    },
}

/// Exit status for input that is not valid (as clap uses for bad arguments).
const EXIT_INVALID: u8 = 2;

fn load(path: &Path) -> Result<scenario::Scenario, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let s = scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for field in scenario::unknown_fields(&text) {
        eprintln!(
            "warning: {}: {field}: unknown field, ignored",
            path.display()
        );
    }
    Ok(s)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            database_url,
        } => {
            let mut config = server::Config::new(listen, data_dir);
            config.database_url = database_url;
            let result = runtime().block_on(async {
                let running = server::start(config).await?;
                eprintln!("sealwatch: listening on http://{}", running.addr);
                tokio::signal::ctrl_c().await.ok();
                eprintln!("sealwatch: stopping, committing what was accepted");
                running.stop().await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo {
            listen,
            data_dir,
            speed,
        } => {
            match runtime().block_on(demo::run(demo::Options {
                listen,
                data_dir,
                speed,
            })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Replay { scenario, events } => {
            let s = match load(&scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let lines = match scenario::replay_lines(&s, events) {
                Ok(lines) => lines,
                Err(e) => {
                    eprintln!("error: {}: {e}", scenario.display());
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let mut out = std::io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    // The reader went away (a closed pipe): nothing more to say.
                    return ExitCode::SUCCESS;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Validate { scenario } => match load(&scenario) {
            Ok(s) => {
                println!(
                    "{}: valid ({} zones, {} transits, {} observations, {} reads, {} actions)",
                    scenario.display(),
                    s.zones.len(),
                    s.transits.len(),
                    s.observations.len(),
                    s.reads.len(),
                    s.actions.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_INVALID)
            }
        },
    }
}
