//! Small text helpers shared by both consoles: splitting a line into a
//! command word and arguments, strict number parsing, and C's `%g`.

use crate::reply::Errno;

/// A line's command word and the rest (trimmed), or `None` for an empty or
/// `#` comment line, which VDE answers with the prompt alone.
pub(crate) fn split_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // VDE matches the command path as a prefix of the line, so `port/printx`
    // runs `port/print` with argument `x` and `shutdownx` shuts wirefilter
    // down; we require the path to end at whitespace instead.
    match line.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((word, rest)) => Some((word, rest.trim_start_matches(|c: char| c.is_ascii_whitespace()))),
        None => Some((line, "")),
    }
}

/// The whitespace-separated arguments, exactly `N` of them.
pub(crate) fn args<const N: usize>(rest: &str) -> Result<[&str; N], Errno> {
    let mut words = rest.split_ascii_whitespace();
    let mut out = [""; N];
    for slot in &mut out {
        *slot = words.next().ok_or(Errno::Inval)?;
    }
    if words.next().is_some() {
        return Err(Errno::Inval);
    }
    Ok(out)
}

/// A decimal integer (VDE uses `atoi`, which reads garbage as 0; we refuse
/// it so that a typo never changes the switch).
pub(crate) fn int<T: std::str::FromStr>(word: &str) -> Result<T, Errno> {
    if word.is_empty() || !word.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
        return Err(Errno::Inval);
    }
    word.parse().map_err(|_| Errno::Inval)
}

/// `value` as C's `printf("%g")` prints it (6 significant digits, trailing
/// zeros removed, exponent form below 1e-4 and from 1e6 on), which is how
/// wirefilter shows its values.
pub(crate) fn c_g(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".to_owned()
        } else if value > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    // Rounding to 6 significant digits first gives the exponent C uses.
    let sci = format!("{value:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` output always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if !(-4..6).contains(&exp) {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(5 - exp).expect("exp < 6");
        strip_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

fn strip_zeros(number: &str) -> &str {
    if number.contains('.') { number.trim_end_matches('0').trim_end_matches('.') } else { number }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g_matches_c() {
        let cases = [
            (0.0, "0"),
            (1.5, "1.5"),
            (20.0, "20"),
            (10240.0, "10240"),
            (100000.0, "100000"),
            (1048576.0, "1.04858e+06"),
            (2147483648.0, "2.14748e+09"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456.7, "123457"),
            (999999.5, "1e+06"),
            (-2.5, "-2.5"),
            (1.0 / 3.0, "0.333333"),
        ];
        for (value, want) in cases {
            assert_eq!(c_g(value), want, "{value}");
        }
    }

    #[test]
    fn lines_split_at_whitespace() {
        assert_eq!(split_line("  port/print 3 \r\n"), Some(("port/print", "3")));
        assert_eq!(split_line("showinfo"), Some(("showinfo", "")));
        assert_eq!(split_line("delay\tLR 20"), Some(("delay", "LR 20")));
        assert_eq!(split_line("   "), None);
        assert_eq!(split_line("# vlan/create 3"), None);
        assert_eq!(args::<2>("10  5"), Ok(["10", "5"]));
        assert_eq!(args::<2>("10"), Err(Errno::Inval));
        assert_eq!(args::<1>("10 5"), Err(Errno::Inval));
        assert_eq!(int::<u16>("0042"), Ok(42));
        assert_eq!(int::<u16>("x"), Err(Errno::Inval));
        assert_eq!(int::<u16>("+3"), Err(Errno::Inval));
        assert_eq!(int::<i64>("-3"), Ok(-3));
    }
}
