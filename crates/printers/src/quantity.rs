//! Canonical rendering of resource quantities (`resource.Quantity.String()`),
//! so capacity and quota cells read as upstream's do: `1024Mi` prints `1Gi`,
//! `1.5` prints `1500m`, `2000` prints `2k`.

/// Which notation a quantity was written in; upstream keeps it when it
/// re-renders the value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// An exact value `mantissa * 10^exp` plus its notation.
#[derive(Debug)]
struct Parsed {
    mantissa: i128,
    exp: i32,
    format: Format,
}

/// Renders `raw` in canonical form. Text that does not parse as a quantity is
/// returned unchanged: upstream would have refused to store it, so there is no
/// canonical form to match.
pub(crate) fn canonical(raw: &str) -> String {
    parse(raw)
        .and_then(render)
        .unwrap_or_else(|| raw.to_string())
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn parse(raw: &str) -> Option<Parsed> {
    let s = raw.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.chars().chain(frac_part.chars()) {
        let digit = i128::from(c.to_digit(10)?);
        mantissa = mantissa.checked_mul(10)?.checked_add(digit)?;
    }
    let mut exp = -i32::try_from(frac_part.len()).ok()?;
    let format = match suffix {
        "" => Format::DecimalSi,
        "n" => {
            exp -= 9;
            Format::DecimalSi
        }
        "u" => {
            exp -= 6;
            Format::DecimalSi
        }
        "m" => {
            exp -= 3;
            Format::DecimalSi
        }
        "k" => {
            exp += 3;
            Format::DecimalSi
        }
        "M" => {
            exp += 6;
            Format::DecimalSi
        }
        "G" => {
            exp += 9;
            Format::DecimalSi
        }
        "T" => {
            exp += 12;
            Format::DecimalSi
        }
        "P" => {
            exp += 15;
            Format::DecimalSi
        }
        "E" => {
            exp += 18;
            Format::DecimalSi
        }
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power: u32 = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            mantissa = mantissa.checked_mul(2i128.checked_pow(power)?)?;
            Format::BinarySi
        }
        other => {
            let digits = other.strip_prefix(['e', 'E'])?;
            let e: i32 = digits.parse().ok()?;
            exp = exp.checked_add(e)?;
            Format::DecimalExponent
        }
    };
    if negative {
        mantissa = -mantissa;
    }
    Some(Parsed {
        mantissa,
        exp,
        format,
    })
}

/// Moves trailing decimal zeros of the mantissa into the exponent.
fn strip_zeros(mut mantissa: i128, mut exp: i32) -> (i128, i32) {
    if mantissa == 0 {
        return (0, 0);
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp += 1;
    }
    (mantissa, exp)
}

fn render(p: Parsed) -> Option<String> {
    let (mut mantissa, mut exp) = strip_zeros(p.mantissa, p.exp);
    if mantissa == 0 {
        return Some("0".to_string());
    }
    // Upstream keeps at most nanounit precision and rounds away from zero.
    if exp < -9 {
        let div = pow10(u32::try_from(-9 - exp).ok()?)?;
        let magnitude = mantissa.unsigned_abs();
        let div_u = div.unsigned_abs();
        let rounded = i128::try_from(magnitude.div_ceil(div_u)).ok()?;
        mantissa = if mantissa < 0 { -rounded } else { rounded };
        exp = -9;
        (mantissa, exp) = strip_zeros(mantissa, exp);
    }
    let mut format = p.format;
    if format == Format::BinarySi {
        // Small or fractional values would need rounding in binary notation;
        // upstream falls back to decimal for them.
        let small = exp == 0 && mantissa > -1024 && mantissa < 1024;
        if small || exp < 0 {
            format = Format::DecimalSi;
        }
    }
    if format == Format::BinarySi {
        let mut value = mantissa.checked_mul(pow10(u32::try_from(exp).ok()?)?)?;
        let mut power = 0usize;
        while value % 1024 == 0 && power < 6 {
            value /= 1024;
            power += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].get(power)?;
        return Some(format!("{value}{suffix}"));
    }
    while exp.rem_euclid(3) != 0 {
        mantissa = mantissa.checked_mul(10)?;
        exp -= 1;
    }
    let suffix = if format == Format::DecimalExponent {
        if exp == 0 {
            String::new()
        } else {
            format!("e{exp}")
        }
    } else {
        match exp {
            -9 => "n".to_string(),
            -6 => "u".to_string(),
            -3 => "m".to_string(),
            0 => String::new(),
            3 => "k".to_string(),
            6 => "M".to_string(),
            9 => "G".to_string(),
            12 => "T".to_string(),
            15 => "P".to_string(),
            18 => "E".to_string(),
            other => format!("e{other}"),
        }
    };
    Some(format!("{mantissa}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalizes_like_upstream() {
        let cases = [
            ("0", "0"),
            ("0Gi", "0"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("100Ki", "100Ki"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("1.5", "1500m"),
            ("2000", "2k"),
            ("100m", "100m"),
            ("5", "5"),
            ("10G", "10G"),
            ("1e3", "1e3"),
            ("12e2", "1200"),
            ("-1500m", "-1500m"),
            ("0.1n", "1n"),
            ("2", "2"),
            ("500Mi", "500Mi"),
            ("1k", "1k"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }

    #[test]
    fn garbage_is_returned_verbatim() {
        for input in ["", "abc", "1.2.3", "5Xi", "--1", "1e"] {
            assert_eq!(canonical(input), input);
        }
    }

    #[test]
    fn huge_values_do_not_panic() {
        let big = "9".repeat(60);
        assert_eq!(canonical(&big), big);
        assert_eq!(
            canonical("99999999999999999999999999Ei"),
            "99999999999999999999999999Ei"
        );
    }
}
