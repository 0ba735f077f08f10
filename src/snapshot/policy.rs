//! Which snapshots a keep policy keeps, and why: restic's `forget` rules, so that its users'
//! intuitions carry over. A pure function of the snapshots' times and the clock, which is
//! passed in, never read here.
//!
//! - `last N`: the N newest snapshots.
//! - `hourly N` (daily, weekly, monthly alike): for the N most recent hours that have a
//!   snapshot, the newest snapshot of each. Hours, days, weeks and months are calendar ones in
//!   UTC; weeks are ISO weeks, Monday 00:00 to Sunday 23:59:59.
//! - `within D`: every snapshot less than D older than the newest snapshot (not than now: a
//!   workspace left alone for a month keeps what it had).
//! - `within-hourly D` (daily, weekly, monthly alike): among the snapshots less than D older
//!   than the newest, the newest of each hour.
//! - When a counted or `within-*` rule still had room when the snapshots ran out, the oldest
//!   snapshot is kept too (`oldest daily snapshot`), as restic 0.17 does: history is kept as
//!   long as the policy allows.
//! - A snapshot is kept when any rule keeps it. The newest snapshot is always kept. A snapshot
//!   dated after `now` (another machine's clock) or whose time cannot be read is kept and takes
//!   no part in the rules.

use std::fmt;
use std::str::FromStr;

/// A span of calendar time as restic writes it: `1y5m7d2h` is one year, five months, seven
/// days and two hours (`m` is months); `w` is seven days. Taken away from a time on the
/// calendar, in UTC: one month before March 31 is March 3 (February 31, carried over), as Go's
/// `AddDate`, which restic uses, has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a duration: give years, months, weeks, days and hours, as in 48h, 7d, 2d3h, 6m, 1y"
)]
pub struct BadSpan(String);

/// Larger than any useful span, small enough that no arithmetic on it overflows.
const SPAN_PART_MAX: u32 = 1_000_000;

impl FromStr for Span {
    type Err = BadSpan;

    fn from_str(text: &str) -> Result<Self, BadSpan> {
        let bad = || BadSpan(text.escape_debug().to_string());
        let mut span = Span::default();
        let mut rest = text.trim();
        let mut seen = String::new();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let number: u32 = rest[..digits].parse().map_err(|_| bad())?;
            let unit = rest[digits..].chars().next().ok_or_else(bad)?;
            if number > SPAN_PART_MAX || seen.contains(unit) {
                return Err(bad());
            }
            seen.push(unit);
            match unit {
                'y' => span.years = number,
                'm' => span.months = number,
                'w' => span.days += number * 7,
                'd' => span.days += number,
                'h' => span.hours = number,
                _ => return Err(bad()),
            }
            rest = &rest[digits + unit.len_utf8()..];
        }
        if span == Span::default() {
            return Err(bad());
        }
        Ok(span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Span {
    /// `time` (Unix seconds, UTC) with this span taken away on the calendar.
    pub fn before(&self, time: i64) -> i64 {
        let (days, second) = (time.div_euclid(DAY), time.rem_euclid(DAY));
        let (year, month, day) = civil_from_days(days);
        let months = year * 12 + (month - 1) - i64::from(self.years) * 12 - i64::from(self.months);
        let first = days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1);
        let days = first + (day - 1) - i64::from(self.days);
        days * DAY + second - i64::from(self.hours) * HOUR
    }
}

/// What to keep. All zero and `None`: no policy, which keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub within: Option<Span>,
    pub within_hourly: Option<Span>,
    pub within_daily: Option<Span>,
    pub within_weekly: Option<Span>,
    pub within_monthly: Option<Span>,
}

fn span(text: &str) -> Span {
    text.parse().expect("a valid span")
}

