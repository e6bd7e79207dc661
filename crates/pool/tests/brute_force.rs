//! The exact transport solver against exhaustive search on random tiny instances: up to three
//! sources and three sinks with up to three devices each, so every plan can be enumerated.

use pool::transport::{Flow, plan_cost, solve_exact, solve_greedy};
use proptest::prelude::*;

/// The least cost over every integer plan that moves `min(Σ supply, Σ demand)` devices within
/// the supplies and demands, by enumerating every arc's count.
fn brute_force(supply: &[u32], demand: &[u32], cost: &[Vec<f64>]) -> f64 {
    let must_move = supply.iter().sum::<u32>().min(demand.iter().sum());
    let arcs: Vec<(usize, usize)> = (0..supply.len())
        .flat_map(|i| (0..demand.len()).map(move |j| (i, j)))
        .collect();
    let mut best = f64::INFINITY;
    let mut counts = vec![0u32; arcs.len()];
    loop {
        let mut sent = vec![0u32; supply.len()];
        let mut received = vec![0u32; demand.len()];
        for (&(i, j), &c) in arcs.iter().zip(&counts) {
            sent[i] += c;
            received[j] += c;
        }
        let within = sent.iter().zip(supply).all(|(s, cap)| s <= cap)
            && received.iter().zip(demand).all(|(r, cap)| r <= cap);
        if within && sent.iter().sum::<u32>() == must_move {
            let total: f64 = arcs
                .iter()
                .zip(&counts)
                .map(|(&(i, j), &c)| cost[i][j] * f64::from(c))
                .sum();
            best = best.min(total);
        }
        // Next assignment, each arc counting 0..=3 like an odometer.
        let mut k = 0;
        loop {
            if k == counts.len() {
                return best;
            }
            counts[k] += 1;
            if counts[k] <= 3 {
                break;
            }
            counts[k] = 0;
            k += 1;
        }
    }
}

fn moved(flows: &[Flow]) -> u32 {
    flows.iter().map(|f| f.devices).sum()
}

fn instance() -> impl Strategy<Value = (Vec<u32>, Vec<u32>, Vec<Vec<f64>>)> {
    (1usize..=3, 1usize..=3).prop_flat_map(|(n_sources, n_sinks)| {
        (
            prop::collection::vec(0u32..=3, n_sources),
            prop::collection::vec(0u32..=3, n_sinks),
            // Integer costs: sums are exact in f64, so equal optima compare equal.
            prop::collection::vec(
                prop::collection::vec((0u32..=20).prop_map(f64::from), n_sinks),
                n_sources,
            ),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn exact_matches_exhaustive_search((supply, demand, cost) in instance()) {
        let cost_fn = |i: usize, j: usize| cost[i][j];
        let exact = solve_exact(&supply, &demand, &cost_fn).unwrap();
        let must_move = supply.iter().sum::<u32>().min(demand.iter().sum());
        prop_assert_eq!(moved(&exact), must_move);
        prop_assert_eq!(plan_cost(&exact, &cost_fn), brute_force(&supply, &demand, &cost));

        // The baseline moves as many and never beats the optimum.
        let greedy = solve_greedy(&supply, &demand, &cost_fn);
        prop_assert_eq!(moved(&greedy), must_move);
        prop_assert!(plan_cost(&greedy, &cost_fn) >= plan_cost(&exact, &cost_fn));
    }
}
