//! Demand forecast per station and the dynamic safety stock derived from it.
//!
//! The quantity forecast is the station's daily **net outflow**: devices that leave sealed on a
//! transit minus devices that arrive and are unsealed there. A positive net outflow drains the
//! station's stock; a negative one fills it.
//!
//! The method is simple exponential smoothing of the net outflow, with an additive weekly
//! factor once four full weeks of history are there (customs traffic has a strong weekly
//! rhythm: few departures at weekends). It is explainable in one sentence to a site operator
//! ("recent days count more; Mondays are busier than Sundays"), and its one-step errors give
//! the spread that the safety stock needs.

use serde::{Deserialize, Serialize};

/// Days in the seasonal cycle.
const WEEK_DAYS: usize = 7;
/// Full weeks of history needed before a weekly factor is estimated: with fewer, one unusual
/// day would set a weekday's factor on its own.
const MIN_WEEKS_FOR_SEASON: usize = 4;
/// Floating-point noise tolerated before rounding a safety stock up to the next device.
const ROUNDING_SLACK_DEVICES: f64 = 1e-9;

/// One day of a station's movements, oldest day first in a history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayFlows {
    /// Devices that left the station sealed on a transit that day.
    pub departures: u32,
    /// Devices that arrived at the station and were unsealed there that day.
    pub arrivals: u32,
}

/// A station's forecast over the lead time, and the safety stock derived from it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    /// Smoothed daily net outflow at the end of the history, weekly factor removed.
    pub level_per_day: f64,
    /// Expected net outflow over the lead time (level plus the weekday factors of the days
    /// ahead); negative when the station is expected to gain devices.
    pub net_outflow_over_lead: f64,
    /// Root mean square of the one-step forecast errors over the history (devices per day).
    pub error_sd_per_day: f64,
    /// Whether a weekly factor was used (four full weeks of history or more).
    pub weekly: bool,
    /// Devices the station should hold now: see [`safety_stock`].
    pub safety_stock: u32,
}

/// Forecasts one station's net outflow over `lead_days` days after its history.
///
/// `smoothing` is the weight of the newest day in the exponentially weighted level
/// (0 < smoothing ≤ 1); `z` is the standard normal quantile of the service level. Both are
/// validated by the caller ([`crate::plan`]).
pub fn forecast(history: &[DayFlows], lead_days: u32, smoothing: f64, z: f64) -> Forecast {
    let net: Vec<f64> = history
        .iter()
        .map(|d| f64::from(d.departures) - f64::from(d.arrivals))
        .collect();
    let weekly = net.len() >= WEEK_DAYS * MIN_WEEKS_FOR_SEASON;
    let season = if weekly {
        weekly_factors(&net)
    } else {
        [0.0; WEEK_DAYS]
    };

    // Level: exponentially weighted mean of the deseasonalised net outflow, started at the
    // first day. The one-step error of each later day is what the spread is measured from.
    let mut level = None::<f64>;
    let mut squared_error_sum = 0.0;
    let mut n_errors = 0usize;
    for (t, &value) in net.iter().enumerate() {
        let y = value - season[t % WEEK_DAYS];
        level = Some(match level {
            None => y,
            Some(previous) => {
                squared_error_sum += (y - previous).powi(2);
                n_errors += 1;
                // This form keeps a constant series exactly constant in floating point.
                previous + smoothing * (y - previous)
            }
        });
    }
    let level_per_day = level.unwrap_or(0.0);
    let error_sd_per_day = if n_errors == 0 {
        0.0
    } else {
        (squared_error_sum / n_errors as f64).sqrt()
    };
    let net_outflow_over_lead: f64 = (0..lead_days as usize)
        .map(|h| level_per_day + season[(net.len() + h) % WEEK_DAYS])
        .sum();
    Forecast {
        level_per_day,
        net_outflow_over_lead,
        error_sd_per_day,
        weekly,
        safety_stock: safety_stock(net_outflow_over_lead, error_sd_per_day, lead_days, z),
    }
}

/// The dynamic safety stock: expected net outflow over the lead time plus `z` standard
/// deviations of its error, `z · σ_day · √lead_days` (daily errors taken as independent),
/// rounded up to whole devices and never negative.
///
/// With this many devices now, and no rebalancing shipment arriving before `lead_days` have
/// passed, the station runs out during the lead time with a probability of about
/// `1 − service level` if the errors are roughly normal.
pub fn safety_stock(
    net_outflow_over_lead: f64,
    error_sd_per_day: f64,
    lead_days: u32,
    z: f64,
) -> u32 {
    let devices = net_outflow_over_lead + z * error_sd_per_day * f64::from(lead_days).sqrt();
    // Rounding noise of the sums (a weekly factor of 20/7 added seven times) must not turn an
    // exact 30 into 30.000000001 and so 31 devices.
    let devices = devices - ROUNDING_SLACK_DEVICES;
    if devices <= 0.0 {
        0
    } else {
        // Saturates at u32::MAX, far above any real station.
        devices.ceil() as u32
    }
}

