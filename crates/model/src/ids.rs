//! Identifiers, validated on construction.
//!
//! Every type here can only hold a value that passed its checks, so code that receives one never
//! re-validates. Errors name the kind of identifier, the value, and what is wrong with it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct IdError {
    what: &'static str,
    value: String,
    reason: String,
}

impl IdError {
    fn new(what: &'static str, value: &str, reason: impl Into<String>) -> IdError {
        IdError {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// What kind of identifier was being read ("container number", "device id", ...).
    pub fn what(&self) -> &'static str {
        self.what
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A free-form identifier: 1 to `max` characters from `[A-Za-z0-9._:-]`.
macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Box<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<$name, IdError> {
                check_token(s, $what, $max)?;
                Ok($name(s.into()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        serde_via_str!($name);
    };
}

fn check_token(s: &str, what: &'static str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::new(what, s, "must not be empty"));
    }
    if s.len() > max {
        return Err(IdError::new(
            what,
            s,
            format!("longer than {max} characters"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:-".contains(*c)))
    {
        return Err(IdError::new(
            what,
            s,
            format!("character {c:?} is not allowed (use A-Z, a-z, 0-9, '.', '_', ':', '-')"),
        ));
    }
    Ok(())
}

token_id!(
    /// A device: e-seal, e-lock, smart-container unit or RFID tag. JT/T 808 terminals use their
    /// 12- or 20-digit phone number here.
    DeviceId, "device id", 64
);
token_id!(
    /// A fixed or handheld reader. Immutable for the life of the reader (§9.3 of the WCO report).
    ReaderId, "reader id", 64
);
token_id!(
    /// A zone: office, border crossing, rest area, checkpoint...
    ZoneId, "zone id", 64
);
token_id!(
    /// A transit (one supervised movement of goods).
    TransitId, "transit id", 64
);
token_id!(
    /// A station: a site that holds device stock and seals or unseals.
    StationId, "station id", 64
);

/// An ISO 6346 container number: owner code (3 letters), equipment category (U, J or Z),
/// serial number (6 digits) and check digit. Spaces are ignored and letters upper-cased on input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerNumber(Box<str>);

impl ContainerNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn owner_code(&self) -> &str {
        &self.0[..3]
    }
    pub fn category(&self) -> char {
        self.0.as_bytes()[3] as char
    }
    pub fn serial(&self) -> &str {
        &self.0[4..10]
    }
}

/// The ISO 6346 value of a character: digits are themselves; letters count from A = 10 and skip
/// multiples of 11 (so B = 12, L = 23, V = 34).
fn iso6346_value(c: u8) -> Option<u32> {
    const LETTERS: [u8; 26] = [
        10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34, 35,
        36, 37, 38,
    ];
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(LETTERS[usize::from(c - b'A')])),
        _ => None,
    }
}

/// The check digit over the first ten characters: sum of value × 2^position, mod 11, and a
/// remainder of 10 counts as 0.
pub fn iso6346_check_digit(first_ten: &str) -> Option<u32> {
    let mut sum = 0u32;
    for (i, c) in first_ten.bytes().enumerate() {
        sum += iso6346_value(c)? << i;
    }
    Some(sum % 11 % 10)
}

impl FromStr for ContainerNumber {
    type Err = IdError;

    fn from_str(input: &str) -> Result<ContainerNumber, IdError> {
        const WHAT: &str = "container number";
        let s: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 11 {
            return Err(IdError::new(
                WHAT,
                input,
                format!(
                    "expected 11 characters (4 letters, 7 digits), found {}",
                    b.len()
                ),
            ));
        }
        if !b[..3].iter().all(u8::is_ascii_uppercase) {
            return Err(IdError::new(
                WHAT,
                input,
                "the owner code (first 3 characters) must be letters",
            ));
        }
        if !matches!(b[3], b'U' | b'J' | b'Z') {
            return Err(IdError::new(
                WHAT,
                input,
                format!("equipment category {:?} must be U, J or Z", b[3] as char),
            ));
        }
        if !b[4..].iter().all(u8::is_ascii_digit) {
            return Err(IdError::new(
                WHAT,
                input,
                "serial number and check digit (last 7 characters) must be digits",
            ));
        }
        let expected = iso6346_check_digit(&s[..10]).expect("validated characters");
        let found = u32::from(b[10] - b'0');
        if expected != found {
            return Err(IdError::new(
                WHAT,
                input,
                format!("check digit is {found}, expected {expected}"),
            ));
        }
        Ok(ContainerNumber(s.into()))
    }
}

impl fmt::Display for ContainerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(ContainerNumber);

/// Seal identity in the spirit of ISO 18185: a registered manufacturer id (16 bits) and the
/// manufacturer's serial (tag id, 32 bits). Written `MANUFACTURER-SERIAL` in decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SealId {
    pub manufacturer: u16,
    pub serial: u32,
}

impl FromStr for SealId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<SealId, IdError> {
        const WHAT: &str = "seal id";
        let (m, n) = s.split_once('-').ok_or_else(|| {
            IdError::new(WHAT, s, "expected MANUFACTURER-SERIAL, e.g. 4660-305419896")
        })?;
        let manufacturer = m.parse().map_err(|_| {
            IdError::new(WHAT, s, "manufacturer id must be a number from 0 to 65535")
        })?;
        let serial = n
            .parse()
            .map_err(|_| IdError::new(WHAT, s, "serial must be a number from 0 to 4294967295"))?;
        Ok(SealId {
            manufacturer,
            serial,
        })
    }
}

impl fmt::Display for SealId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.manufacturer, self.serial)
    }
}
serde_via_str!(SealId);

