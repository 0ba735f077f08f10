//! Hand-computed cases: each names the snapshots' times (UTC), the policy, the clock, and what
//! must be kept and why. Times are written out, not computed, so that the table checks the
//! calendar arithmetic rather than repeating it.

use super::*;

/// `2026-11-28T12:00:00` as Unix seconds (the test's own parser, independent of the code's).
fn at(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> i64 { text[range].parse().expect("digits") };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    let days_in = |y: i64, m: i64| match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let mut days = 0;
    for y in 1970..year {
        days += (1..=12).map(|m| days_in(y, m)).sum::<i64>();
    }
    days += (1..month).map(|m| days_in(year, m)).sum::<i64>() + day - 1;
    days * DAY + hour * HOUR + minute * 60 + second
}

/// Snapshots named by their times.
fn snapshots(times: &[&str]) -> Vec<Candidate> {
    times
        .iter()
        .map(|t| Candidate {
            id: t.to_string(),
            time: Some(at(t)),
        })
        .collect()
}

/// The kept snapshots, newest first, each with its reasons joined.
fn kept(times: &[&str], policy: Policy, now: &str) -> Vec<(String, String)> {
    let decisions = apply(&snapshots(times), &policy, at(now));
    assert_eq!(decisions.len(), times.len(), "one decision each");
    decisions
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| (d.id, d.reasons.join(", ")))
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect()
}

const NOW: &str = "2026-12-31T00:00:00";

#[test]
fn calendar_arithmetic() {
    assert_eq!(
        at("2026-11-28T12:00:00"),
        1_795_867_200,
        "checked with date(1)"
    );
    for text in [
        "1970-01-01T00:00:00",
        "2000-02-29T23:59:59",
        "2027-01-04T00:00:00",
    ] {
        let t = at(text);
        let (y, m, d) = civil_from_days(t.div_euclid(DAY));
        assert_eq!(format!("{y:04}-{m:02}-{d:02}"), text[..10]);
        assert_eq!(days_from_civil(y, m, d), t.div_euclid(DAY));
    }
}

#[test]
fn keep_last() {
    let times = [
        "2026-11-28T10:00:00",
        "2026-11-28T11:00:00",
        "2026-11-28T12:00:00",
        "2026-11-28T13:00:00",
    ];
    let policy = Policy {
        last: 2,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            ("2026-11-28T13:00:00", "last snapshot"),
            ("2026-11-28T12:00:00", "last snapshot")
        ])
    );
    let all = Policy {
        last: 10,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, all, NOW).len(),
        4,
        "fewer snapshots than N: all kept"
    );
}

#[test]
fn keep_hourly_takes_the_newest_of_each_hour_that_has_one() {
    let times = [
        "2026-11-28T08:10:00", // an hour with no snapshot after it: 09:00 is empty
        "2026-11-28T10:05:00",
        "2026-11-28T10:40:00",
        "2026-11-28T11:10:00",
        "2026-11-28T11:50:00",
        "2026-11-28T12:20:00",
    ];
    let two = Policy {
        hourly: 2,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, two, NOW),
        expect(&[
            ("2026-11-28T12:20:00", "hourly snapshot"),
            ("2026-11-28T11:50:00", "hourly snapshot")
        ])
    );
    // The empty 09:00 hour is not counted: the third and fourth hours are 10:00 and 08:00.
    let four = Policy {
        hourly: 4,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, four, NOW),
        expect(&[
            ("2026-11-28T12:20:00", "hourly snapshot"),
            ("2026-11-28T11:50:00", "hourly snapshot"),
            ("2026-11-28T10:40:00", "hourly snapshot"),
            ("2026-11-28T08:10:00", "hourly snapshot"),
        ])
    );
}

#[test]
fn the_oldest_is_kept_while_a_rule_has_room() {
    // Five hours asked for, three hours there: the oldest snapshot is kept as well.
    let times = [
        "2026-11-28T10:05:00",
        "2026-11-28T10:40:00",
        "2026-11-28T11:10:00",
        "2026-11-28T12:20:00",
    ];
    let policy = Policy {
        hourly: 5,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            ("2026-11-28T12:20:00", "hourly snapshot"),
            ("2026-11-28T11:10:00", "hourly snapshot"),
            ("2026-11-28T10:40:00", "hourly snapshot"),
            ("2026-11-28T10:05:00", "oldest hourly snapshot"),
        ])
    );
    // Exactly enough hours: no room left, the oldest goes.
    let three = Policy {
        hourly: 3,
        ..Policy::default()
    };
    assert_eq!(kept(&times, three, NOW).len(), 3);
}

