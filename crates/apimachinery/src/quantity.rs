//! `resource.Quantity` values (`100m`, `128Mi`, `1.5`, `2e3`), parsed exactly enough to compare
//! and add them: as a count of nano-units in an `i128`, which holds every quantity Kubernetes
//! accepts (up to exa-units with nine fractional digits).

use std::fmt;

/// A parsed quantity, in nano-units (1 = `1n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuantityError {}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

impl Quantity {
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    pub fn from_units(units: i64) -> Quantity {
        Quantity {
            nanos: i128::from(units) * NANOS_PER_UNIT,
        }
    }

    /// Parses upstream's quantity syntax: a signed decimal number, then an optional binary
    /// (`Ki`..`Ei`), decimal (`n u m "" k M G T P E`) or exponent (`e3`, `E-2`) suffix.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let invalid = || {
            QuantityError("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into())
        };
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        if number.is_empty() || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        if digits.is_empty() || digits.contains(['+', '-']) {
            return Err(invalid());
        }
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        // value = whole.fraction * 10^exp10 * 2^exp2
        let (exp10, exp2): (i32, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            other => {
                let exp = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))
                    .ok_or_else(invalid)?;
                let exp: i32 = exp.parse().map_err(|_| invalid())?;
                if !(-30..=30).contains(&exp) {
                    return Err(invalid());
                }
                (exp, 0)
            }
        };
        let mantissa_text = format!("{whole}{fraction}");
        if mantissa_text.len() > 30 {
            return Err(QuantityError("quantity has too many digits".into()));
        }
        let mantissa: i128 = mantissa_text.parse().map_err(|_| invalid())?;
        // nanos = mantissa * 10^(exp10 + 9 - fraction_len) * 2^exp2, rounded up like upstream
        // rounds sub-nano precision.
        let scale = exp10 + 9 - i32::try_from(fraction.len()).map_err(|_| invalid())?;
        let mut nanos = mantissa.checked_mul(1i128 << exp2).ok_or_else(invalid)?;
        if scale >= 0 {
            nanos = nanos
                .checked_mul(
                    10i128
                        .checked_pow(scale.unsigned_abs())
                        .ok_or_else(invalid)?,
                )
                .ok_or_else(invalid)?;
        } else {
            let div = 10i128
                .checked_pow(scale.unsigned_abs())
                .ok_or_else(invalid)?;
            nanos = (nanos + div - 1) / div;
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    pub fn nanos(self) -> i128 {
        self.nanos
    }

    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        self.nanos
            .checked_add(other.nanos)
            .map(|nanos| Quantity { nanos })
    }

    pub fn saturating_mul(self, factor: i64) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_mul(i128::from(factor)),
        }
    }
}

impl fmt::Display for Quantity {
    /// A plain, exact rendering (`1500m`, `2`, `134217728`): for messages, not canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos % NANOS_PER_UNIT == 0 {
            write!(f, "{}", self.nanos / NANOS_PER_UNIT)
        } else if self.nanos % 1_000_000 == 0 {
            write!(f, "{}m", self.nanos / 1_000_000)
        } else {
            write!(f, "{}n", self.nanos)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_scale_like_upstream() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(q("100m"), q("0.1"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("128Mi").nanos(), 128 * 1024 * 1024 * NANOS_PER_UNIT);
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_eq!(q("-2"), Quantity::from_units(-2));
        assert!(q("250m") < q("1"));
        assert_eq!(q("1500m").to_string(), "1500m");
        assert_eq!(q("2").to_string(), "2");
        for bad in ["", "abc", "1.2.3", "1Zi", "--1", "1e999", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }
}