/// Additive weekday factors: the mean of each weekday position minus the overall mean.
/// Positions count from the first day of the history, so no calendar is needed.
fn weekly_factors(net: &[f64]) -> [f64; WEEK_DAYS] {
    let overall = net.iter().sum::<f64>() / net.len() as f64;
    let mut sum = [0.0; WEEK_DAYS];
    let mut count = [0usize; WEEK_DAYS];
    for (t, &v) in net.iter().enumerate() {
        sum[t % WEEK_DAYS] += v;
        count[t % WEEK_DAYS] += 1;
    }
    let mut factors = [0.0; WEEK_DAYS];
    for k in 0..WEEK_DAYS {
        factors[k] = sum[k] / count[k] as f64 - overall;
    }
    factors
}

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1, by Acklam's rational approximation
/// (relative error below 1.2 · 10⁻⁹, far finer than whole devices need).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(net: &[(u32, u32)]) -> Vec<DayFlows> {
        net.iter()
            .map(|&(departures, arrivals)| DayFlows {
                departures,
                arrivals,
            })
            .collect()
    }

    #[test]
    fn normal_quantile_matches_tables() {
        // Printed tables: Φ⁻¹(0.5) = 0, Φ⁻¹(0.95) = 1.644854, Φ⁻¹(0.99) = 2.326348,
        // Φ⁻¹(0.01) = −2.326348 (lower tail branch), Φ⁻¹(0.999) = 3.090232 (upper tail).
        for (p, z) in [
            (0.5, 0.0),
            (0.95, 1.644_853_6),
            (0.99, 2.326_347_9),
            (0.01, -2.326_347_9),
            (0.999, 3.090_232_3),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-6, "p = {p}");
        }
    }

    #[test]
    fn constant_history_forecasts_the_constant_with_no_spread() {
        // Every day 5 out, 2 in: net outflow 3 a day, no error. Over 4 days: 12 devices,
        // safety stock 12 whatever the service level.
        let f = forecast(&days(&[(5, 2); 10]), 4, 0.3, 1.645);
        assert_eq!(f.level_per_day, 3.0);
        assert_eq!(f.net_outflow_over_lead, 12.0);
        assert_eq!(f.error_sd_per_day, 0.0);
        assert!(!f.weekly);
        assert_eq!(f.safety_stock, 12);
    }

    #[test]
    fn hand_computed_level_and_spread() {
        // Net outflow 0, 4, 2 with smoothing 0.5: level 0 → 0.5·4 + 0.5·0 = 2 → 0.5·2 + 0.5·2
        // = 2. One-step errors 4 − 0 = 4 and 2 − 2 = 0: σ = √((16 + 0)/2) = √8 ≈ 2.828.
        // Lead 2 days, z = 1: 2·2 + 1·√8·√2 = 4 + 4 = 8 devices.
        let f = forecast(&days(&[(0, 0), (4, 0), (3, 1)]), 2, 0.5, 1.0);
        assert_eq!(f.level_per_day, 2.0);
        assert!((f.error_sd_per_day - 8f64.sqrt()).abs() < 1e-12);
        assert_eq!(f.net_outflow_over_lead, 4.0);
        assert_eq!(f.safety_stock, 8);
    }

    #[test]
    fn weekly_rhythm_is_forecast_per_weekday() {
        // Four weeks of 10 out on the first five days and 0 on the last two: weekday factors
        // +20/7 and −50/7 around a mean of 50/7, so the deseasonalised series is flat and the
        // error is zero. History of 28 days ends on a weekday-6 day, so the next three days
        // are positions 0, 1, 2: 10 each, 30 over the lead time.
        let week = [(10, 0), (10, 0), (10, 0), (10, 0), (10, 0), (0, 0), (0, 0)];
        let history: Vec<_> = week.iter().cycle().take(28).copied().collect();
        let f = forecast(&days(&history), 3, 0.2, 1.645);
        assert!(f.weekly);
        assert!((f.net_outflow_over_lead - 30.0).abs() < 1e-9);
        assert!(f.error_sd_per_day < 1e-9);
        assert_eq!(f.safety_stock, 30);
    }

    #[test]
    fn no_history_and_net_inflow_give_zero_safety_stock() {
        assert_eq!(forecast(&[], 3, 0.3, 1.645).safety_stock, 0);
        assert_eq!(forecast(&days(&[(0, 5); 7]), 3, 0.3, 1.645).safety_stock, 0);
    }
}
