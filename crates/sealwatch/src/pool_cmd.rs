//! `sealwatch pool ...`: the device pool's rebalancing plan from a JSON document (docs/pool.md).
//! The planning itself is the pure `pool` crate; this reads the file, passes the options and
//! prints the plan.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::EXIT_INVALID;

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Plan which devices move from where to where so that every station holds its dynamic
    /// safety stock, at the least transport cost. Prints a table, or the plan as JSON; exit 2
    /// naming what is wrong with the input.
    Plan {
        /// The pool: stations with coordinates and daily history, devices with state and
        /// station, and the transport cost (format in docs/pool.md). `-` reads standard input.
        /// Without it, the pool is the store's registry: its stations (at their zones), devices
        /// and the transits that left and reached each station over the last 56 days.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Print the planner's input (from the store or the file) as JSON instead of planning:
        /// a snapshot to keep, or to plan again with other options.
        #[arg(long)]
        export: bool,
        /// Days until a rebalancing shipment arrives: the horizon the safety stock covers.
        #[arg(long, default_value_t = pool::PlanOptions::default().lead_days)]
        lead_days: u32,
        /// Probability of not running out during the lead time (0.5 to below 1).
        #[arg(long, default_value_t = pool::PlanOptions::default().service_level)]
        service_level: f64,
        /// Weight of the newest day in the smoothed forecast (above 0, at most 1).
        #[arg(long, default_value_t = pool::PlanOptions::default().smoothing)]
        smoothing: f64,
        /// Print the whole plan as one JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `pool` command; `open_store` opens the store when no `--input` is given.
pub fn run(
    command: PoolCommand,
    open_store: impl FnOnce() -> Result<Box<dyn store::Store>, ExitCode>,
) -> ExitCode {
    let PoolCommand::Plan {
        input,
        export,
        lead_days,
        service_level,
        smoothing,
        json,
    } = command;
    let (pool_input, source) = match input {
        Some(input) => match read_input(&input) {
            Ok(p) => (p, input.display().to_string()),
            Err(why) => {
                eprintln!("error: {why}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => {
            let mut store = match open_store() {
                Ok(s) => s,
                Err(code) => return code,
            };
            let now = server::wall_clock();
            match server::device_pool::overview_of(
                &mut *store,
                now,
                server::device_pool::CostRates::default(),
            ) {
                Ok(o) => (o.input, "the store's registry".to_owned()),
                Err(e) => {
                    eprintln!("error: cannot read the registry: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    if export {
        return match serde_json::to_string_pretty(&pool_input) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot print the input: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let options = pool::PlanOptions {
        lead_days,
        service_level,
        smoothing,
    };
    let plan = match pool::plan(&pool_input, &options) {
        Ok(plan) => plan,
        // A solver failure is not the input's fault; everything else names an input error.
        Err(e @ pool::PlanError::Solve(_)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {source}: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if json {
        match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot print the plan: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", table(&plan));
    }
    ExitCode::SUCCESS
}

/// The input document, with the JSON path of the first field that does not fit.
fn read_input(path: &Path) -> Result<pool::PoolInput, String> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        format!("{}: {at}: {}", path.display(), e.inner())
    })
}

/// The plan for people: stations, then moves, then the totals.
fn table(plan: &pool::Plan) -> String {
    let mut out = String::new();
    let width = plan
        .stations
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(0)
        .max("station".len());
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "{:<width$}  {:>6}  {:>6}  {:>6}  {:>8}  {:>6}  {:>9}",
        "station", "before", "target", "sent", "received", "after", "shortfall"
    );
    for s in &plan.stations {
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>6}  {:>8}  {:>6}  {:>9}",
            s.id, s.stock_before, s.target, s.sent, s.received, s.stock_after, s.shortfall
        );
    }
    let _ = writeln!(out);
    if plan.moves.is_empty() {
        let _ = writeln!(out, "no moves");
    } else {
        let _ = writeln!(
            out,
            "{:<width$}  {:<width$}  {:>7}  {:>10}  devices",
            "from", "to", "count", "cost"
        );
        for m in &plan.moves {
            let _ = writeln!(
                out,
                "{:<width$}  {:<width$}  {:>7}  {:>10.2}  {}",
                m.from,
                m.to,
                m.devices,
                m.cost,
                m.device_ids.join(" ")
            );
        }
    }
    let moved: u64 = plan.moves.iter().map(|m| u64::from(m.devices)).sum();
    let _ = writeln!(
        out,
        "\n{moved} devices moved, total cost {:.2}, shortfall {}",
        plan.total_cost, plan.shortfall_devices
    );
    if plan.shortfall_devices > 0 {
        let _ = writeln!(
            out,
            "the pool is short: every spare device moves and {} are still missing below safety stock",
            plan.shortfall_devices
        );
    }
    out
}