#[test]
fn an_hour_ends_at_59_59() {
    let times = [
        "2026-11-28T10:00:00",
        "2026-11-28T10:59:59",
        "2026-11-28T11:00:00",
        "2026-11-28T11:30:00",
    ];
    let policy = Policy {
        hourly: 2,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            ("2026-11-28T11:30:00", "hourly snapshot"),
            ("2026-11-28T10:59:59", "hourly snapshot")
        ])
    );
}

#[test]
fn a_day_ends_at_midnight_utc() {
    let times = [
        "2026-11-27T23:59:59",
        "2026-11-28T00:00:00",
        "2026-11-28T12:00:00",
    ];
    let policy = Policy {
        daily: 2,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            ("2026-11-28T12:00:00", "daily snapshot"),
            ("2026-11-27T23:59:59", "daily snapshot")
        ])
    );
}

#[test]
fn weeks_are_iso_weeks_across_the_year_end() {
    // 2026-12-27 is a Sunday (2026-W52); 2026-12-28 to 2027-01-03 is 2026-W53; 2027-01-04 is a
    // Monday, 2027-W01.
    let times = [
        "2026-12-27T12:00:00",
        "2026-12-28T00:00:00",
        "2027-01-01T12:00:00",
        "2027-01-03T23:59:59",
        "2027-01-04T00:00:00",
    ];
    let policy = Policy {
        weekly: 3,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, "2027-02-01T00:00:00"),
        expect(&[
            ("2027-01-04T00:00:00", "weekly snapshot"),
            ("2027-01-03T23:59:59", "weekly snapshot"),
            ("2026-12-27T12:00:00", "weekly snapshot"),
        ])
    );
}

#[test]
fn months_are_calendar_months() {
    let times = [
        "2026-01-31T23:59:59",
        "2026-02-01T00:00:00",
        "2026-02-28T23:00:00",
        "2026-12-01T00:00:00",
    ];
    let policy = Policy {
        monthly: 3,
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            ("2026-12-01T00:00:00", "monthly snapshot"),
            ("2026-02-28T23:00:00", "monthly snapshot"),
            ("2026-01-31T23:59:59", "monthly snapshot"),
        ])
    );
}

#[test]
fn keep_within_counts_from_the_newest_snapshot_not_from_now() {
    let times = [
        "2026-11-26T11:59:59",
        "2026-11-26T12:00:00", // exactly 48h before the newest: outside, as in restic
        "2026-11-26T12:00:01",
        "2026-11-28T12:00:00",
    ];
    let policy = Policy {
        within: Some(span("48h")),
        ..Policy::default()
    };
    let expected = expect(&[
        ("2026-11-28T12:00:00", "within 48h"),
        ("2026-11-26T12:00:01", "within 48h"),
    ]);
    assert_eq!(kept(&times, policy, "2026-11-28T12:00:00"), expected);
    // A month later, nothing new: the same snapshots are kept.
    assert_eq!(kept(&times, policy, "2026-12-28T12:00:00"), expected);
    let two_days = Policy {
        within: Some(span("2d")),
        ..Policy::default()
    };
    assert_eq!(kept(&times, two_days, NOW).len(), 2, "2d is 48h");
}

#[test]
fn keep_within_hourly_takes_hours_inside_the_window() {
    let times = [
        "2026-11-27T11:59:00", // before the window (it starts at 2026-11-27T12:00:00)
        "2026-11-27T12:10:00",
        "2026-11-27T12:30:00",
        "2026-11-28T11:10:00",
        "2026-11-28T11:30:00",
        "2026-11-28T12:00:00",
    ];
    let policy = Policy {
        within_hourly: Some(span("1d")),
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            ("2026-11-28T12:00:00", "hourly within 1d"),
            ("2026-11-28T11:30:00", "hourly within 1d"),
            ("2026-11-27T12:30:00", "hourly within 1d"),
        ])
    );
    // The oldest inside the window is kept too when it is the oldest of all.
    let inside = &times[1..];
    assert_eq!(
        kept(inside, policy, NOW).last(),
        Some(&(
            "2026-11-27T12:10:00".to_string(),
            "oldest hourly within 1d".to_string()
        ))
    );
}

