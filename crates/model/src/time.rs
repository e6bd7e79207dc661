//! Instants and durations as the contract writes them: RFC 3339 in UTC and ISO 8601 durations.
//!
//! Both are whole milliseconds in an `i64`. The supervisor does arithmetic on every observation,
//! so the representation is a plain integer; parsing and printing go through `jiff`.

use std::fmt;
use std::num::NonZeroI64;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in milliseconds since the Unix epoch (UTC).
///
/// Kept shifted by [`Timestamp::MIN`] so that it is never zero: an `Option<Timestamp>` then
/// takes no more room than a `Timestamp`, which matters in the supervisor's per-transit state.
/// The shift keeps the order, so comparisons are the instants'.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NonZeroI64);

/// Stored value = milliseconds - `SHIFT`: 1 for [`Timestamp::MIN`].
const SHIFT: i64 = MIN_MS - 1;
const MIN_MS: i64 = -377_705_023_201_000;
const MAX_MS: i64 = 253_402_207_200_000;

impl Timestamp {
    /// The earliest and latest instants that can be written in RFC 3339 (jiff's range, years
    /// -9999 to 9999), so that every `Timestamp` prints and parses back.
    pub const MIN: Timestamp = Timestamp::in_range(MIN_MS);
    pub const MAX: Timestamp = Timestamp::in_range(MAX_MS);

    /// `ms` must be within [`Timestamp::MIN`] and [`Timestamp::MAX`].
    const fn in_range(ms: i64) -> Timestamp {
        match NonZeroI64::new(ms - SHIFT) {
            Some(shifted) => Timestamp(shifted),
            None => panic!("a timestamp in range is never stored as zero"),
        }
    }

    /// An instant from milliseconds since the epoch, clamped to [`Timestamp::MIN`] and
    /// [`Timestamp::MAX`].
    pub const fn from_unix_ms(ms: i64) -> Timestamp {
        if ms < MIN_MS {
            Timestamp::MIN
        } else if ms > MAX_MS {
            Timestamp::MAX
        } else {
            Timestamp::in_range(ms)
        }
    }

    pub const fn unix_ms(self) -> i64 {
        self.0.get() + SHIFT
    }

    /// `self + d`, saturating so that far-future deadlines never overflow.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp::in_range(self.unix_ms().saturating_add(d.0).clamp(MIN_MS, MAX_MS))
    }

    /// `self - earlier`, as a duration (negative when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.unix_ms().saturating_sub(earlier.unix_ms()))
    }
}

/// The epoch.
impl Default for Timestamp {
    fn default() -> Timestamp {
        Timestamp::from_unix_ms(0)
    }
}

/// `Timestamp(<milliseconds since the epoch>)`, whatever the representation.
impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Timestamp").field(&self.unix_ms()).finish()
    }
}

/// Why a timestamp could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 time {value:?}: {reason}")]
pub struct TimestampError {
    value: String,
    reason: String,
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        let err = |reason: String| TimestampError {
            value: s.to_owned(),
            reason,
        };
        let ts: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| {
            let text = e.to_string();
            // jiff's own wording for the last day of 9999 is about Unix seconds; say it plainly.
            if text.contains("required range") {
                err("outside the supported range (up to 9999-12-30)".into())
            } else {
                err(text)
            }
        })?;
        let ms = ts.as_millisecond();
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return Err(err("out of range".into()));
        }
        Ok(Timestamp::in_range(ms))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_millisecond(self.unix_ms()) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "@{}ms", self.unix_ms()),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A length of time in milliseconds, written as an ISO 8601 duration (`PT15M`, `P1DT2H`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_ms(ms: i64) -> Duration {
        Duration(ms)
    }
    pub const fn from_secs(s: i64) -> Duration {
        Duration(s * 1000)
    }
    pub const fn from_mins(m: i64) -> Duration {
        Duration(m * 60_000)
    }
    pub const fn from_hours(h: i64) -> Duration {
        Duration(h * 3_600_000)
    }
    pub const fn as_ms(self) -> i64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub fn saturating_mul(self, n: i64) -> Duration {
        Duration(self.0.saturating_mul(n))
    }
}

/// Why a duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ISO 8601 duration {value:?}: {reason}")]
pub struct DurationError {
    value: String,
    reason: &'static str,
}

impl FromStr for Duration {
    type Err = DurationError;

