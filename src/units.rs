//! Typed quantities: virtual time, durations, bit rates, byte sizes and ratios.
//!
//! Everything is an integer: time in nanoseconds, rates in bits per second, sizes
//! in bytes, ratios in parts per billion. Parsing accepts decimal numbers with a
//! unit (`"2.1ms"`, `"1.5Gbps"`, `"256KiB"`, `"0.01%"`) and is exact: a value that
//! cannot be represented exactly in the base unit (`"0.5ns"`) is an error rather
//! than a silent rounding.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A point in virtual time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SimTime(pub u64);

/// A span of virtual time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SimDuration(pub u64);

/// A rate in bits per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct BitRate(pub u64);

/// A size in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

/// A probability or fraction in parts per billion (`"0.01%"` is 100,000 ppb).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Ratio(pub u64);

pub const NS_PER_SEC: u64 = 1_000_000_000;

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us * 1_000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * NS_PER_SEC)
    }
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_SEC as f64
    }
}

impl BitRate {
    pub const fn from_mbps(m: u64) -> Self {
        BitRate(m * 1_000_000)
    }
    pub const fn from_gbps(g: u64) -> Self {
        BitRate(g * 1_000_000_000)
    }
    pub fn bps(self) -> u64 {
        self.0
    }
}

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl Ratio {
    pub const ONE: Ratio = Ratio(1_000_000_000);
    pub fn ppb(self) -> u64 {
        self.0
    }
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}
impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, rhs: SimTime) -> SimDuration {
        SimDuration(self.0 - rhs.0)
    }
}
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("`{0}` has no number (expected for example {1})")]
    NoNumber(String, &'static str),
    #[error("`{0}` has unknown unit `{1}` (expected one of {2})")]
    UnknownUnit(String, String, &'static str),
    #[error("`{0}` needs a unit (for example {1})")]
    MissingUnit(String, &'static str),
    #[error("`{0}` is not exact in {1} (too many decimal places)")]
    NotExact(String, &'static str),
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Splits `"1.5Gbps"` into (`"1.5"`, `"Gbps"`).
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    (s[..end].trim(), s[end..].trim())
}

/// Parses a non-negative decimal number times `unit` exactly, as an integer.
fn exact_decimal(
    text: &str,
    number: &str,
    unit: u64,
    base: &'static str,
    example: &'static str,
) -> Result<u64, UnitError> {
    let number = number.replace('_', "");
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number.as_str(), ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(UnitError::NoNumber(text.to_string(), example));
    }
    let overflow = || UnitError::Overflow(text.to_string());
    let int_v: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| overflow())?
    };
    let mut value = int_v.checked_mul(unit as u128).ok_or_else(overflow)?;
    if !frac.is_empty() {
        if frac.len() > 18 {
            return Err(UnitError::NotExact(text.to_string(), base));
        }
        let frac_v: u128 = frac.parse().map_err(|_| overflow())?;
        let scale = 10u128.pow(frac.len() as u32);
        let num = frac_v * unit as u128;
        if !num.is_multiple_of(scale) {
            return Err(UnitError::NotExact(text.to_string(), base));
        }
        value += num / scale;
    }
    u64::try_from(value).map_err(|_| overflow())
}

const DURATION_UNITS: &str = "ns, us, ms, s, min";
const RATE_UNITS: &str = "bps, kbps, Mbps, Gbps, Tbps";
const SIZE_UNITS: &str = "B, KB, MB, GB, KiB, MiB, GiB";

impl std::str::FromStr for SimDuration {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (num, unit) = split_number(text.trim());
        let mult = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => NS_PER_SEC,
            "min" => 60 * NS_PER_SEC,
            "" if num.replace(['0', '.', '_'], "").is_empty() && !num.is_empty() => 1,
            "" => return Err(UnitError::MissingUnit(text.to_string(), "\"300ms\"")),
            other => {
                return Err(UnitError::UnknownUnit(
                    text.to_string(),
                    other.to_string(),
                    DURATION_UNITS,
                ))
            }
        };
        exact_decimal(text, num, mult, "nanoseconds", "\"300ms\"").map(SimDuration)
    }
}

impl std::str::FromStr for BitRate {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (num, unit) = split_number(text.trim());
        let mult = match unit {
            "bps" => 1,
            "kbps" | "Kbps" => 1_000,
            "Mbps" => 1_000_000,
            "Gbps" => 1_000_000_000,
            "Tbps" => 1_000_000_000_000,
            "" => return Err(UnitError::MissingUnit(text.to_string(), "\"1Gbps\"")),
            other => {
                return Err(UnitError::UnknownUnit(
                    text.to_string(),
                    other.to_string(),
                    RATE_UNITS,
                ))
            }
        };
        exact_decimal(text, num, mult, "bits per second", "\"1Gbps\"").map(BitRate)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (num, unit) = split_number(text.trim());
        let mult = match unit {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(UnitError::UnknownUnit(
                    text.to_string(),
                    other.to_string(),
                    SIZE_UNITS,
                ))
            }
        };
        exact_decimal(text, num, mult, "bytes", "\"256KiB\"").map(ByteSize)
    }
}

impl std::str::FromStr for Ratio {
    type Err = UnitError;
    /// `"0.01%"` or a plain fraction `"0.0001"`.
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (num, unit) = split_number(text.trim());
        let mult = match unit {
            "%" => 10_000_000,
            "" => 1_000_000_000,
            other => {
                return Err(UnitError::UnknownUnit(
                    text.to_string(),
                    other.to_string(),
                    "% or a plain fraction",
                ))
            }
        };
        let v = exact_decimal(text, num, mult, "parts per billion", "\"0.01%\"")?;
        if v > 1_000_000_000 {
            return Err(UnitError::Overflow(text.to_string()));
        }
        Ok(Ratio(v))
    }
}

