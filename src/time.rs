//! Time formats: RFC 3339 for people and JSON, compact ISO 8601 for signatures and ids.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::date_time::{DateTime, Format};

/// `time` with its fraction of a second dropped.
pub fn whole_second(time: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds(time))
}

pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `2026-11-28T09:30:00Z`.
pub fn rfc3339(time: SystemTime) -> String {
    DateTime::from(whole_second(time))
        .fmt(Format::DateTime)
        .expect("a time after 1970 formats")
}

/// Unix seconds of an RFC 3339 time (`2026-11-28T09:30:00Z`); `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .map(|time| time.secs())
}

/// `20261128T093000Z`.
pub fn compact(time: SystemTime) -> String {
    rfc3339(time)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

/// `2h`, `10m`, `3s`, `2500ms`: the largest unit that shows `duration` exactly.
pub fn show_duration(duration: Duration) -> String {
    if duration.subsec_nanos() != 0 {
        return format!("{}ms", duration.as_millis());
    }
    match duration.as_secs() {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let time = UNIX_EPOCH + Duration::from_millis(1_795_858_200_999);
        assert_eq!(rfc3339(time), "2026-11-28T09:30:00Z");
        assert_eq!(compact(time), "20261128T093000Z");
        assert_eq!(parse_rfc3339("2026-11-28T09:30:00Z"), Some(1_795_858_200));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
