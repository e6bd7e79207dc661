//! The transportation problem behind the rebalancing plan, solved exactly as a linear program
//! and, as a baseline, by the greedy least-cost rule.
//!
//! Sources `i` can send up to `supply[i]` devices, sinks `j` can take up to `demand[j]`, and a
//! device moved from `i` to `j` costs `cost(i, j)`. Exactly `min(Σ supply, Σ demand)` devices
//! move: when the surplus covers the deficits every deficit is filled, and when it does not,
//! every surplus device moves (the total shortfall is then as small as it can be). Among the
//! plans that move that many, the cheapest is chosen.
//!
//! The constraint matrix of a transportation problem is totally unimodular and the bounds are
//! integers, so every vertex of the polytope is integral and the simplex optimum is a whole
//! number of devices on every arc. The solution is still checked: each value must be within
//! [`INTEGRALITY_TOLERANCE`] of an integer, and the rounded plan must meet every bound exactly.

use microlp::{ComparisonOp, OptimizationDirection, Problem};

/// How far a simplex value may be from a whole number of devices before the solve is refused.
pub const INTEGRALITY_TOLERANCE: f64 = 1e-6;

/// Devices moved from source `from` to sink `to` (indices into the supply and demand slices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub from: usize,
    pub to: usize,
    pub devices: u32,
}

/// Why the linear program gave no usable plan. With validated inputs this does not happen: the
/// problem is always feasible and bounded; it is reported rather than hidden if it does.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("the linear-programming solver failed: {0}")]
    Solver(String),
    #[error(
        "the solver returned {value} devices from source {from} to sink {to}, not a whole number"
    )]
    NotIntegral { from: usize, to: usize, value: f64 },
    #[error("the solver's plan breaks a supply or demand bound after rounding")]
    BoundBroken,
}

/// The cheapest plan that moves `min(Σ supply, Σ demand)` devices, by the simplex method.
///
/// `cost(i, j)` must be finite and non-negative (checked by [`crate::plan`]). One variable per
/// (source, sink) pair: the complete bipartite graph, so no cheaper route is left out.
pub fn solve_exact(
    supply: &[u32],
    demand: &[u32],
    cost: &dyn Fn(usize, usize) -> f64,
) -> Result<Vec<Flow>, SolveError> {
    let total_supply: u64 = supply.iter().map(|&s| u64::from(s)).sum();
    let total_demand: u64 = demand.iter().map(|&d| u64::from(d)).sum();
    if total_supply == 0 || total_demand == 0 {
        return Ok(Vec::new());
    }
    // The side with less in total is met with equality: that is the "move as many as can
    // move" rule. The other side is a capacity.
    let (supply_op, demand_op) = if total_supply <= total_demand {
        (ComparisonOp::Eq, ComparisonOp::Le)
    } else {
        (ComparisonOp::Le, ComparisonOp::Eq)
    };

    let mut problem = Problem::new(OptimizationDirection::Minimize);
    let sources: Vec<usize> = (0..supply.len()).filter(|&i| supply[i] > 0).collect();
    let sinks: Vec<usize> = (0..demand.len()).filter(|&j| demand[j] > 0).collect();
    let mut vars = Vec::with_capacity(sources.len() * sinks.len());
    for &i in &sources {
        for &j in &sinks {
            // An arc can carry no more than either end allows; the bound also keeps the
            // simplex away from unbounded directions.
            let upper = f64::from(supply[i].min(demand[j]));
            vars.push(problem.add_var(cost(i, j), (0.0, upper)));
        }
    }
    for (row, &i) in sources.iter().enumerate() {
        let terms: Vec<_> = (0..sinks.len())
            .map(|col| (vars[row * sinks.len() + col], 1.0))
            .collect();
        problem.add_constraint(terms.as_slice(), supply_op, f64::from(supply[i]));
    }
    for (col, &j) in sinks.iter().enumerate() {
        let terms: Vec<_> = (0..sources.len())
            .map(|row| (vars[row * sinks.len() + col], 1.0))
            .collect();
        problem.add_constraint(terms.as_slice(), demand_op, f64::from(demand[j]));
    }
    let solution = problem
        .solve()
        .map_err(|e| SolveError::Solver(e.to_string()))?
        .into_solution()
        .map_err(|e| SolveError::Solver(format!("{e:?}")))?;

    let mut flows = Vec::new();
    for (row, &i) in sources.iter().enumerate() {
        for (col, &j) in sinks.iter().enumerate() {
            let value = solution.var_value(vars[row * sinks.len() + col]);
            let rounded = value.round();
            if (value - rounded).abs() > INTEGRALITY_TOLERANCE {
                return Err(SolveError::NotIntegral {
                    from: i,
                    to: j,
                    value,
                });
            }
            if rounded >= 1.0 {
                flows.push(Flow {
                    from: i,
                    to: j,
                    devices: rounded as u32,
                });
            }
        }
    }
    check_bounds(supply, demand, &flows)?;
    Ok(flows)
}