/// A customs declaration number: 1 to 35 letters and digits (the WCO UCR limit). National formats
/// differ (China uses 18 digits, the EU an 18-character MRN); see [`Mrn`] for the checked form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeclarationNumber(Box<str>);

impl DeclarationNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeclarationNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<DeclarationNumber, IdError> {
        const WHAT: &str = "declaration number";
        let t = s.trim().to_ascii_uppercase();
        if t.is_empty() || t.len() > 35 {
            return Err(IdError::new(WHAT, s, "must have 1 to 35 characters"));
        }
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '/'))
        {
            return Err(IdError::new(
                WHAT,
                s,
                format!("character {c:?} is not allowed"),
            ));
        }
        Ok(DeclarationNumber(t.into()))
    }
}

impl fmt::Display for DeclarationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(DeclarationNumber);

/// A Movement Reference Number as used by NCTS: 2 digits (year), 2 letters (country), 13
/// letters or digits, and a check character computed like ISO 6346 over the first 17.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mrn(Box<str>);

impl FromStr for Mrn {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Mrn, IdError> {
        const WHAT: &str = "MRN";
        let t = s.trim().to_ascii_uppercase();
        let b = t.as_bytes();
        if b.len() != 18 {
            return Err(IdError::new(
                WHAT,
                s,
                format!("expected 18 characters, found {}", b.len()),
            ));
        }
        if !b[..2].iter().all(u8::is_ascii_digit) || !b[2..4].iter().all(u8::is_ascii_uppercase) {
            return Err(IdError::new(
                WHAT,
                s,
                "must start with 2 digits (year) and 2 letters (country)",
            ));
        }
        if !b[4..].iter().all(u8::is_ascii_alphanumeric) {
            return Err(IdError::new(
                WHAT,
                s,
                "characters 5 to 18 must be letters or digits",
            ));
        }
        let mut sum = 0u64;
        for (i, c) in b[..17].iter().enumerate() {
            sum += u64::from(iso6346_value(*c).expect("alphanumeric")) << i;
        }
        let expected = (sum % 11 % 10) as u8;
        let found = b[17];
        if !found.is_ascii_digit() || found - b'0' != expected {
            return Err(IdError::new(
                WHAT,
                s,
                format!(
                    "check character is {:?}, expected {expected}",
                    found as char
                ),
            ));
        }
        Ok(Mrn(t.into()))
    }
}

impl fmt::Display for Mrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(Mrn);

/// A vehicle licence plate: 2 to 15 letters, digits, spaces or hyphens (any script's letters).
/// Stored upper-cased with runs of spaces collapsed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LicencePlate(Box<str>);

impl FromStr for LicencePlate {
    type Err = IdError;
    fn from_str(s: &str) -> Result<LicencePlate, IdError> {
        const WHAT: &str = "licence plate";
        let t = s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        let n = t.chars().count();
        if !(2..=15).contains(&n) {
            return Err(IdError::new(WHAT, s, "must have 2 to 15 characters"));
        }
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == ' ' || *c == '-'))
        {
            return Err(IdError::new(
                WHAT,
                s,
                format!("character {c:?} is not allowed"),
            ));
        }
        Ok(LicencePlate(t.into()))
    }
}

impl fmt::Display for LicencePlate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(LicencePlate);

/// A train number: 1 to 12 letters and digits (railways number their services this way).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrainNumber(Box<str>);

