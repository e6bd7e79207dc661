//! The release-or-inspect proposal at arrival (WCO report §7.2, "arrive and decide": the
//! integrity check and the alarm history are reviewed, and the goods are released or inspected
//! by alarm grade and risk).
//!
//! The score is a sum of points, each for one reason an officer can check for themselves: an
//! alarm still open, a violation confirmed on this journey, a seal not intact, the record of the
//! carrier and of the route, sensitive goods. It is capped at 100, and at or above
//! [`Policy::inspect_at`] the proposal is to inspect. A small share of transits is also selected
//! at random whatever their score, so that inspections keep measuring what the score misses
//! (without them the hit rate only ever checks the score against itself).
//!
//! Nothing here reads a clock or a store: the service gathers the [`Facts`], this crate turns
//! them into a [`Proposal`], deterministically, and every point of the score is in its
//! [`Reason`]s.

use model::{AlarmKind, AlarmState, Outcome};
use serde::{Deserialize, Serialize};

/// One alarm of the transit, as it stands at the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmFact {
    pub id: i64,
    pub kind: AlarmKind,
    pub grade: u8,
    pub state: AlarmState,
}

/// What the device says at arrival.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceFact {
    /// Whether its last report had the lock, rope and housing intact; `None` when it never
    /// reported them (a passive tag, or a device that never reported).
    pub intact: Option<bool>,
    /// Tamper reports (device events `tamper`, `back_cover_open`, `device_removed`) during the
    /// journey.
    pub tamper_reports: u32,
}

/// The record of a carrier or a route over the history window: transits, and how many of them
/// had a violation confirmed (an alarm resolved `confirmed_violation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub transits: u64,
    pub violations: u64,
}

/// One cargo line as the risk rules see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoodsFact {
    /// The declared type (free text).
    pub kind: String,
    /// The HS code, when declared.
    pub hs_code: Option<String>,
}

/// Everything the proposal is made from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub transit: String,
    pub alarms: Vec<AlarmFact>,
    pub device: DeviceFact,
    /// The carrier's organisation id and record, when the declaration names one.
    pub carrier: Option<(String, Record)>,
    /// The route (`DEPARTURE → DESTINATION`) and its record.
    pub route: Option<(String, Record)>,
    pub goods: Vec<GoodsFact>,
}

/// The administration's choices. Every number is in the proposal's explanation when it counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The score at or above which the proposal is to inspect.
    pub inspect_at: u32,
    /// Points for an alarm still open at the decision, by grade 1..=4.
    pub open_alarm_points: [u32; 4],
    /// Points for each alarm of this journey resolved as a confirmed violation.
    pub confirmed_violation_points: u32,
    /// Points when the device's last report has the seal not intact.
    pub broken_seal_points: u32,
    /// Points when the device reported tampering during the journey.
    pub tamper_points: u32,
    /// The share of transits with a violation confirmed that counts as normal (the prior of
    /// the carrier's and the route's rate), in [0, 1).
    pub base_violation_rate: f64,
    /// How many transits' worth of weight the base rate has: a carrier with few transits is
    /// judged mostly by the base rate, one with many by its own record.
    pub base_rate_weight: f64,
    /// Points per unit of relative risk above 1 (a record twice the base rate is one unit).
    pub history_points_per_unit: f64,
    /// Most points the carrier's record can add.
    pub carrier_points_max: u32,
    /// Most points the route's record can add.
    pub route_points_max: u32,
    /// HS code prefixes of sensitive goods (tobacco, alcohol, arms, fuels, medicines by
    /// default), and the points they add once.
    pub sensitive_hs_prefixes: Vec<String>,
    pub sensitive_goods_points: u32,
    /// Transits selected at random for control whatever their score, per thousand.
    pub random_per_mille: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            inspect_at: 50,
            open_alarm_points: [5, 15, 40, 60],
            confirmed_violation_points: 70,
            broken_seal_points: 60,
            tamper_points: 30,
            base_violation_rate: 0.02,
            base_rate_weight: 20.0,
            history_points_per_unit: 10.0,
            carrier_points_max: 30,
            route_points_max: 20,
            sensitive_hs_prefixes: [
                "24", "2203", "2204", "2205", "2206", "2208", "2710", "3004", "93",
            ]
            .map(String::from)
            .to_vec(),
            sensitive_goods_points: 15,
            random_per_mille: 20,
        }
    }
}