impl Policy {
    /// The hooks' policy when none is configured: every snapshot of the last 48 hours, then
    /// hourly for 7 days, daily for 30 days and weekly for a year.
    pub fn hook_default() -> Self {
        Self {
            within: Some(span("48h")),
            within_hourly: Some(span("7d")),
            within_daily: Some(span("30d")),
            within_weekly: Some(span("1y")),
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The policy git config describes (`gitkit.keep.last`, ..., `gitkit.keep.withinHourly`,
    /// ...; keys as `git config --get-regexp` prints them, lower-cased), the last value of each
    /// key winning. Other keys, `gitkit.keep.auto` among them, are passed over.
    pub fn from_config(entries: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut policy = Self::default();
        for (key, value) in entries {
            let Some(name) = key.strip_prefix("gitkit.keep.") else {
                continue;
            };
            let count = |slot: &mut u32| {
                *slot = value.trim().parse().map_err(|_| ConfigError {
                    key: key.clone(),
                    value: value.escape_debug().to_string(),
                    expected: "a whole number",
                })?;
                Ok::<_, ConfigError>(())
            };
            let within = |slot: &mut Option<Span>| {
                *slot = Some(value.parse().map_err(|_| ConfigError {
                    key: key.clone(),
                    value: value.escape_debug().to_string(),
                    expected: "a duration such as 48h, 7d, 2d3h, 6m (months) or 1y",
                })?);
                Ok::<_, ConfigError>(())
            };
            match name {
                "last" => count(&mut policy.last)?,
                "hourly" => count(&mut policy.hourly)?,
                "daily" => count(&mut policy.daily)?,
                "weekly" => count(&mut policy.weekly)?,
                "monthly" => count(&mut policy.monthly)?,
                "within" => within(&mut policy.within)?,
                "withinhourly" => within(&mut policy.within_hourly)?,
                "withindaily" => within(&mut policy.within_daily)?,
                "withinweekly" => within(&mut policy.within_weekly)?,
                "withinmonthly" => within(&mut policy.within_monthly)?,
                _ => {}
            }
        }
        Ok(policy)
    }
}

/// `last 3, hourly 24, within 48h, hourly within 7d`.
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (n, name) in [
            (self.last, "last"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
        ] {
            if n > 0 {
                parts.push(format!("{name} {n}"));
            }
        }
        for (span, name) in [
            (self.within, ""),
            (self.within_hourly, "hourly "),
            (self.within_daily, "daily "),
            (self.within_weekly, "weekly "),
            (self.within_monthly, "monthly "),
        ] {
            if let Some(span) = span {
                parts.push(format!("{name}within {span}"));
            }
        }
        if parts.is_empty() {
            return write!(f, "none");
        }
        write!(f, "{}", parts.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("git config {key} is `{value}`, which is not {expected}")]
pub struct ConfigError {
    key: String,
    value: String,
    expected: &'static str,
}

/// A snapshot as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    /// Unix seconds; `None` when the stored time cannot be read.
    pub time: Option<i64>,
}

/// What the policy decided for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub keep: bool,
    /// Why it is kept (empty when it goes), as restic words it: `last snapshot`,
    /// `hourly snapshot`, `within 48h`, `daily within 30d`, `oldest weekly snapshot`, ...
    pub reasons: Vec<String>,
}

const HOUR: i64 = 60 * 60;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone, Copy)]
enum Bucket {
    Each,
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    /// Which bucket `time` falls in; the `nr`th snapshot is a bucket of its own for `Each`.
    fn of(self, time: i64, nr: usize) -> i64 {
        let days = time.div_euclid(DAY);
        match self {
            Bucket::Each => nr as i64,
            Bucket::Hour => time.div_euclid(HOUR),
            Bucket::Day => days,
            // 1970-01-01 was a Thursday: counting from the Monday before it, every ISO week
            // (Monday to Sunday) is one number, across year ends too.
            Bucket::Week => (days + 3).div_euclid(7),
            Bucket::Month => {
                let (year, month, _) = civil_from_days(days);
                year * 12 + month - 1
            }
        }
    }
}

