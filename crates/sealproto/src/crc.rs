//! CRC-16/CCITT-FALSE, the transport check of every frame.

/// The polynomial x^16 + x^12 + x^5 + 1, as in the WCO report's 2.45 GHz air-interface
/// parameters (§4, "CRC polynomial", initial value 0xFFFF).
const POLY: u16 = 0x1021;

/// One step of the bitwise algorithm per table entry, computed at compile time.
const TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection of input or
/// output, no final XOR. The check value (the CRC of the ASCII bytes `123456789`) is 0x29B1.
///
/// ```
/// assert_eq!(sealproto::crc16(b"123456789"), 0x29b1);
/// ```
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0xffff, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table-driven CRC against the definition, one bit at a time.
    fn bitwise(bytes: &[u8]) -> u16 {
        let mut crc = 0xffffu16;
        for &b in bytes {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ POLY
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value_and_definition() {
        assert_eq!(crc16(b"123456789"), 0x29b1);
        assert_eq!(crc16(b""), 0xffff);
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for n in 0..data.len() {
            assert_eq!(crc16(&data[..n]), bitwise(&data[..n]), "{n}");
        }
    }
}
