//! `pool::plan` on random small pools: it never panics, and every plan it returns keeps its
//! promises — devices move at most once, from their own station and only when available;
//! stock is conserved; senders keep their target; every station reaches its target when the
//! spare devices cover the deficits, and otherwise every spare device moves.

use std::collections::HashSet;

use pool::{DayFlows, Device, DeviceState, PlanOptions, PoolInput, Station, TransportCost};
use proptest::prelude::*;

const STATES: [DeviceState; 4] = [
    DeviceState::Available,
    DeviceState::Charging,
    DeviceState::InReturnShipment,
    DeviceState::Maintenance,
];

fn pool_input() -> impl Strategy<Value = PoolInput> {
    (1usize..=6).prop_flat_map(|n| {
        let station = (
            prop::collection::vec((0u32..=8, 0u32..=8), 0..=30),
            0u32..=4,
            prop::option::of(0u32..=12),
        );
        (
            prop::collection::vec(station, n),
            prop::collection::vec((0..n, 0usize..4, 0u8..=100), 0..=40),
            prop::collection::vec(prop::collection::vec(0.0f64..100.0, n), n),
        )
            .prop_map(move |(stations, devices, matrix)| PoolInput {
                stations: stations
                    .into_iter()
                    .enumerate()
                    .map(|(i, (history, minimum_stock, capacity))| Station {
                        id: format!("S{i}"),
                        lat_deg: None,
                        lon_deg: None,
                        capacity,
                        minimum_stock,
                        history: history
                            .into_iter()
                            .map(|(departures, arrivals)| DayFlows {
                                departures,
                                arrivals,
                            })
                            .collect(),
                    })
                    .collect(),
                devices: devices
                    .into_iter()
                    .enumerate()
                    .map(|(d, (station, state, battery_pct))| Device {
                        id: format!("D{d}"),
                        station: format!("S{station}"),
                        state: STATES[state],
                        battery_pct,
                    })
                    .collect(),
                cost: TransportCost::Matrix {
                    cost_per_device: matrix,
                },
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn plans_keep_their_promises(input in pool_input(), lead_days in 1u32..=7, level in 0.5f64..0.999) {
        let options = PlanOptions { lead_days, service_level: level, smoothing: 0.3 };
        let plan = pool::plan(&input, &options).unwrap();

        let mut moved = HashSet::new();
        for m in &plan.moves {
            prop_assert_eq!(m.device_ids.len(), m.devices as usize);
            for id in &m.device_ids {
                prop_assert!(moved.insert(id.clone()), "{} moved twice", id);
                let device = input.devices.iter().find(|d| &d.id == id).unwrap();
                prop_assert_eq!(&device.station, &m.from);
                prop_assert_eq!(device.state, DeviceState::Available);
            }
        }
        let total_surplus: u64 = plan.stations.iter().map(|s| u64::from(s.surplus)).sum();
        let total_deficit: u64 = plan.stations.iter().map(|s| u64::from(s.deficit)).sum();
        let total_moved: u64 = plan.moves.iter().map(|m| u64::from(m.devices)).sum();
        prop_assert_eq!(total_moved, total_surplus.min(total_deficit));
        for s in &plan.stations {
            prop_assert_eq!(s.stock_after, s.stock_before - s.sent + s.received);
            prop_assert!(s.sent <= s.available);
            if s.sent > 0 {
                prop_assert!(s.stock_after >= s.target);
            }
            if total_surplus >= total_deficit {
                prop_assert!(s.stock_after >= s.target);
            }
        }
        prop_assert_eq!(plan.shortfall_devices, total_deficit.saturating_sub(total_surplus));
    }

    #[test]
    fn bad_costs_are_errors_not_panics(mut input in pool_input(), bad in prop::sample::select(vec![f64::NAN, f64::INFINITY, -1.0, 2e9])) {
        if let TransportCost::Matrix { cost_per_device } = &mut input.cost {
            cost_per_device[0][0] = bad;
        }
        let message = pool::plan(&input, &PlanOptions::default()).unwrap_err().to_string();
        prop_assert!(message.starts_with("the cost from \"S0\" to \"S0\" is "), "{}", message);
    }
}