/// A rule with a count (`keep-daily N`) or a window (`keep-within-daily D`) and the bucket
/// it last kept a snapshot for.
struct Rule {
    bucket: Bucket,
    reason: String,
    left: u32,
    window: Option<Span>,
    last: Option<i64>,
}

/// Decides for every snapshot whether `policy` keeps it, as of `now` (Unix seconds): newest
/// first (by time, then by id), one decision each. An empty policy keeps everything.
pub fn apply(snapshots: &[Candidate], policy: &Policy, now: i64) -> Vec<Decision> {
    let mut order: Vec<&Candidate> = snapshots.iter().collect();
    // Unreadable times first, then newest first; equal times by id, as ids sort by time.
    order.sort_by(|a, b| {
        let key = |c: &Candidate| c.time.map_or(i64::MAX, |t| t);
        key(b).cmp(&key(a)).then_with(|| b.id.cmp(&a.id))
    });
    let decide = |c: &Candidate, reasons: Vec<String>| Decision {
        id: c.id.clone(),
        keep: !reasons.is_empty(),
        reasons,
    };
    if policy.is_empty() {
        return order
            .into_iter()
            .map(|c| decide(c, vec!["no policy".into()]))
            .collect();
    }
    let mut decisions = Vec::with_capacity(order.len());
    let mut considered = Vec::with_capacity(order.len());
    for candidate in order {
        match candidate.time {
            None => decisions.push(decide(candidate, vec!["time unreadable".into()])),
            Some(time) if time > now => {
                decisions.push(decide(candidate, vec!["in the future".into()]))
            }
            Some(time) => considered.push((candidate, time)),
        }
    }
    let Some(&(_, latest)) = considered.first() else {
        return decisions;
    };
    let counted = |left, bucket, name: &str| Rule {
        bucket,
        reason: format!("{name} snapshot"),
        left,
        window: None,
        last: None,
    };
    let windowed = |window: Option<Span>, bucket, name: &str| Rule {
        bucket,
        reason: format!("{name} within {}", window.unwrap_or_default()),
        left: u32::from(window.is_some()),
        window,
        last: None,
    };
    let mut rules = [
        counted(policy.last, Bucket::Each, "last"),
        counted(policy.hourly, Bucket::Hour, "hourly"),
        counted(policy.daily, Bucket::Day, "daily"),
        counted(policy.weekly, Bucket::Week, "weekly"),
        counted(policy.monthly, Bucket::Month, "monthly"),
        windowed(policy.within_hourly, Bucket::Hour, "hourly"),
        windowed(policy.within_daily, Bucket::Day, "daily"),
        windowed(policy.within_weekly, Bucket::Week, "weekly"),
        windowed(policy.within_monthly, Bucket::Month, "monthly"),
    ];
    let inside = |span: Span, time: i64| time > span.before(latest);
    let count = considered.len();
    for (nr, (candidate, time)) in considered.into_iter().enumerate() {
        let oldest = nr + 1 == count;
        let mut reasons = Vec::new();
        if let Some(span) = policy.within.filter(|&span| inside(span, time)) {
            reasons.push(format!("within {span}"));
        }
        for rule in &mut rules {
            if rule.left == 0 || rule.window.is_some_and(|span| !inside(span, time)) {
                continue;
            }
            let bucket = rule.bucket.of(time, nr);
            let new_bucket = rule.last != Some(bucket);
            if new_bucket || oldest {
                reasons.push(if new_bucket {
                    rule.reason.clone()
                } else {
                    format!("oldest {}", rule.reason)
                });
                rule.last = Some(bucket);
                if rule.window.is_none() {
                    rule.left -= 1;
                }
            }
        }
        if nr == 0 && reasons.is_empty() {
            reasons.push("newest snapshot".into());
        }
        decisions.push(decide(candidate, reasons));
    }
    decisions
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`); `month` 1 to 12, `day` may run past the month's end.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01: (year, month 1 to 12, day 1 to 31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