/// What a policy cannot be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Checks the numbers: each names itself when wrong.
    pub fn check(&self) -> Result<(), PolicyError> {
        let bad = |what: &str| Err(PolicyError(what.to_owned()));
        if !(1..=100).contains(&self.inspect_at) {
            return bad("inspect_at: between 1 and 100");
        }
        if !(self.base_violation_rate > 0.0 && self.base_violation_rate < 1.0) {
            return bad("base_violation_rate: between 0 and 1, both excluded");
        }
        if !(self.base_rate_weight.is_finite() && self.base_rate_weight > 0.0) {
            return bad("base_rate_weight: a positive number");
        }
        if !(self.history_points_per_unit.is_finite() && self.history_points_per_unit >= 0.0) {
            return bad("history_points_per_unit: a number of at least 0");
        }
        if self.random_per_mille > 1000 {
            return bad("random_per_mille: at most 1000");
        }
        Ok(())
    }
}

/// What the proposal says to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Release,
    Inspect,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Release => "release",
            Decision::Inspect => "inspect",
        }
    }
}

/// What a reason is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    OpenAlarm,
    ConfirmedViolation,
    ResolvedAlarm,
    SealIntegrity,
    Tampering,
    CarrierRecord,
    RouteRecord,
    SensitiveGoods,
    RandomSelection,
}

/// One reason, with the points it adds (0 for what was looked at and found harmless).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub factor: Factor,
    pub points: u32,
    pub detail: String,
}

/// The proposal and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub decision: Decision,
    /// 0..=100: the reasons' points, capped.
    pub score: u32,
    pub inspect_at: u32,
    /// Selected at random for control (the proposal is then to inspect whatever the score).
    pub random: bool,
    /// Every reason looked at, the heaviest first.
    pub reasons: Vec<Reason>,
}

/// The score's cap.
pub const MAX_SCORE: u32 = 100;

/// Makes the proposal. Deterministic: the same facts and policy give the same proposal (the
/// random selection is a hash of the transit id, so asking twice gives the same answer).
pub fn propose(facts: &Facts, policy: &Policy) -> Proposal {
    let mut reasons = Vec::new();
    for a in &facts.alarms {
        let label = format!("alarm #{} {} (grade {})", a.id, a.kind.as_str(), a.grade);
        match a.state {
            AlarmState::Resolved(Outcome::ConfirmedViolation)
            | AlarmState::Closed(Outcome::ConfirmedViolation) => reasons.push(Reason {
                factor: Factor::ConfirmedViolation,
                points: policy.confirmed_violation_points,
                detail: format!("{label}: violation confirmed on this journey"),
            }),
            AlarmState::Resolved(outcome) | AlarmState::Closed(outcome) => reasons.push(Reason {
                factor: Factor::ResolvedAlarm,
                points: 0,
                detail: format!("{label}: resolved as {}", outcome_text(outcome)),
            }),
            AlarmState::Open | AlarmState::Acknowledged | AlarmState::Dispatched => {
                let g = usize::from(a.grade.clamp(1, 4)) - 1;
                reasons.push(Reason {
                    factor: Factor::OpenAlarm,
                    points: policy.open_alarm_points[g],
                    detail: format!("{label}: still {}", a.state.as_str()),
                });
            }
        }
    }
    match facts.device.intact {
        Some(false) => reasons.push(Reason {
            factor: Factor::SealIntegrity,
            points: policy.broken_seal_points,
            detail: "the device's last report has the seal not intact".into(),
        }),
        Some(true) => reasons.push(Reason {
            factor: Factor::SealIntegrity,
            points: 0,
            detail: "the device's last report has the seal intact".into(),
        }),
        None => {}
    }
    if facts.device.tamper_reports > 0 {
        reasons.push(Reason {
            factor: Factor::Tampering,
            points: policy.tamper_points,
            detail: format!(
                "the device reported tampering {} time{}",
                facts.device.tamper_reports,
                if facts.device.tamper_reports == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        });
    }
    if let Some((carrier, record)) = &facts.carrier {
        reasons.push(history(
            Factor::CarrierRecord,
            &format!("carrier {carrier}"),
            *record,
            policy,
            policy.carrier_points_max,
        ));
    }
    if let Some((route, record)) = &facts.route {
        reasons.push(history(
            Factor::RouteRecord,
            &format!("route {route}"),
            *record,
            policy,
            policy.route_points_max,
        ));
    }
    let sensitive: Vec<String> = facts
        .goods
        .iter()
        .filter_map(|g| {
            let hs = g.hs_code.as_deref()?;
            let digits: String = hs.chars().filter(char::is_ascii_digit).collect();
            policy
                .sensitive_hs_prefixes
                .iter()
                .any(|p| !p.is_empty() && digits.starts_with(p.as_str()))
                .then(|| format!("{} (HS {hs})", g.kind))
        })
        .collect();
    if !sensitive.is_empty() {
        reasons.push(Reason {
            factor: Factor::SensitiveGoods,
            points: policy.sensitive_goods_points,
            detail: format!("sensitive goods: {}", sensitive.join(", ")),
        });
    }
    let random = selected_at_random(&facts.transit, policy.random_per_mille);
    if random {
        reasons.push(Reason {
            factor: Factor::RandomSelection,
            points: 0,
            detail: format!(
                "selected at random for control ({:.1} % of transits are)",
                f64::from(policy.random_per_mille) / 10.0
            ),
        });
    }
    // Heaviest first; ties in the order they were looked at.
    reasons.sort_by_key(|r| std::cmp::Reverse(r.points));
    let total: u64 = reasons.iter().map(|r| u64::from(r.points)).sum();
    let score = total.min(u64::from(MAX_SCORE)) as u32;
    let decision = if score >= policy.inspect_at || random {
        Decision::Inspect
    } else {
        Decision::Release
    };
    Proposal {
        decision,
        score,
        inspect_at: policy.inspect_at,
        random,
        reasons,
    }
}

fn outcome_text(o: Outcome) -> &'static str {
    match o {
        Outcome::ConfirmedViolation => "a confirmed violation",
        Outcome::FalseAlarm => "a false alarm",
        Outcome::TechnicalFault => "a technical fault",
        Outcome::Authorised => "authorised",
    }
}

