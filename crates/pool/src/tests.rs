use super::*;

fn station(id: &str, net_per_day: Option<(u32, u32)>, minimum_stock: u32) -> Station {
    Station {
        id: id.into(),
        lat_deg: None,
        lon_deg: None,
        capacity: None,
        minimum_stock,
        history: net_per_day
            .map(|(departures, arrivals)| {
                vec![
                    DayFlows {
                        departures,
                        arrivals
                    };
                    7
                ]
            })
            .unwrap_or_default(),
    }
}

fn device(id: &str, station: &str, state: DeviceState, battery_pct: u8) -> Device {
    Device {
        id: id.into(),
        station: station.into(),
        state,
        battery_pct,
    }
}

fn options() -> PlanOptions {
    PlanOptions {
        lead_days: 2,
        ..PlanOptions::default()
    }
}

/// Four stations, constant histories (so no forecast error and the safety stock is the
/// forecast itself):
/// - A: no history, operator floor 2; 5 available → surplus 3.
/// - B: 3 out, 1 in a day → 2/day · 2 days = 4; 1 available + 1 charging → deficit 2.
/// - C: 2 out, 1 in a day → 1/day · 2 days = 2; empty → deficit 2.
/// - D: no history, no floor; 2 available → surplus 2.
fn four_stations(d_available: usize) -> PoolInput {
    use DeviceState::*;
    let mut devices = vec![
        device("a1", "A", Available, 50),
        device("a2", "A", Available, 90),
        device("a3", "A", Available, 90),
        device("a4", "A", Available, 10),
        device("a5", "A", Available, 70),
        device("b1", "B", Available, 100),
        device("b2", "B", Charging, 20),
        device("b3", "B", Maintenance, 0),
        device("d1", "D", Available, 30),
        device("d2", "D", Available, 80),
    ];
    devices.truncate(8 + d_available);
    PoolInput {
        stations: vec![
            station("A", None, 2),
            station("B", Some((3, 1)), 0),
            station("C", Some((2, 1)), 0),
            station("D", None, 0),
        ],
        devices,
        // A→B 4, A→C 3, D→B 1, D→C 5; the other entries are never used (a station is a
        // source or a sink, not both) and set high.
        cost: TransportCost::Matrix {
            cost_per_device: vec![
                vec![0.0, 4.0, 3.0, 99.0],
                vec![99.0, 0.0, 99.0, 99.0],
                vec![99.0, 99.0, 0.0, 99.0],
                vec![99.0, 1.0, 5.0, 0.0],
            ],
        },
    }
}

#[test]
fn hand_checked_four_stations() {
    // Every plan fills B and C (supply 5 ≥ demand 4). With x = D→B and y = D→C, A→B = 2 − x and
    // A→C = 2 − y, so the cost is 4(2 − x) + 3(2 − y) + x + 5y = 14 − 3x + 2y, least at x = 2,
    // y = 0 (D's 2 devices both go to B, A sends 2 to C): 6 + 2 = 8.
    let plan = plan(&four_stations(2), &options()).unwrap();
    assert_eq!(plan.total_cost, 8.0);
    assert_eq!(plan.shortfall_devices, 0);
    let moves: Vec<_> = plan
        .moves
        .iter()
        .map(|m| (m.from.as_str(), m.to.as_str(), m.devices, m.cost))
        .collect();
    assert_eq!(moves, vec![("A", "C", 2, 6.0), ("D", "B", 2, 2.0)]);
    // Fullest batteries first, ties by id.
    assert_eq!(plan.moves[0].device_ids, ["a2", "a3"]);
    assert_eq!(plan.moves[1].device_ids, ["d2", "d1"]);

    let summary: Vec<_> = plan
        .stations
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.stock_before,
                s.target,
                s.stock_after,
                s.shortfall,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("A", 5, 2, 3, 0),
            ("B", 2, 4, 4, 0),
            ("C", 0, 2, 2, 0),
            ("D", 2, 0, 0, 0)
        ]
    );
    assert_eq!(plan.stations[1].maintenance, 1);
}

