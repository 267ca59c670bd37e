//! Small flag values: `--umask`, `--oom-score-adj`, `--annotation` (podman-run(1)).

use std::fmt;
use std::str::FromStr;

use crate::SpecError;

/// A `--umask` value: one to four octal digits, at most `0777` (runtime-spec
/// `process.user.umask`).
///
/// ```
/// let u: ocirun_spec_gen::Umask = "0077".parse()?;
/// assert_eq!((u.bits(), u.to_string()), (0o077, "0077".to_owned()));
/// assert!("0800".parse::<ocirun_spec_gen::Umask>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Umask(u32);

impl Umask {
    /// The mask.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl FromStr for Umask {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidValue {
            flag: "--umask",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(bad("expected one to four octal digits, e.g. 0022"));
        }
        let bits = u32::from_str_radix(s, 8).map_err(|_| bad("not an octal number"))?;
        if bits > 0o777 {
            return Err(bad("greater than 0777"));
        }
        Ok(Self(bits))
    }
}

impl fmt::Display for Umask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// An `--oom-score-adj` value, from -1000 to 1000 (proc(5) `oom_score_adj`; runtime-spec
/// `process.oomScoreAdj`).
///
/// ```
/// let o: ocirun_spec_gen::OomScoreAdj = "-500".parse()?;
/// assert_eq!(o.get(), -500);
/// assert!("1001".parse::<ocirun_spec_gen::OomScoreAdj>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OomScoreAdj(i32);

impl OomScoreAdj {
    /// The value.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl FromStr for OomScoreAdj {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidValue {
            flag: "--oom-score-adj",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not a whole number"));
        }
        match s.parse::<i64>() {
            Ok(n) if (-1000..=1000).contains(&n) => Ok(Self(i32::try_from(n).unwrap_or(0))),
            _ => Err(bad("must be from -1000 to 1000")),
        }
    }
}

impl fmt::Display for OomScoreAdj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An `--annotation KEY=VALUE` (runtime-spec `annotations`): a non-empty key without white
/// space; the value may be empty and may hold `=`.
///
/// ```
/// let a: ocirun_spec_gen::Annotation = "org.example.team=build=1".parse()?;
/// assert_eq!((a.key(), a.value()), ("org.example.team", "build=1"));
/// assert!("novalue".parse::<ocirun_spec_gen::Annotation>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Annotation {
    key: String,
    value: String,
}

impl Annotation {
    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for Annotation {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidValue {
            flag: "--annotation",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (key, value) = s.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the key holds white space or a control character"));
        }
        if s.contains('\0') {
            return Err(bad("holds a NUL byte"));
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn umasks() {
        for (text, bits) in [("0", 0), ("22", 0o22), ("0077", 0o77), ("777", 0o777)] {
            assert_eq!(text.parse::<Umask>().unwrap().bits(), bits, "{text}");
        }
        let err = |s: &str| s.parse::<Umask>().unwrap_err().to_string();
        assert_eq!(
            err("0800"),
            "invalid --umask \"0800\": expected one to four octal digits, e.g. 0022"
        );
        assert_eq!(err("1000"), "invalid --umask \"1000\": greater than 0777");
        assert!(err("").contains("octal"));
        assert!(err("00000").contains("octal"));
        assert!(err("u=rwx").contains("octal"));
    }

    #[test]
    fn oom_score_adjustments() {
        for (text, v) in [("0", 0), ("-1000", -1000), ("1000", 1000), ("+5", 5)] {
            assert_eq!(text.parse::<OomScoreAdj>().unwrap().get(), v, "{text}");
        }
        let err = |s: &str| s.parse::<OomScoreAdj>().unwrap_err().to_string();
        assert_eq!(
            err("1001"),
            "invalid --oom-score-adj \"1001\": must be from -1000 to 1000"
        );
        assert_eq!(
            err("-99999999999999999999"),
            "invalid --oom-score-adj \"-99999999999999999999\": must be from -1000 to 1000"
        );
        assert_eq!(
            err("ten"),
            "invalid --oom-score-adj \"ten\": not a whole number"
        );
        assert!(err("-").contains("not a whole number"));
    }

    #[test]
    fn annotations() {
        let a: Annotation = "k=".parse().unwrap();
        assert_eq!((a.key(), a.value()), ("k", ""));
        let err = |s: &str| s.parse::<Annotation>().unwrap_err().to_string();
        assert_eq!(err("k"), "invalid --annotation \"k\": expected KEY=VALUE");
        assert_eq!(err("=v"), "invalid --annotation \"=v\": empty key");
        assert!(err("a b=c").contains("white space"));
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_round_trip(s in "\\PC{0,12}") {
            if let Ok(u) = s.parse::<Umask>() {
                prop_assert_eq!(u.to_string().parse::<Umask>().unwrap(), u);
            }
            if let Ok(o) = s.parse::<OomScoreAdj>() {
                prop_assert_eq!(o.to_string().parse::<OomScoreAdj>().unwrap(), o);
            }
            if let Ok(a) = s.parse::<Annotation>() {
                prop_assert_eq!(a.to_string(), s);
            }
        }
    }
}
