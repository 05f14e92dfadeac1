//! The checks that separate real identifiers from digit runs of the same shape.

/// A US social security number as issued: no area 000, 666 or 9xx, no group 00, no serial
/// 0000 (so `123-45-6789`-shaped part numbers with a zero group stay).
pub(crate) fn ssn_valid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [area, group, serial] = parts[..] else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// The IBAN check (ISO 13616): letters to numbers, the first four characters moved to the
/// end, the whole number modulo 97 is 1.
pub(crate) fn iban_valid(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        let shift = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * shift + value) % 97;
    }
    remainder == 1
}

/// A phone number has 7 to 15 digits (E.164), and is not a date such as `2024-01-17` or
/// `17.01.2024`.
pub(crate) fn phone_valid(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let groups: Vec<usize> = text
        .split([' ', '.', '-'])
        .map(str::len)
        .filter(|&n| n > 0)
        .collect();
    let date = !text.starts_with('+') && matches!(groups[..], [4, 2, 2] | [2, 2, 4]);
    (7..=15).contains(&digits) && !date
}

/// Luhn checksum: separates card numbers from other long digit runs (order ids, dates).
pub(crate) fn luhn_valid(digits: &str) -> bool {
    let digits: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2 == 1, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}
