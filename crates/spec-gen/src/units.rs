//! The value grammars of the resource flags: sizes (`512m`), CPU counts (`1.5`) and CPU or
//! memory-node lists (`0-2,4`).
//!
//! They follow what podman and Docker users already type (podman-run(1) `--memory`,
//! `--shm-size`, `--cpus`, `--cpuset-cpus`), with one difference: a value these parsers do not
//! understand is an error, never silently truncated.

use std::fmt;
use std::str::FromStr;

use crate::SpecError;

/// A size in bytes, written as podman's `--memory`, `--memory-swap`, `--memory-reservation`
/// and `--shm-size` take it.
///
/// Grammar: a decimal number (`512`, `1.5`), then an optional unit `b`, `k`, `m`, `g`, `t` or
/// `p` (any case), where `k` and above may be followed by `b` or `ib` (`512mb`, `1GiB`). Units
/// are binary multiples: `k` = 1024 bytes, `m` = 1024², ... (podman and Docker's
/// `RAMInBytes`). A fraction is truncated to whole bytes (`1.5k` = 1536, `0.3b` = 0). The value
/// must fit a cgroup value (at most `i64::MAX` bytes).
///
/// [`Display`](fmt::Display) writes the largest unit that divides the value exactly
/// (`64m`, `1536`, `0`), which parses back to the same size.
///
/// ```
/// use ocirun_spec_gen::Size;
/// assert_eq!("512m".parse::<Size>()?.bytes(), 536_870_912);
/// assert_eq!("1.5g".parse::<Size>()?.bytes(), 1_610_612_736);
/// assert_eq!(Size::from_bytes(67_108_864).to_string(), "64m");
/// assert!("5x".parse::<Size>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(u64);

/// The unit letters of [`Size`], smallest first, with their multipliers.
const SIZE_UNITS: [(char, u64); 5] = [
    ('k', 1 << 10),
    ('m', 1 << 20),
    ('g', 1 << 30),
    ('t', 1 << 40),
    ('p', 1 << 50),
];

/// The most digits after the decimal point that a size or CPU count may have: enough for
/// any exact value, small enough that the arithmetic cannot overflow.
const MAX_FRACTION_DIGITS: usize = 18;

impl Size {
    /// The largest size a cgroup value can hold: `i64::MAX` bytes.
    pub const MAX: Size = Size(i64::MAX as u64);

    /// A size of `bytes` bytes.
    ///
    /// # Panics
    /// If `bytes` is above [`Size::MAX`].
    pub const fn from_bytes(bytes: u64) -> Self {
        assert!(bytes <= Self::MAX.0, "a size is at most i64::MAX bytes");
        Self(bytes)
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The size in bytes as the signed value of the runtime-spec's cgroup fields (always
    /// fits: sizes are at most `i64::MAX`).
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).expect("sizes are at most i64::MAX")
    }
}

impl FromStr for Size {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError::InvalidSize {
            value: s.to_owned(),
            reason,
        };
        let number_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(number_len);
        let (whole, fraction) = parse_decimal(number).map_err(bad)?;
        let lower = unit.to_ascii_lowercase();
        let multiplier = match lower.as_str() {
            "" | "b" => 1,
            _ => {
                let mut chars = lower.chars();
                let letter = chars.next().expect("unit is not empty");
                let rest = chars.as_str();
                match SIZE_UNITS.iter().find(|(l, _)| *l == letter) {
                    Some((_, m)) if matches!(rest, "" | "b" | "ib") => *m,
                    _ => {
                        return Err(bad(format!(
                            "unknown unit {unit:?} (use b, k, m, g, t or p)"
                        )))
                    }
                }
            }
        };
        let bytes = scale(whole, fraction, multiplier)
            .filter(|b| *b <= u128::from(Self::MAX.0))
            .ok_or_else(|| bad("too large (at most 8191p)".to_owned()))?;
        Ok(Self(
            u64::try_from(bytes).expect("checked against Size::MAX"),
        ))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = SIZE_UNITS
            .iter()
            .rev()
            .find(|(_, m)| self.0 != 0 && self.0.is_multiple_of(*m));
        match unit {
            Some((letter, m)) => write!(f, "{}{letter}", self.0 / m),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Splits a non-negative decimal number into its whole part and its fraction digits.
fn parse_decimal(number: &str) -> Result<(u128, &str), String> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a non-negative decimal number".to_owned());
    }
    if number.contains('.')
        && (fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a non-negative decimal number".to_owned());
    }
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err(format!(
            "more than {MAX_FRACTION_DIGITS} digits after the decimal point"
        ));
    }
    if whole.len() > 30 {
        return Err("too large".to_owned());
    }
    let whole: u128 = whole.parse().map_err(|_| "too large".to_owned())?;
    Ok((whole, fraction))
}