/// Every source sends at most its supply, every sink takes at most its demand, and the total
/// moved is `min(Σ supply, Σ demand)`.
fn check_bounds(supply: &[u32], demand: &[u32], flows: &[Flow]) -> Result<(), SolveError> {
    let mut sent = vec![0u64; supply.len()];
    let mut received = vec![0u64; demand.len()];
    for f in flows {
        sent[f.from] += u64::from(f.devices);
        received[f.to] += u64::from(f.devices);
    }
    let total_supply: u64 = supply.iter().map(|&s| u64::from(s)).sum();
    let total_demand: u64 = demand.iter().map(|&d| u64::from(d)).sum();
    let moved: u64 = sent.iter().sum();
    let within = sent
        .iter()
        .zip(supply)
        .all(|(&s, &cap)| s <= u64::from(cap))
        && received
            .iter()
            .zip(demand)
            .all(|(&r, &cap)| r <= u64::from(cap));
    if within && moved == total_supply.min(total_demand) {
        Ok(())
    } else {
        Err(SolveError::BoundBroken)
    }
}

/// The greedy least-cost rule, the textbook starting solution of the transportation problem:
/// take the cheapest (source, sink) pair with both ends open, move as many as both allow,
/// repeat. It moves the same number of devices as [`solve_exact`] but is not optimal in
/// general; it is here as the baseline the benchmark compares the exact plan with.
pub fn solve_greedy(
    supply: &[u32],
    demand: &[u32],
    cost: &dyn Fn(usize, usize) -> f64,
) -> Vec<Flow> {
    let mut pairs = Vec::new();
    for (i, &s) in supply.iter().enumerate() {
        for (j, &d) in demand.iter().enumerate() {
            if s > 0 && d > 0 {
                pairs.push((cost(i, j), i, j));
            }
        }
    }
    // Costs are finite (validated), so total_cmp is the ordinary order; ties go to the lower
    // indices, for a deterministic plan.
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut left_supply = supply.to_vec();
    let mut left_demand = demand.to_vec();
    let mut flows = Vec::new();
    for (_, i, j) in pairs {
        let devices = left_supply[i].min(left_demand[j]);
        if devices > 0 {
            left_supply[i] -= devices;
            left_demand[j] -= devices;
            flows.push(Flow {
                from: i,
                to: j,
                devices,
            });
        }
    }
    flows
}

/// Σ cost · devices of a plan.
pub fn plan_cost(flows: &[Flow], cost: &dyn Fn(usize, usize) -> f64) -> f64 {
    flows
        .iter()
        .map(|f| cost(f.from, f.to) * f64::from(f.devices))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_two_by_two_where_greedy_loses() {
        // Sources A (2 spare) and B (2 spare); sinks X (2 short) and Y (2 short).
        // Costs: A→X 1, A→Y 2, B→X 2, B→Y 10.
        // Greedy takes the cheapest pair A→X (1) for 2 devices, leaving B→Y (10) for 2:
        // cost 2 + 20 = 22. The optimum sends A→Y 2 and B→X 2: 4 + 4 = 8. (The other
        // candidates: A→X 1 + A→Y 1 + B→X 1 + B→Y 1 = 1 + 2 + 2 + 10 = 15; a plan is fixed by
        // x = A→X ∈ {0, 1, 2}, cost 8 + 7x, so x = 0 is optimal.)
        let cost = |i: usize, j: usize| [[1.0, 2.0], [2.0, 10.0]][i][j];
        let exact = solve_exact(&[2, 2], &[2, 2], &cost).unwrap();
        assert_eq!(plan_cost(&exact, &cost), 8.0);
        assert_eq!(
            exact,
            vec![
                Flow {
                    from: 0,
                    to: 1,
                    devices: 2
                },
                Flow {
                    from: 1,
                    to: 0,
                    devices: 2
                }
            ]
        );
        let greedy = solve_greedy(&[2, 2], &[2, 2], &cost);
        assert_eq!(plan_cost(&greedy, &cost), 22.0);
    }

    #[test]
    fn short_supply_moves_everything_to_the_cheapest_sinks() {
        // 3 spare at A, sinks X (2 short, cost 5) and Y (2 short, cost 1): all 3 move, 2 to Y
        // and 1 to X: 2·1 + 1·5 = 7. One device of shortfall stays at X.
        let cost = |_: usize, j: usize| [5.0, 1.0][j];
        let exact = solve_exact(&[3], &[2, 2], &cost).unwrap();
        assert_eq!(plan_cost(&exact, &cost), 7.0);
        assert_eq!(exact.iter().map(|f| f.devices).sum::<u32>(), 3);
    }

    #[test]
    fn nothing_to_move() {
        let cost = |_: usize, _: usize| 1.0;
        assert!(solve_exact(&[0, 0], &[3], &cost).unwrap().is_empty());
        assert!(solve_exact(&[3], &[], &cost).unwrap().is_empty());
        assert!(solve_greedy(&[], &[], &cost).is_empty());
    }
}