/// The points of a record: its violation rate smoothed towards the base rate (a new carrier
/// is neither trusted nor suspected), as a relative risk; each unit above 1 is worth
/// `history_points_per_unit`, up to `max`.
fn history(factor: Factor, who: &str, r: Record, p: &Policy, max: u32) -> Reason {
    let smoothed = (r.violations as f64 + p.base_violation_rate * p.base_rate_weight)
        / (r.transits as f64 + p.base_rate_weight);
    let relative = smoothed / p.base_violation_rate;
    let points = ((relative - 1.0) * p.history_points_per_unit)
        .round()
        .clamp(0.0, f64::from(max)) as u32;
    Reason {
        factor,
        points,
        detail: format!(
            "{who}: {} of {} transits with a violation confirmed ({:.1} % smoothed, {:.1}× the base rate of {:.1} %)",
            r.violations,
            r.transits,
            smoothed * 100.0,
            relative,
            p.base_violation_rate * 100.0
        ),
    }
}

/// Whether the transit is among the `per_mille` selected for control: FNV-1a of its id, so the
/// choice is the same every time it is asked and cannot be steered by asking again.
pub fn selected_at_random(transit: &str, per_mille: u32) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in transit.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % 1000) < u64::from(per_mille)
}

/// Decisions taken, and what inspections found: the statistics of the release-or-inspect
/// practice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionStats {
    pub decisions: u64,
    pub released: u64,
    pub inspected: u64,
    /// Decisions that went against the proposal (each with its reason).
    pub overrides: u64,
    /// Inspections whose result was recorded, and those that found something.
    pub inspections_with_result: u64,
    pub inspections_finding: u64,
}

impl DecisionStats {
    /// The share of decisions that released without inspection, 0..=1 (`None` before any).
    pub fn released_share(&self) -> Option<f64> {
        (self.decisions > 0).then(|| self.released as f64 / self.decisions as f64)
    }