/// `(whole + 0.fraction) * multiplier`, truncated; `None` on overflow.
fn scale(whole: u128, fraction: &str, multiplier: u64) -> Option<u128> {
    let multiplier = u128::from(multiplier);
    let mut value = whole.checked_mul(multiplier)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let denominator = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        value = value.checked_add(digits.checked_mul(multiplier)? / denominator)?;
    }
    Some(value)
}

/// A number of CPUs for `--cpus` (podman-run(1)): a positive decimal with at most nine
/// fraction digits, kept exactly as billionths of a CPU ("nano CPUs", as podman and Docker do).
///
/// It becomes a CFS quota of `cpus × period` microseconds per period (runtime-spec
/// `linux.resources.cpu.quota` and `period`).
///
/// ```
/// use ocirun_spec_gen::Cpus;
/// let cpus: Cpus = "1.5".parse()?;
/// assert_eq!(cpus.nano(), 1_500_000_000);
/// assert_eq!(cpus.quota_for_period(100_000), 150_000);
/// assert!("-1".parse::<Cpus>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpus(u64);

/// Billionths of a CPU per CPU.
const NANO: u64 = 1_000_000_000;

impl Cpus {
    /// The count in billionths of a CPU.
    pub fn nano(self) -> u64 {
        self.0
    }

    /// The CFS quota, in microseconds, that gives this many CPUs in a CFS period of
    /// `period_us` microseconds (truncated).
    pub fn quota_for_period(self, period_us: u64) -> u64 {
        u64::try_from(u128::from(self.0) * u128::from(period_us) / u128::from(NANO))
            .unwrap_or(u64::MAX)
    }
}

impl FromStr for Cpus {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError::InvalidCpus {
            value: s.to_owned(),
            reason,
        };
        let (whole, fraction) = parse_decimal(s).map_err(bad)?;
        if fraction.len() > 9 {
            return Err(bad("more than 9 digits after the decimal point".to_owned()));
        }
        let nano = scale(whole, fraction, NANO)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| bad("too large".to_owned()))?;
        if nano == 0 {
            return Err(bad("must be greater than 0".to_owned()));
        }
        Ok(Self(nano))
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / NANO;
        let fraction = self.0 % NANO;
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{fraction:09}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// A list of CPU or memory-node numbers, as `--cpuset-cpus` and `--cpuset-mems` take it and
/// as the kernel's `cpuset.cpus` reads it (cpuset(7) "List format"): comma-separated numbers
/// and inclusive ranges, `0-2,4`.
///
/// Each range must be ascending (`3-1` is refused); items are kept in the order given, and
/// [`Display`](fmt::Display) writes them back the same way.
///
/// ```
/// use ocirun_spec_gen::CpuList;
/// let list: CpuList = "0-2,4".parse()?;
/// assert_eq!(list.ranges(), [(0, 2), (4, 4)]);
/// assert_eq!(list.to_string(), "0-2,4");
/// assert!("3-1".parse::<CpuList>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpuList(Vec<(u32, u32)>);

/// The highest CPU (or memory node) number a [`CpuList`] may name: 8191, as Linux has at most
/// 8192 CPUs (`CONFIG_NR_CPUS`) and fewer memory nodes.
pub const MAX_CPU: u32 = 8191;