/// Serde glue: quantities are written as strings with units; sizes may also be
/// plain integers (bytes).
macro_rules! deserialize_from_str {
    ($ty:ty, $expect:literal, $allow_int:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        if $allow_int && v >= 0 {
                            Ok(<$ty>::from_int(v as u64))
                        } else if $allow_int {
                            Err(E::custom(format!("{v} is negative")))
                        } else {
                            Err(E::custom(format!(
                                "{v} has no unit: write a string such as {}",
                                $expect
                            )))
                        }
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

trait FromInt {
    fn from_int(v: u64) -> Self;
}
impl FromInt for SimDuration {
    fn from_int(v: u64) -> Self {
        SimDuration(v)
    }
}
impl FromInt for BitRate {
    fn from_int(v: u64) -> Self {
        BitRate(v)
    }
}
impl FromInt for ByteSize {
    fn from_int(v: u64) -> Self {
        ByteSize(v)
    }
}
impl FromInt for Ratio {
    fn from_int(v: u64) -> Self {
        Ratio(v)
    }
}

deserialize_from_str!(SimDuration, "a duration such as \"300ms\"", false);
deserialize_from_str!(BitRate, "a rate such as \"1Gbps\"", false);
deserialize_from_str!(
    ByteSize,
    "a size such as \"256KiB\" or a number of bytes",
    true
);
deserialize_from_str!(Ratio, "a ratio such as \"0.01%\"", false);

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", SimDuration(self.0))
    }
}

/// Prints with the largest unit that keeps the value exact to three decimals.
fn fmt_scaled(f: &mut fmt::Formatter, v: u64, units: &[(u64, &str)]) -> fmt::Result {
    for &(scale, name) in units {
        if v >= scale {
            let whole = v / scale;
            let rest = v % scale;
            if rest == 0 {
                return write!(f, "{whole}{name}");
            }
            let frac = format!("{:0width$}", rest, width = scale.ilog10() as usize);
            return write!(f, "{whole}.{}{name}", frac.trim_end_matches('0'));
        }
    }
    write!(f, "0{}", units.last().map(|u| u.1).unwrap_or(""))
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_scaled(
            f,
            self.0,
            &[
                (NS_PER_SEC, "s"),
                (1_000_000, "ms"),
                (1_000, "us"),
                (1, "ns"),
            ],
        )
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_scaled(
            f,
            self.0,
            &[
                (1_000_000_000, "Gbps"),
                (1_000_000, "Mbps"),
                (1_000, "kbps"),
                (1, "bps"),
            ],
        )
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 >= 1 << 20 && self.0.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", self.0 >> 20)
        } else if self.0 >= 1 << 10 && self.0.is_multiple_of(1 << 10) {
            write!(f, "{}KiB", self.0 >> 10)
        } else {
            write!(f, "{}B", self.0)
        }
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}%", self.0 as f64 / 1e7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly() {
        assert_eq!("300ms".parse::<SimDuration>(), Ok(SimDuration(300_000_000)));
        assert_eq!("2.1ms".parse::<SimDuration>(), Ok(SimDuration(2_100_000)));
        assert_eq!(
            "10s".parse::<SimDuration>(),
            Ok(SimDuration(10 * NS_PER_SEC))
        );
        assert_eq!("1.5us".parse::<SimDuration>(), Ok(SimDuration(1_500)));
        assert_eq!("0".parse::<SimDuration>(), Ok(SimDuration(0)));
        assert_eq!(
            "1min".parse::<SimDuration>(),
            Ok(SimDuration(60 * NS_PER_SEC))
        );
        assert!(matches!(
            "0.5ns".parse::<SimDuration>(),
            Err(UnitError::NotExact(..))
        ));
        assert!(matches!(
            "5".parse::<SimDuration>(),
            Err(UnitError::MissingUnit(..))
        ));
        assert!(matches!(
            "5 parsecs".parse::<SimDuration>(),
            Err(UnitError::UnknownUnit(..))
        ));
        assert!(matches!(
            "ms".parse::<SimDuration>(),
            Err(UnitError::NoNumber(..))
        ));
        assert!(matches!(
            "1.2.3s".parse::<SimDuration>(),
            Err(UnitError::NoNumber(..))
        ));
        assert!(matches!(
            "99999999999999999999s".parse::<SimDuration>(),
            Err(UnitError::Overflow(..))
        ));
    }

    #[test]
    fn rates_sizes_ratios_parse() {
        assert_eq!("1Gbps".parse::<BitRate>(), Ok(BitRate(1_000_000_000)));
        assert_eq!("1.5Gbps".parse::<BitRate>(), Ok(BitRate(1_500_000_000)));
        assert_eq!("600Mbps".parse::<BitRate>(), Ok(BitRate(600_000_000)));
        assert_eq!("256KiB".parse::<ByteSize>(), Ok(ByteSize(262_144)));
        assert_eq!("1MiB".parse::<ByteSize>(), Ok(ByteSize(1_048_576)));
        assert_eq!("1500".parse::<ByteSize>(), Ok(ByteSize(1500)));
        assert_eq!("0.01%".parse::<Ratio>(), Ok(Ratio(100_000)));
        assert_eq!("100%".parse::<Ratio>(), Ok(Ratio::ONE));
        assert!("101%".parse::<Ratio>().is_err());
        assert!("1Gbit".parse::<BitRate>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["2.1ms", "10s", "1.5us", "7ns"] {
            assert_eq!(s.parse::<SimDuration>().unwrap().to_string(), s);
        }
        for s in ["1Gbps", "1.5Gbps", "600Mbps"] {
            assert_eq!(s.parse::<BitRate>().unwrap().to_string(), s);
        }
    }
}