#[test]
fn within_daily_weekly_and_monthly() {
    let times = [
        "2026-09-15T12:00:00",
        "2026-10-20T12:00:00",
        "2026-10-25T12:00:00", // a Sunday
        "2026-10-26T09:00:00", // the Monday after
        "2026-11-27T09:00:00",
        "2026-11-27T18:00:00",
        "2026-11-28T12:00:00",
    ];
    let daily = Policy {
        within_daily: Some(span("2d")),
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, daily, NOW),
        expect(&[
            ("2026-11-28T12:00:00", "daily within 2d"),
            ("2026-11-27T18:00:00", "daily within 2d"),
        ])
    );
    let weekly = Policy {
        within_weekly: Some(span("5w")),
        ..Policy::default()
    };
    // The window starts at 2026-10-24T12:00:00.
    assert_eq!(
        kept(&times, weekly, NOW),
        expect(&[
            ("2026-11-28T12:00:00", "weekly within 35d"),
            ("2026-10-26T09:00:00", "weekly within 35d"),
            ("2026-10-25T12:00:00", "weekly within 35d"),
        ])
    );
    let monthly = Policy {
        within_monthly: Some(span("2m")),
        ..Policy::default()
    };
    // Two calendar months before 2026-11-28T12:00:00 is 2026-09-28T12:00:00.
    assert_eq!(
        kept(&times, monthly, NOW),
        expect(&[
            ("2026-11-28T12:00:00", "monthly within 2m"),
            ("2026-10-26T09:00:00", "monthly within 2m"),
        ])
    );
}

#[test]
fn rules_combine_and_each_reason_is_named() {
    let times = [
        "2026-11-20T08:00:00",
        "2026-11-27T08:00:00",
        "2026-11-27T20:00:00",
        "2026-11-28T09:00:00",
        "2026-11-28T10:00:00",
    ];
    let policy = Policy {
        last: 2,
        daily: 2,
        within: Some(span("1d")),
        ..Policy::default()
    };
    assert_eq!(
        kept(&times, policy, NOW),
        expect(&[
            (
                "2026-11-28T10:00:00",
                "within 1d, last snapshot, daily snapshot"
            ),
            ("2026-11-28T09:00:00", "within 1d, last snapshot"),
            ("2026-11-27T20:00:00", "within 1d, daily snapshot"),
        ])
    );
}

#[test]
fn equal_times_are_ordered_by_id() {
    let one = at("2026-11-28T12:00:00");
    let candidates = vec![
        Candidate {
            id: "20261128T120000.000Z-aaa".into(),
            time: Some(one),
        },
        Candidate {
            id: "20261128T120000.000Z-bbb".into(),
            time: Some(one),
        },
    ];
    let policy = Policy {
        last: 1,
        ..Policy::default()
    };
    let decisions = apply(&candidates, &policy, at(NOW));
    assert_eq!(decisions[0].id, "20261128T120000.000Z-bbb");
    assert!(decisions[0].keep);
    assert!(!decisions[1].keep);
    let hourly = Policy {
        hourly: 1,
        ..Policy::default()
    };
    let decisions = apply(&candidates, &hourly, at(NOW));
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        ["20261128T120000.000Z-bbb"]
    );
}

#[test]
fn snapshots_from_the_future_and_unreadable_times_are_kept_and_not_counted() {
    let mut candidates = snapshots(&[
        "2026-11-28T10:00:00",
        "2026-11-28T11:00:00",
        "2027-06-01T00:00:00",
    ]);
    candidates.push(Candidate {
        id: "unreadable".into(),
        time: None,
    });
    let policy = Policy {
        last: 1,
        within: Some(span("1h")),
        ..Policy::default()
    };
    let decisions = apply(&candidates, &policy, at("2026-11-28T12:00:00"));
    let shown: Vec<(&str, bool, String)> = decisions
        .iter()
        .map(|d| (d.id.as_str(), d.keep, d.reasons.join(", ")))
        .collect();
    assert_eq!(
        shown,
        [
            ("unreadable", true, "time unreadable".to_string()),
            ("2027-06-01T00:00:00", true, "in the future".to_string()),
            (
                "2026-11-28T11:00:00",
                true,
                "within 1h, last snapshot".to_string()
            ),
            ("2026-11-28T10:00:00", false, String::new()),
        ]
    );
}

#[test]
fn an_empty_policy_keeps_everything() {
    let times = ["2020-01-01T00:00:00", "2026-11-28T10:00:00"];
    assert_eq!(
        kept(&times, Policy::default(), NOW),
        expect(&[
            ("2026-11-28T10:00:00", "no policy"),
            ("2020-01-01T00:00:00", "no policy")
        ])
    );
    assert!(apply(&[], &Policy::hook_default(), 0).is_empty());
}

