//! How alarm details read: short sentences an officer understands at a glance.

use model::Duration;

/// `17 min`, `2 h 5 min`, `45 s`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_ms().max(0) / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// `4.2 km` or `350 m`.
pub(crate) fn distance(m: f64) -> String {
    if m >= 1000.0 {
        format!("{:.1} km", m / 1000.0)
    } else {
        format!("{m:.0} m")
    }
}

/// A number without a trailing `.0`.
pub(crate) fn number(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_mins(125)), "2 h 5 min");
        assert_eq!(duration(Duration::from_secs(45)), "45 s");
        assert_eq!(duration(Duration::from_hours(4)), "4 h");
        assert_eq!(distance(4230.0), "4.2 km");
        assert_eq!(distance(349.6), "350 m");
        assert_eq!(number(15.0), "15");
        assert_eq!(number(7.25), "7.25");
    }
}