    /// Accepts `PnW`, `PnD` and `PT…H…M…S` parts (seconds may have a fraction). Years and months
    /// are refused: their length depends on the calendar, and a rule needs a fixed length.
    fn from_str(s: &str) -> Result<Duration, DurationError> {
        let err = |reason| DurationError {
            value: s.to_owned(),
            reason,
        };
        let rest = s
            .strip_prefix('P')
            .ok_or_else(|| err("must start with 'P'"))?;
        if rest.is_empty() || rest == "T" {
            return Err(err("has no parts"));
        }
        let mut total_ms: i64 = 0;
        let mut in_time = false;
        let mut number = String::new();
        let mut last_rank = 0u8;
        for c in rest.chars() {
            match c {
                '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
                'T' if !in_time && number.is_empty() => in_time = true,
                _ => {
                    let (rank, unit_ms): (u8, i64) = match (in_time, c) {
                        (false, 'W') => (1, 7 * 86_400_000),
                        (false, 'D') => (2, 86_400_000),
                        (true, 'H') => (3, 3_600_000),
                        (true, 'M') => (4, 60_000),
                        (true, 'S') => (5, 1000),
                        (false, 'Y' | 'M') => {
                            return Err(err("years and months have no fixed length; use days"));
                        }
                        _ => return Err(err("unexpected character")),
                    };
                    if number.is_empty() {
                        return Err(err("a unit without a number"));
                    }
                    if rank <= last_rank {
                        return Err(err("units out of order or repeated"));
                    }
                    last_rank = rank;
                    let value: f64 = number.parse().map_err(|_| err("bad number"))?;
                    if number.contains('.') && c != 'S' {
                        return Err(err("only seconds may have a fraction"));
                    }
                    let ms = (value * unit_ms as f64).round();
                    if !ms.is_finite() || ms > 1e15 {
                        return Err(err("too long"));
                    }
                    total_ms += ms as i64;
                    number.clear();
                }
            }
        }
        if !number.is_empty() {
            return Err(err("a number without a unit"));
        }
        if in_time && last_rank < 3 {
            return Err(err("'T' without hours, minutes or seconds"));
        }
        Ok(Duration(total_ms))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms < 0 {
            f.write_str("-")?;
            ms = -ms;
        }
        f.write_str("P")?;
        let days = ms / 86_400_000;
        ms %= 86_400_000;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if ms == 0 {
            return if days == 0 {
                f.write_str("T0S")
            } else {
                Ok(())
            };
        }
        f.write_str("T")?;
        let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
        let s_ms = ms % 60_000;
        if h > 0 {
            write!(f, "{h}H")?;
        }
        if m > 0 {
            write!(f, "{m}M")?;
        }
        if s_ms > 0 {
            if s_ms % 1000 == 0 {
                write!(f, "{}S", s_ms / 1000)?;
            } else {
                write!(f, "{}.{:03}S", s_ms / 1000, s_ms % 1000)?;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-25T08:00:00Z");
        let t: Timestamp = "2026-11-25T10:00:00.250+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-25T08:00:00.25Z");
        let e = "2026-13-25T08:00:00Z".parse::<Timestamp>().unwrap_err();
        assert!(e.to_string().contains("2026-13-25"), "{e}");
        for extreme in [
            Timestamp::MIN,
            Timestamp::MAX,
            Timestamp::from_unix_ms(i64::MAX),
        ] {
            assert_eq!(extreme.to_string().parse::<Timestamp>().unwrap(), extreme);
        }
        assert_eq!(Timestamp::from_unix_ms(i64::MIN), Timestamp::MIN);
        assert_eq!(Timestamp::MIN.unix_ms(), -377_705_023_201_000);
        assert_eq!(Timestamp::MAX.unix_ms(), 253_402_207_200_000);
        assert_eq!(Timestamp::default().unix_ms(), 0);
        assert_eq!(
            format!("{:?}", Timestamp::from_unix_ms(-5)),
            "Timestamp(-5)"
        );
        assert!(Timestamp::from_unix_ms(-1) < Timestamp::from_unix_ms(0));
        assert_eq!(
            std::mem::size_of::<Option<Timestamp>>(),
            std::mem::size_of::<Timestamp>()
        );
    }

    #[test]
    fn durations() {
        let cases = [
            ("PT15M", 15 * 60_000),
            ("PT4H", 4 * 3_600_000),
            ("P1DT2H", 26 * 3_600_000),
            ("PT1.5S", 1500),
            ("P1W", 7 * 86_400_000),
            ("PT0S", 0),
        ];
        for (text, ms) in cases {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.as_ms(), ms, "{text}");
            assert_eq!(d.to_string().parse::<Duration>().unwrap(), d, "{text}");
        }
        for bad in [
            "", "P", "PT", "15M", "P1M", "PT1H1H", "PT1M1H", "PT1.5M", "PT5", "P1Y",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
        assert_eq!(Duration::from_mins(90).to_string(), "PT1H30M");
    }
}
