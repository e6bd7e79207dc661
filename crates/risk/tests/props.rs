//! Properties of the proposal over arbitrary facts: the score is the capped sum of its reasons'
//! points, more trouble never lowers it, and asking twice gives the same answer.

use model::{AlarmKind, AlarmState, Outcome};
use proptest::prelude::*;
use risk::{AlarmFact, Decision, DeviceFact, Facts, GoodsFact, Policy, Record, propose};

fn state() -> impl Strategy<Value = AlarmState> {
    prop_oneof![
        Just(AlarmState::Open),
        Just(AlarmState::Acknowledged),
        Just(AlarmState::Dispatched),
        Just(AlarmState::Resolved(Outcome::FalseAlarm)),
        Just(AlarmState::Closed(Outcome::ConfirmedViolation)),
        Just(AlarmState::Closed(Outcome::TechnicalFault)),
    ]
}

fn alarm() -> impl Strategy<Value = AlarmFact> {
    (0i64..1000, 0u8..=6, state()).prop_map(|(id, grade, state)| AlarmFact {
        id,
        kind: AlarmKind::Tamper,
        grade,
        state,
    })
}

fn record() -> impl Strategy<Value = Record> {
    (0u64..10_000, 0u64..10_000).prop_map(|(t, v)| Record {
        transits: t.max(v),
        violations: v,
    })
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        "[A-Z0-9-]{1,12}",
        prop::collection::vec(alarm(), 0..6),
        prop::option::of(any::<bool>()),
        0u32..5,
        prop::option::of(record()),
        prop::option::of(record()),
        prop::option::of("[0-9.]{0,10}"),
    )
        .prop_map(
            |(transit, alarms, intact, tamper, carrier, route, hs)| Facts {
                transit,
                alarms,
                device: DeviceFact {
                    intact,
                    tamper_reports: tamper,
                },
                carrier: carrier.map(|r| ("C".to_owned(), r)),
                route: route.map(|r| ("A → B".to_owned(), r)),
                goods: vec![GoodsFact {
                    kind: "goods".into(),
                    hs_code: hs,
                }],
            },
        )
}

proptest! {
    #[test]
    fn the_score_is_its_reasons_capped(f in facts()) {
        let p = propose(&f, &Policy::default());
        let sum: u32 = p.reasons.iter().map(|r| r.points).sum();
        prop_assert_eq!(p.score, sum.min(risk::MAX_SCORE));
        prop_assert_eq!(
            p.decision,
            if p.score >= p.inspect_at || p.random { Decision::Inspect } else { Decision::Release }
        );
        prop_assert_eq!(&p, &propose(&f, &Policy::default()));
    }

    #[test]
    fn another_open_alarm_never_lowers_the_score(f in facts(), extra in alarm()) {
        let before = propose(&f, &Policy::default());
        let mut more = f.clone();
        more.alarms.push(AlarmFact { state: AlarmState::Open, ..extra });
        let after = propose(&more, &Policy::default());
        prop_assert!(after.score >= before.score);
        prop_assert!(before.decision == Decision::Release || after.decision == Decision::Inspect);
    }

    #[test]
    fn a_worse_record_never_lowers_the_score(f in facts(), more in 1u64..100) {
        let Some((c, r)) = f.carrier.clone() else { return Ok(()) };
        let worse = Facts {
            carrier: Some((c, Record { transits: r.transits + more, violations: r.violations + more })),
            ..f.clone()
        };
        prop_assert!(propose(&worse, &Policy::default()).score >= propose(&f, &Policy::default()).score);
    }
}