#[test]
fn the_hooks_default_policy() {
    // Every 6 hours for two years up to the newest, at 2026-11-28T12:00:00 (a Saturday).
    let newest = at("2026-11-28T12:00:00");
    let candidates: Vec<Candidate> = (0..4 * 730)
        .map(|i| {
            let time = newest - i * 6 * HOUR;
            Candidate {
                id: format!("{time:012}"),
                time: Some(time),
            }
        })
        .collect();
    let decisions = apply(&candidates, &Policy::hook_default(), newest);
    let keep = |time: &str| {
        let id = format!("{:012}", at(time));
        decisions.iter().find(|d| d.id == id).expect("listed").keep
    };
    // Inside 48h: all 8 (the one at exactly 48h is outside).
    assert!(keep("2026-11-26T18:00:00"));
    // Inside 7d, each snapshot is the only one of its hour: all kept.
    assert!(keep("2026-11-22T06:00:00"));
    // Inside 30d: one a day, the newest (18:00).
    assert!(keep("2026-11-10T18:00:00"));
    assert!(!keep("2026-11-10T12:00:00"));
    // Inside a year: one a week, the newest (Sunday 18:00).
    assert!(keep("2026-06-07T18:00:00"));
    assert!(!keep("2026-06-06T18:00:00"));
    // Older than a year: gone.
    assert!(!keep("2025-11-23T18:00:00"));
    assert!(decisions[0].keep);
    let kept = decisions.iter().filter(|d| d.keep).count();
    // 8 (48h) + 20 more hourly (to 7d: 28 snapshots in all) + 23 more daily (to 30d) + 48
    // weekly Sundays before them (within a year; the oldest snapshot of all is outside it).
    assert_eq!(kept, 28 + 23 + 48);
}

#[test]
fn spans_parse_as_restic_writes_them() {
    let parsed = |text: &str| text.parse::<Span>();
    assert_eq!(
        parsed("2d3h"),
        Ok(Span {
            days: 2,
            hours: 3,
            ..Span::default()
        })
    );
    assert_eq!(parsed("48h").map(|s| s.to_string()), Ok("48h".into()));
    assert_eq!(
        parsed("1y5m7d2h").map(|s| s.to_string()),
        Ok("1y5m7d2h".into())
    );
    assert_eq!(parsed("2w").map(|s| s.to_string()), Ok("14d".into()));
    for bad in [
        "",
        "0d",
        "5",
        "1x",
        "1d1d",
        "-1d",
        "1.5d",
        "d",
        "99999999999h",
        "7 d",
    ] {
        assert!(parsed(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn spans_are_taken_away_on_the_calendar() {
    let before = |span: &str, time: &str| span.parse::<Span>().expect("span").before(at(time));
    assert_eq!(
        before("2d3h", "2026-11-28T12:00:00"),
        at("2026-11-26T09:00:00")
    );
    assert_eq!(
        before("1m", "2026-03-31T10:00:00"),
        at("2026-03-03T10:00:00"),
        "Feb 31 carries"
    );
    assert_eq!(
        before("1y", "2028-02-29T00:00:00"),
        at("2027-03-01T00:00:00")
    );
    assert_eq!(
        before("1y", "2027-01-15T00:00:00"),
        at("2026-01-15T00:00:00")
    );
    assert_eq!(
        before("13m", "2027-01-15T00:00:00"),
        at("2025-12-15T00:00:00")
    );
    assert_eq!(
        before("30d", "2026-03-01T00:00:00"),
        at("2026-01-30T00:00:00")
    );
}

#[test]
fn policies_come_from_git_config() {
    let entries = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let policy = Policy::from_config(&entries(&[
        ("gitkit.keep.last", "3"),
        ("gitkit.keep.last", "5"),
        ("gitkit.keep.withinhourly", "7d"),
        ("gitkit.keep.auto", "false"),
        ("gitkit.store", "/x"),
    ]))
    .expect("valid");
    assert_eq!(
        policy,
        Policy {
            last: 5,
            within_hourly: Some(span("7d")),
            ..Policy::default()
        }
    );
    assert_eq!(policy.to_string(), "last 5, hourly within 7d");
    let error = Policy::from_config(&entries(&[("gitkit.keep.daily", "lots")])).expect_err("bad");
    assert_eq!(
        error.to_string(),
        "git config gitkit.keep.daily is `lots`, which is not a whole number"
    );
    assert!(Policy::from_config(&entries(&[("gitkit.keep.within", "7x")])).is_err());
    assert!(Policy::from_config(&[]).expect("empty").is_empty());
}