    /// The share of inspections with a result that found something (`None` before any).
    pub fn hit_rate(&self) -> Option<f64> {
        (self.inspections_with_result > 0)
            .then(|| self.inspections_finding as f64 / self.inspections_with_result as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(id: i64, kind: AlarmKind, grade: u8, state: AlarmState) -> AlarmFact {
        AlarmFact {
            id,
            kind,
            grade,
            state,
        }
    }

    /// No random selection, so the score alone decides.
    fn policy() -> Policy {
        Policy {
            random_per_mille: 0,
            ..Policy::default()
        }
    }

    #[test]
    fn a_clean_journey_is_released_and_says_why() {
        let facts = Facts {
            transit: "T1".into(),
            device: DeviceFact {
                intact: Some(true),
                tamper_reports: 0,
            },
            carrier: Some((
                "ACME".into(),
                Record {
                    transits: 200,
                    violations: 1,
                },
            )),
            ..Facts::default()
        };
        let p = propose(&facts, &policy());
        assert_eq!((p.decision, p.score), (Decision::Release, 0));
        // The harmless facts are in the explanation too.
        assert_eq!(p.reasons.len(), 2, "{p:?}");
        assert!(p.reasons[1].detail.contains("1 of 200 transits"), "{p:?}");
    }

    #[test]
    fn an_open_grade_4_alarm_alone_means_inspect() {
        let facts = Facts {
            transit: "T1".into(),
            alarms: vec![alarm(7, AlarmKind::IllegalOpening, 4, AlarmState::Open)],
            ..Facts::default()
        };
        let p = propose(&facts, &policy());
        assert_eq!((p.decision, p.score), (Decision::Inspect, 60));
        assert_eq!(p.reasons[0].factor, Factor::OpenAlarm);
        assert!(
            p.reasons[0]
                .detail
                .contains("alarm #7 illegal_opening (grade 4)")
        );
    }

    #[test]
    fn resolved_false_alarms_count_nothing_but_are_listed() {
        let facts = Facts {
            transit: "T1".into(),
            alarms: vec![
                alarm(
                    1,
                    AlarmKind::RouteDeviation,
                    3,
                    AlarmState::Closed(Outcome::FalseAlarm),
                ),
                alarm(2, AlarmKind::LowBattery, 1, AlarmState::Open),
            ],
            ..Facts::default()
        };
        let p = propose(&facts, &policy());
        assert_eq!((p.decision, p.score), (Decision::Release, 5));
        assert!(p.reasons.iter().any(|r| r.detail.contains("false alarm")));
    }

    #[test]
    fn hand_checked_history_points() {
        // Carrier: 3 violations in 40 transits; smoothed (3 + 0.02·20) / (40 + 20) = 3.4/60 =
        // 5.667 %, relative 2.833, (2.833 − 1)·10 = 18.3 → 18 points.
        // Route: 0 of 100: smoothed 0.4/120 = 0.333 %, below the base: 0 points.
        // Goods: tobacco (HS 2402) → 15. Total 33: release (under 50).
        let facts = Facts {
            transit: "T1".into(),
            carrier: Some((
                "ACME".into(),
                Record {
                    transits: 40,
                    violations: 3,
                },
            )),
            route: Some((
                "CN-YIWU → CN-NINGBO".into(),
                Record {
                    transits: 100,
                    violations: 0,
                },
            )),
            goods: vec![GoodsFact {
                kind: "cigarettes".into(),
                hs_code: Some("2402.20".into()),
            }],
            ..Facts::default()
        };
        let p = propose(&facts, &policy());
        let points = |f: Factor| p.reasons.iter().find(|r| r.factor == f).unwrap().points;
        assert_eq!(points(Factor::CarrierRecord), 18);
        assert_eq!(points(Factor::RouteRecord), 0);
        assert_eq!(points(Factor::SensitiveGoods), 15);
        assert_eq!((p.decision, p.score), (Decision::Release, 33));
        // A broken seal on top: 93 → inspect.
        let broken = Facts {
            device: DeviceFact {
                intact: Some(false),
                tamper_reports: 0,
            },
            ..facts
        };
        let p = propose(&broken, &policy());
        assert_eq!((p.decision, p.score), (Decision::Inspect, 93));
        assert_eq!(p.reasons[0].factor, Factor::SealIntegrity);
    }

    #[test]
    fn random_selection_is_stable_and_near_its_share() {
        let picked = (0..100_000)
            .filter(|i| selected_at_random(&format!("T-{i}"), 20))
            .count();
        assert!((1_700..2_300).contains(&picked), "{picked}");
        assert_eq!(
            selected_at_random("T-42", 20),
            selected_at_random("T-42", 20)
        );
        assert!(!selected_at_random("T-42", 0));
        assert!(selected_at_random("T-42", 1000));
        let random = (0..1000)
            .map(|i| format!("T-{i}"))
            .find(|t| selected_at_random(t, 20))
            .unwrap();
        let p = propose(
            &Facts {
                transit: random,
                ..Facts::default()
            },
            &Policy::default(),
        );
        assert_eq!(
            (p.decision, p.score, p.random),
            (Decision::Inspect, 0, true)
        );
    }

    #[test]
    fn policies_are_checked() {
        assert_eq!(Policy::default().check(), Ok(()));
        let bad = Policy {
            base_violation_rate: 0.0,
            ..Policy::default()
        };
        assert!(
            bad.check()
                .unwrap_err()
                .0
                .starts_with("base_violation_rate")
        );
        let bad = Policy {
            inspect_at: 0,
            ..Policy::default()
        };
        assert!(bad.check().unwrap_err().0.starts_with("inspect_at"));
    }

    #[test]
    fn statistics() {
        let s = DecisionStats {
            decisions: 50,
            released: 49,
            inspected: 1,
            overrides: 0,
            inspections_with_result: 1,
            inspections_finding: 1,
        };
        assert_eq!(s.released_share(), Some(0.98));
        assert_eq!(s.hit_rate(), Some(1.0));
        assert_eq!(DecisionStats::default().hit_rate(), None);
    }
}
