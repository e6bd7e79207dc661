//! Byte-level helpers: escaping, the check code, a bounds-checked reader and BCD.

use crate::DecodeError;

/// The frame delimiter.
pub const DELIMITER: u8 = 0x7e;
/// The escape byte: `0x7d 0x02` stands for `0x7e`, `0x7d 0x01` for `0x7d`.
pub const ESCAPE: u8 = 0x7d;

/// The check code: XOR of every byte of header and body.
pub fn check_code(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Escapes unescaped frame content (header, body and check code) and wraps it in delimiters:
/// the bytes that go on the wire.
pub fn escape(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 16 + 2);
    out.push(DELIMITER);
    for &b in content {
        match b {
            DELIMITER => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            b => out.push(b),
        }
    }
    out.push(DELIMITER);
    out
}

/// A cursor over a message body that never reads past its end: every read names the field, so
/// a short body fails with an error that says what was missing.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, field)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// The two decimal digits of a BCD byte, or an error naming the field when a nibble is not a
/// digit.
pub(crate) fn bcd_byte(b: u8, field: &'static str) -> Result<u8, DecodeError> {
    let (hi, lo) = (b >> 4, b & 0x0f);
    if hi > 9 || lo > 9 {
        return Err(DecodeError::NotBcd { field, byte: b });
    }
    Ok(hi * 10 + lo)
}

/// The BCD digits of `bytes` as one number.
pub(crate) fn bcd_number(bytes: &[u8], field: &'static str) -> Result<u64, DecodeError> {
    bytes.iter().try_fold(0u64, |acc, &b| {
        Ok(acc * 100 + u64::from(bcd_byte(b, field)?))
    })
}

/// Writes `value` as `n` BCD bytes (the lowest `2n` decimal digits).
pub(crate) fn put_bcd(out: &mut Vec<u8>, value: u64, n: usize) {
    let start = out.len();
    out.resize(start + n, 0);
    let mut v = value;
    for i in (0..n).rev() {
        let two = (v % 100) as u8;
        v /= 100;
        out[start + i] = ((two / 10) << 4) | (two % 10);
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Lower-case hex, for raw bytes in descriptions.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Serde helper: bytes as lower-case hex.
pub(crate) fn ser_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// Serde helper: bytes as text when they are printable ASCII (trailing NULs and spaces
/// dropped), otherwise as `hex:` followed by their hex (GBK text, binary ids).
pub(crate) fn ser_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text_or_hex(bytes))
}

pub(crate) fn text_or_hex(bytes: &[u8]) -> String {
    let trimmed = trim_padding(bytes);
    if trimmed.iter().all(|b| (0x20..0x7f).contains(b)) {
        trimmed.iter().map(|&b| char::from(b)).collect()
    } else {
        format!("hex:{}", hex(bytes))
    }
}

/// `bytes` without trailing NUL and space padding (fixed-width JT/T 808 string fields).
pub(crate) fn trim_padding(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_both_ways() {
        assert_eq!(
            escape(&[0x30, 0x7e, 0x08, 0x7d, 0x55]),
            [0x7e, 0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55, 0x7e]
        );
    }

    #[test]
    fn bcd_round_trip() {
        let mut out = Vec::new();
        put_bcd(&mut out, 13_912_345_678, 6);
        assert_eq!(out, [0x01, 0x39, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(bcd_number(&out, "x").unwrap(), 13_912_345_678);
        assert!(bcd_number(&[0x1a], "x").is_err());
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2022, 5, 12), 19_124);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
    }
}