impl CpuList {
    /// The inclusive ranges, in the order given; a single number is a range of one.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.0
    }
}

impl FromStr for CpuList {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError::InvalidCpuList {
            value: s.to_owned(),
            reason,
        };
        let number = |n: &str| -> Result<u32, SpecError> {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("{n:?} is not a number")));
            }
            n.parse()
                .ok()
                .filter(|n| *n <= MAX_CPU)
                .ok_or_else(|| bad(format!("{n} is too large (at most {MAX_CPU})")))
        };
        if s.is_empty() {
            return Err(bad("empty".to_owned()));
        }
        let mut ranges = Vec::new();
        for item in s.split(',') {
            let range = match item.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (number(lo)?, number(hi)?);
                    if lo > hi {
                        return Err(bad(format!("range {lo}-{hi} is descending")));
                    }
                    (lo, hi)
                }
                None => {
                    let n = number(item)?;
                    (n, n)
                }
            };
            ranges.push(range);
        }
        Ok(Self(ranges))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn size(s: &str) -> u64 {
        s.parse::<Size>().unwrap().bytes()
    }

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!(size("0"), 0);
        assert_eq!(size("100"), 100);
        assert_eq!(size("100b"), 100);
        assert_eq!(size("1k"), 1024);
        assert_eq!(size("64m"), 67_108_864);
        assert_eq!(size("64M"), 67_108_864);
        assert_eq!(size("64mb"), 67_108_864);
        assert_eq!(size("64MiB"), 67_108_864);
        assert_eq!(size("1g"), 1 << 30);
        assert_eq!(size("1.5g"), 1_610_612_736);
        assert_eq!(size("2t"), 2 << 40);
        assert_eq!(size("1p"), 1 << 50);
        assert_eq!(size("0.3b"), 0);
        assert_eq!(size("1.0001k"), 1024);
    }

    #[test]
    fn bad_sizes_say_why() {
        let err = |s: &str| s.parse::<Size>().unwrap_err().to_string();
        assert_eq!(
            err("5x"),
            r#"invalid size "5x": unknown unit "x" (use b, k, m, g, t or p)"#
        );
        assert_eq!(
            err(""),
            r#"invalid size "": not a non-negative decimal number"#
        );
        assert_eq!(
            err("-1"),
            r#"invalid size "-1": not a non-negative decimal number"#
        );
        assert!(err("1.").contains("not a non-negative decimal number"));
        assert!(err(".5").contains("not a non-negative decimal number"));
        assert!(err("1 m").contains("unknown unit"));
        assert!(err("1bb").contains("unknown unit"));
        assert!(err("1ib").contains("unknown unit"));
        assert!(err("8192p").contains("too large"));
        assert!(err("99999999999999999999999999999999").contains("too large"));
    }

    #[test]
    fn sizes_display_in_the_largest_exact_unit() {
        assert_eq!(Size::from_bytes(0).to_string(), "0");
        assert_eq!(Size::from_bytes(1536).to_string(), "1536");
        assert_eq!(Size::from_bytes(67_108_864).to_string(), "64m");
        assert_eq!(Size::from_bytes(3 << 30).to_string(), "3g");
        assert_eq!(Size::MAX.to_string(), "9223372036854775807");
    }

    #[test]
    fn cpus() {
        let c = |s: &str| s.parse::<Cpus>().unwrap();
        assert_eq!(c("1").nano(), NANO);
        assert_eq!(c("0.5").quota_for_period(100_000), 50_000);
        assert_eq!(c("2.25").to_string(), "2.25");
        assert_eq!(c("0.000000001").nano(), 1);
        let err = |s: &str| s.parse::<Cpus>().unwrap_err().to_string();
        assert_eq!(
            err("-1"),
            r#"invalid --cpus "-1": not a non-negative decimal number"#
        );
        assert_eq!(err("0"), r#"invalid --cpus "0": must be greater than 0"#);
        assert!(err("0.0000000001").contains("more than 9 digits"));
        assert!(err("1e3").contains("not a non-negative decimal number"));
    }

    #[test]
    fn cpu_lists() {
        let l = |s: &str| s.parse::<CpuList>().unwrap();
        assert_eq!(l("0").ranges(), [(0, 0)]);
        assert_eq!(l("0-2,4").ranges(), [(0, 2), (4, 4)]);
        assert_eq!(l("4,0-1").to_string(), "4,0-1");
        let err = |s: &str| s.parse::<CpuList>().unwrap_err().to_string();
        assert_eq!(
            err("3-1"),
            r#"invalid cpu list "3-1": range 3-1 is descending"#
        );
        assert_eq!(err(""), r#"invalid cpu list "": empty"#);
        assert!(err("1,").contains(r#""" is not a number"#));
        assert!(err("a").contains("is not a number"));
        assert!(err("1-2-3").contains("is not a number"));
        assert!(err(" 1").contains("is not a number"));
        assert!(err("-1").contains("is not a number"));
        assert!(err("99999999999").contains("too large"));
        assert_eq!(l("0-8191").ranges(), [(0, 8191)]);
        assert_eq!(
            err("0-4294967295"),
            r#"invalid cpu list "0-4294967295": 4294967295 is too large (at most 8191)"#
        );
        assert_eq!(
            err("8192"),
            r#"invalid cpu list "8192": 8192 is too large (at most 8191)"#
        );
    }

    proptest! {
        #[test]
        fn size_parser_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Size>();
        }

        #[test]
        fn sizes_round_trip(bytes in 0u64..=i64::MAX as u64) {
            let size = Size::from_bytes(bytes);
            prop_assert_eq!(size.to_string().parse::<Size>().unwrap(), size);
        }

        #[test]
        fn accepted_sizes_round_trip(n in 0u64..100_000, unit in "(|b|k|m|g|K|M|G|kb|MiB)") {
            let size: Size = format!("{n}{unit}").parse().unwrap();
            prop_assert_eq!(size.to_string().parse::<Size>().unwrap(), size);
        }

        #[test]
        fn unknown_units_are_refused(n in 0u64..1000, unit in "[a-zA-Z]{1,3}") {
            let lower = unit.to_ascii_lowercase();
            let known = lower == "b"
                || (["k", "m", "g", "t", "p"].iter().any(|u| lower.starts_with(u))
                    && matches!(&lower[1..], "" | "b" | "ib"));
            prop_assert_eq!(format!("{n}{unit}").parse::<Size>().is_ok(), known);
        }

        #[test]
        fn cpus_parser_never_panics(s in ".{0,30}") {
            let _ = s.parse::<Cpus>();
        }

        #[test]
        fn cpus_round_trip(nano in 1u64..u64::MAX / 2) {
            let cpus: Cpus = Cpus(nano).to_string().parse().unwrap();
            prop_assert_eq!(cpus.nano(), nano);
        }

        #[test]
        fn negative_cpus_are_refused(n in 1u64..1000) {
            let text = format!("-{n}");
            prop_assert!(text.parse::<Cpus>().is_err());
        }

        #[test]
        fn cpu_list_parser_never_panics(s in "[0-9,\\- a]{0,20}") {
            let _ = s.parse::<CpuList>();
        }

        #[test]
        fn cpu_lists_round_trip(ranges in proptest::collection::vec((0u32..5000, 0u32..64), 1..6)) {
            let text = ranges
                .iter()
                .map(|(lo, len)| if *len == 0 { lo.to_string() } else { format!("{lo}-{}", lo + len) })
                .collect::<Vec<_>>()
                .join(",");
            let list: CpuList = text.parse().unwrap();
            prop_assert_eq!(list.to_string(), text);
        }

        #[test]
        fn descending_ranges_are_refused(hi in 0u32..1000, gap in 1u32..1000) {
            let text = format!("{}-{hi}", hi + gap);
            prop_assert!(text.parse::<CpuList>().is_err());
        }
    }
}