impl FromStr for TrainNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<TrainNumber, IdError> {
        const WHAT: &str = "train number";
        let t = s.trim().to_ascii_uppercase();
        if t.is_empty() || t.len() > 12 || !t.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IdError::new(WHAT, s, "must have 1 to 12 letters or digits"));
        }
        Ok(TrainNumber(t.into()))
    }
}

impl fmt::Display for TrainNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
serde_via_str!(TrainNumber);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso6346_letter_values() {
        let expect = [
            ('A', 10),
            ('B', 12),
            ('K', 21),
            ('L', 23),
            ('U', 32),
            ('V', 34),
            ('Z', 38),
        ];
        for (c, v) in expect {
            assert_eq!(iso6346_value(c as u8), Some(v), "{c}");
        }
    }

    #[test]
    fn real_container_numbers() {
        // CSQU3054383 is the standard's own worked example; the others carry real owner codes
        // (Maersk, Hapag-Lloyd, CMA CGM, MSC, APL) with correct check digits.
        for n in [
            "CSQU3054383",
            "MSKU9070323",
            "HLXU8011600",
            "CMAU5102740",
            "MSCU6639870",
            "APZU4812090",
        ] {
            let c: ContainerNumber = n.parse().unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(c.as_str(), n);
        }
        let c: ContainerNumber = "csqu 305438 3".parse().unwrap();
        assert_eq!(
            (c.owner_code(), c.category(), c.serial()),
            ("CSQ", 'U', "305438")
        );
        for (n, expected) in [("MSKU9070324", 3), ("HLXU8011601", 0), ("CMAU5102741", 0)] {
            let e = n.parse::<ContainerNumber>().unwrap_err().to_string();
            assert!(e.ends_with(&format!("expected {expected}")), "{e}");
        }
    }

    #[test]
    fn wrong_check_digit_names_the_expected_one() {
        let e = "CSQU3054384".parse::<ContainerNumber>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid container number \"CSQU3054384\": check digit is 4, expected 3"
        );
        let e = "CSQX3054383".parse::<ContainerNumber>().unwrap_err();
        assert!(e.to_string().contains("equipment category 'X'"), "{e}");
        let e = "CSQU305438".parse::<ContainerNumber>().unwrap_err();
        assert!(e.to_string().contains("found 10"), "{e}");
    }

    #[test]
    fn remainder_ten_counts_as_zero() {
        // Find a serial whose weighted sum is 10 mod 11 and check that 0 is accepted.
        let serial = (0..1_000_000).map(|n| format!("ABCU{n:06}")).find(|p| {
            let mut sum = 0;
            for (i, c) in p.bytes().enumerate() {
                sum += iso6346_value(c).unwrap() << i;
            }
            sum % 11 == 10
        });
        let p = serial.unwrap();
        assert!(format!("{p}0").parse::<ContainerNumber>().is_ok());
    }

    #[test]
    fn other_identifiers() {
        assert!("D1".parse::<DeviceId>().is_ok());
        assert!(
            "".parse::<DeviceId>()
                .unwrap_err()
                .to_string()
                .contains("must not be empty")
        );
        assert!(
            "a b"
                .parse::<DeviceId>()
                .unwrap_err()
                .to_string()
                .contains("' '")
        );
        let s: SealId = "4660-305419896".parse().unwrap();
        assert_eq!((s.manufacturer, s.serial), (4660, 305_419_896));
        assert_eq!(s.to_string(), "4660-305419896");
        assert!("70000-1".parse::<SealId>().is_err());
        assert!("26CN0000000000001".parse::<DeclarationNumber>().is_ok());
        assert!("23GB0000010000003".parse::<DeclarationNumber>().is_ok());
        assert_eq!(
            "zj  a12345".parse::<LicencePlate>().unwrap().to_string(),
            "ZJ A12345"
        );
        assert!("Х123ХХ77".parse::<LicencePlate>().is_ok());
        assert!("X".parse::<LicencePlate>().is_err());
        assert!("X8017".parse::<TrainNumber>().is_ok());
    }

    #[test]
    fn mrn_check_character() {
        // Build a valid MRN from its first 17 characters and check that a wrong one is refused.
        let body = "26DE1234567890123";
        let mut sum = 0u64;
        for (i, c) in body.bytes().enumerate() {
            sum += u64::from(iso6346_value(c).unwrap()) << i;
        }
        let check = sum % 11 % 10;
        assert!(format!("{body}{check}").parse::<Mrn>().is_ok());
        let wrong = (check + 1) % 10;
        let e = format!("{body}{wrong}").parse::<Mrn>().unwrap_err();
        assert!(e.to_string().contains(&format!("expected {check}")), "{e}");
    }
}
