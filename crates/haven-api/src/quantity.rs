//! Comparing Kubernetes quantities ("500m", "1.5", "8Gi", "1e3") exactly, without floats.

/// A quantity in thousandths of its unit (cores, bytes, GPUs), rounded up as Kubernetes does.
/// `None` when the text is not a quantity or does not fit.
pub fn milli_units(quantity: &str) -> Option<i128> {
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !(whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let fraction_scale = 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    // value = digits / fraction_scale * numerator / denominator
    let (numerator, denominator): (i128, i128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (10i128.pow(9), 1),
        "T" => (10i128.pow(12), 1),
        "P" => (10i128.pow(15), 1),
        "E" => (10i128.pow(18), 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        exponent => {
            let power: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            let factor = 10i128.checked_pow(power.unsigned_abs())?;
            if power >= 0 { (factor, 1) } else { (1, factor) }
        }
    };
    let scaled = digits.checked_mul(numerator)?.checked_mul(1000)?;
    let divisor = fraction_scale.checked_mul(denominator)?;
    let millis = (scaled + divisor - 1) / divisor; // round up, as the API server does
    Some(if negative { -millis } else { millis })
}

#[cfg(test)]
mod tests {
    use super::milli_units;

    #[test]
    fn parses_the_forms_kubernetes_accepts() {
        assert_eq!(milli_units("2"), Some(2_000));
        assert_eq!(milli_units("500m"), Some(500));
        assert_eq!(milli_units("1.5"), Some(1_500));
        assert_eq!(milli_units("8Gi"), Some(8 * (1 << 30) * 1000));
        assert_eq!(milli_units("1G"), Some(1_000_000_000_000));
        assert_eq!(milli_units("1e3"), Some(1_000_000));
        assert_eq!(milli_units("+4"), Some(4_000));
        assert_eq!(milli_units("-1"), Some(-1_000));
    }

    #[test]
    fn binary_and_decimal_suffixes_compare_correctly() {
        assert!(milli_units("1Gi") > milli_units("1G"));
        assert!(milli_units("1024Mi") == milli_units("1Gi"));
        assert!(milli_units("2500m") < milli_units("3"));
    }

    #[test]
    fn rounds_sub_milli_values_up() {
        assert_eq!(milli_units("0.0001"), Some(1));
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for bad in ["", "lots", "1.2.3", "Gi", "1Xi", "1e", "--1"] {
            assert_eq!(milli_units(bad), None, "{bad:?}");
        }
    }
}
