//! Random identifiers from the operating system's CSPRNG.

/// The 62 characters of identifiers and secrets: safe in URLs, form bodies, HTTP Basic
/// (RFC 6749 2.3.1 encoding changes none of them) and a double-click selection.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Fills `out` with cryptographically secure random bytes.
pub fn fill(out: &mut [u8]) {
    aws_lc_rs::rand::fill(out).expect("the operating system's random source is available");
}

/// `len` characters drawn uniformly from [`BASE62`] (log2(62) = 5.95 bits each).
pub fn base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        // Rejection sampling: 248 = 4 * 62, so `b % 62` is uniform for b < 248.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    out
}

/// Whether every byte of `s` is one of [`BASE62`].
pub fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `value` as exactly `width` base-62 digits, most significant first.
pub fn encode_base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_has_the_requested_length_and_alphabet() {
        for len in [0, 1, 20, 51, 200] {
            let s = base62(len);
            assert_eq!(s.len(), len);
            assert!(is_base62(&s));
        }
    }

    #[test]
    fn base62_values_differ() {
        assert_ne!(base62(20), base62(20));
    }

    #[test]
    fn fixed_width_encoding_pads_and_orders_digits() {
        assert_eq!(encode_base62_fixed(0, 3), "000");
        assert_eq!(encode_base62_fixed(61, 3), "00z");
        assert_eq!(encode_base62_fixed(62, 3), "010");
        assert_eq!(encode_base62_fixed(u32::MAX as u64, 6), "4gfFC3");
    }
}
