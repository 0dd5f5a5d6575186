//! Human-readable numbers and durations, identical on server and browser so hydration matches.

use chrono::{DateTime, Datelike, Timelike, Utc};

// Timestamps are formatted by hand: chrono's `format` brings a strftime parser into the WASM
// bundle for two fixed layouts.

/// `14:03:07.125 UTC`
pub fn clock_millis(t: &DateTime<Utc>) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis().min(999)
    )
}

/// `2026-11-25 14:03:07 UTC`
pub fn date_time(t: &DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `59s`, `4m 05s`, `3h 12m`, `2d 04h`.
pub fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

/// `0`, `999`, `12,345`, `-1,000`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `0.42 ms`, `3.1 ms`, `250 ms`.
pub fn millis(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A duration for run and step timers: `850 ms`, `12.4 s`, `3m 05s`, `1h 02m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// Dollars with enough digits to see a single LLM call: `$0.0031`, `$1.25`, `$1,204.50`.
pub fn usd(amount: f64) -> String {
    if !amount.is_finite() || amount <= 0.0 {
        return "$0.00".into();
    }
    if amount < 1.0 {
        format!("${amount:.4}")
    } else {
        let cents = (amount * 100.0).round() as i64;
        format!("${}.{:02}", count(cents / 100), cents % 100)
    }
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A JSON value as a reader wants it: a string as itself, anything else as JSON.
pub fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_picks_the_two_largest_units() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(60), "1m 00s");
        assert_eq!(uptime(245), "4m 05s");
        assert_eq!(uptime(3_600), "1h 00m");
        assert_eq!(uptime(3 * 3_600 + 12 * 60 + 9), "3h 12m");
        assert_eq!(uptime(2 * 86_400 + 4 * 3_600), "2d 04h");
    }

    #[test]
    fn timestamps_match_their_strftime_layouts() {
        let t = DateTime::parse_from_rfc3339("2026-01-05T04:03:07.125999Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(clock_millis(&t), t.format("%H:%M:%S%.3f UTC").to_string());
        assert_eq!(date_time(&t), t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    }

    #[test]
    fn count_groups_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(12_345), "12,345");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1_000), "-1,000");
    }

    #[test]
    fn durations_and_dollars_read_naturally() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_400), "12.4 s");
        assert_eq!(duration_ms(185_000), "3m 05s");
        assert_eq!(duration_ms(3_720_000), "1h 02m");
        assert_eq!(usd(0.00312), "$0.0031");
        assert_eq!(usd(1204.5), "$1,204.50");
        assert_eq!(usd(0.0), "$0.00");
    }

    #[test]
    fn millis_keeps_three_significant_digits_at_most() {
        assert_eq!(millis(0.421), "0.42 ms");
        assert_eq!(millis(3.17), "3.2 ms");
        assert_eq!(millis(250.4), "250 ms");
    }
}