#[test]
fn short_pool_moves_every_spare_device_at_least_cost() {
    // Without D's devices the spare is A's 3 against a need of 4: all 3 move and one device of
    // shortfall is left. With y = A→C ∈ {1, 2} (A→B = 3 − y ≤ 2), the cost is 4(3 − y) + 3y =
    // 12 − y, least at y = 2: A→B 1 (4) and A→C 2 (6), total 10, B one short.
    let plan = plan(&four_stations(0), &options()).unwrap();
    assert_eq!(plan.total_cost, 10.0);
    assert_eq!(plan.shortfall_devices, 1);
    assert_eq!(plan.stations[1].shortfall, 1);
    assert_eq!(plan.stations[0].stock_after, 2);
}

#[test]
fn capacity_caps_the_target() {
    let mut input = four_stations(2);
    input.stations[1].capacity = Some(3);
    let plan = plan(&input, &options()).unwrap();
    assert_eq!(plan.stations[1].target, 3);
    assert_eq!(plan.stations[1].stock_after, 3);
}

#[test]
fn distance_cost_is_handling_plus_great_circle_km() {
    // One degree of latitude is 111.195 km on the mean sphere.
    let mut input = PoolInput {
        stations: vec![station("N", None, 0), station("S", None, 1)],
        devices: vec![device("n1", "N", DeviceState::Available, 100)],
        cost: TransportCost::Distance {
            handling_per_device: 5.0,
            per_device_per_km: 0.5,
        },
    };
    for (s, lat) in input.stations.iter_mut().zip([46.0, 45.0]) {
        s.lat_deg = Some(lat);
        s.lon_deg = Some(7.0);
    }
    let plan = plan(&input, &options()).unwrap();
    assert_eq!(plan.moves.len(), 1);
    assert!((plan.total_cost - (5.0 + 0.5 * 111.195)).abs() < 0.01);
}

#[test]
fn empty_pool_plans_nothing() {
    let input = PoolInput {
        stations: vec![station("A", None, 0), station("B", Some((1, 0)), 0)],
        devices: vec![],
        cost: TransportCost::Matrix {
            cost_per_device: vec![vec![0.0; 2]; 2],
        },
    };
    let plan = plan(&input, &options()).unwrap();
    assert!(plan.moves.is_empty());
    assert_eq!(plan.total_cost, 0.0);
    // B needs ceil(2 + 1.645·0·√2) = 2 and has nothing: the whole need is shortfall.
    assert_eq!(plan.shortfall_devices, 2);
}

#[test]
fn bad_inputs_are_named() {
    let check = |input: PoolInput, options: PlanOptions, expected: &str| {
        let message = plan(&input, &options).unwrap_err().to_string();
        assert_eq!(message, expected);
    };
    let mut no_stations = four_stations(2);
    no_stations.stations.clear();
    check(no_stations, options(), "the pool has no stations");

    let mut duplicate = four_stations(2);
    duplicate.stations[3].id = "A".into();
    check(duplicate, options(), "station \"A\" appears more than once");

    let mut unknown = four_stations(2);
    unknown.devices[0].station = "Z".into();
    check(
        unknown,
        options(),
        "device \"a1\" is at station \"Z\", which is not in the station list",
    );

    let mut twice = four_stations(2);
    twice.devices[1].id = "a1".into();
    check(twice, options(), "device \"a1\" appears more than once");

    let mut nan = four_stations(2);
    if let TransportCost::Matrix { cost_per_device } = &mut nan.cost {
        cost_per_device[0][2] = f64::NAN;
    }
    check(
        nan,
        options(),
        "the cost from \"A\" to \"C\" is NaN; costs must be between 0 and 1e9",
    );

    let mut ragged = four_stations(2);
    if let TransportCost::Matrix { cost_per_device } = &mut ragged.cost {
        cost_per_device[2].pop();
    }
    check(
        ragged,
        options(),
        "the cost matrix must be 4 × 4 (one row and column per station), found 3 columns in row 2",
    );

    let mut no_position = four_stations(2);
    no_position.cost = TransportCost::Distance {
        handling_per_device: 1.0,
        per_device_per_km: 1.0,
    };
    check(
        no_position,
        options(),
        "station \"A\" has no coordinates, which distance-based costs need",
    );

    let certain = PlanOptions {
        service_level: 1.0,
        ..options()
    };
    check(
        four_stations(2),
        certain,
        "service level must be at least 0.5 and below 1, not 1",
    );
    let no_lead = PlanOptions {
        lead_days: 0,
        ..options()
    };
    check(
        four_stations(2),
        no_lead,
        "lead time must be 1 to 365 days, not 0",
    );
}
