use super::*;

fn ts(s: &str) -> Timestamp {
    match s.parse::<Timestamp>() {
        Ok(t) => t,
        Err(err) => panic!("bad timestamp {s}: {err}"),
    }
}

fn tz(name: &str) -> TimeZone {
    match time_zone(Some(name)) {
        Ok(tz) => tz,
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn parse_errors() {
    let bad = [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields"),
        ("60 * * * *", "above maximum (59)"),
        ("* 24 * * *", "above maximum (23)"),
        ("* * 0 * *", "below minimum (1)"),
        ("* * * 13 *", "above maximum (12)"),
        ("* * * * 7", "above maximum (6)"),
        ("5-1 * * * *", "beyond end of range"),
        ("*/0 * * * *", "step of range should be a positive number"),
        ("x * * * *", "failed to parse int from x"),
        ("@fortnightly", "unrecognized descriptor"),
        ("TZ=UTC * * * * *", "TZ and CRON_TZ"),
        ("CRON_TZ=Europe/Paris 0 * * * *", "TZ and CRON_TZ"),
    ];
    for (spec, want) in bad {
        match parse(spec) {
            Ok(s) => panic!("{spec:?} parsed: {s:?}"),
            Err(err) => assert!(err.contains(want), "{spec:?}: {err}"),
        }
    }
    for good in [
        "* * * * *",
        "*/15 0-6,22 1,15 jan-mar,DEC mon-fri",
        "? ? ? ? ?",
        "5/10 * * * *",
        "@hourly",
    ] {
        assert!(parse(good).is_ok(), "{good}");
    }
}

#[test]
fn macros_expand_to_their_fields() {
    let same = [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ];
    for (m, fields) in same {
        assert_eq!(parse(m), parse(fields), "{m}");
    }
}

/// (schedule, zone, after, next) — times in UTC.
#[test]
fn next_time_table() {
    let cases = [
        (
            "* * * * *",
            "UTC",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:01:00Z",
        ),
        (
            "* * * * *",
            "UTC",
            "2024-05-01T10:00:59Z",
            "2024-05-01T10:01:00Z",
        ),
        (
            "*/15 * * * *",
            "UTC",
            "2024-05-01T10:16:00Z",
            "2024-05-01T10:30:00Z",
        ),
        (
            "5/20 * * * *",
            "UTC",
            "2024-05-01T10:26:00Z",
            "2024-05-01T10:45:00Z",
        ),
        (
            "0 9 * * mon-fri",
            "UTC",
            "2024-05-03T09:00:00Z",
            "2024-05-06T09:00:00Z",
        ),
        (
            "30 2 1 jan *",
            "UTC",
            "2024-05-01T00:00:00Z",
            "2025-01-01T02:30:00Z",
        ),
        (
            "@monthly",
            "UTC",
            "2024-01-31T12:00:00Z",
            "2024-02-01T00:00:00Z",
        ),
        (
            "@yearly",
            "UTC",
            "2024-12-31T23:59:00Z",
            "2025-01-01T00:00:00Z",
        ),
        (
            "@weekly",
            "UTC",
            "2024-05-01T00:00:00Z",
            "2024-05-05T00:00:00Z",
        ),
        (
            "0 0 29 2 *",
            "UTC",
            "2024-03-01T00:00:00Z",
            "2028-02-29T00:00:00Z",
        ),
        // Both day fields restricted: either matches (the 13th, or a Friday).
        (
            "0 0 13 * fri",
            "UTC",
            "2024-05-01T00:00:00Z",
            "2024-05-03T00:00:00Z",
        ),
        (
            "0 0 13 * fri",
            "UTC",
            "2024-05-10T00:00:00Z",
            "2024-05-13T00:00:00Z",
        ),
        // A star in one makes it AND: Fridays only.
        (
            "0 0 * * fri",
            "UTC",
            "2024-05-10T00:00:00Z",
            "2024-05-17T00:00:00Z",
        ),
        // spec.timeZone: 09:00 in New York is 13:00 UTC in summer, 14:00 in winter.
        (
            "0 9 * * *",
            "America/New_York",
            "2024-07-01T00:00:00Z",
            "2024-07-01T13:00:00Z",
        ),
        (
            "0 9 * * *",
            "America/New_York",
            "2024-12-01T00:00:00Z",
            "2024-12-01T14:00:00Z",
        ),
        (
            "0 0 * * *",
            "Asia/Tokyo",
            "2024-05-01T00:00:00Z",
            "2024-05-01T15:00:00Z",
        ),
        // DST spring forward (New York, 2024-03-10 02:00 -> 03:00): 02:30 does not exist that
        // day, so the next run is the following day.
        (
            "30 2 * * *",
            "America/New_York",
            "2024-03-10T05:00:00Z",
            "2024-03-11T06:30:00Z",
        ),
        // An hourly schedule skips the missing hour: 01:00 EST then 03:00 EDT.
        (
            "0 * * * *",
            "America/New_York",
            "2024-03-10T06:00:00Z",
            "2024-03-10T07:00:00Z",
        ),
        // DST fall back (2024-11-03 02:00 -> 01:00): 01:30 happens twice, both run.
        (
            "30 1 * * *",
            "America/New_York",
            "2024-11-03T04:00:00Z",
            "2024-11-03T05:30:00Z",
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2024-11-03T05:30:00Z",
            "2024-11-03T06:30:00Z",
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2024-11-03T06:30:00Z",
            "2024-11-04T06:30:00Z",
        ),
    ];
    for (spec, zone, after, want) in cases {
        let sched = match parse(spec) {
            Ok(s) => s,
            Err(err) => panic!("{spec}: {err}"),
        };
        assert_eq!(
            sched.next(ts(after), &tz(zone)),
            Some(ts(want)),
            "{spec} in {zone} after {after}"
        );
    }
}

#[test]
fn impossible_dates_have_no_next_time() {
    let sched = match parse("59 23 31 2 *") {
        Ok(s) => s,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(sched.next(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC), None);
}

#[test]
fn time_zones_resolve_or_fail() {
    assert!(time_zone(None).is_ok());
    assert!(time_zone(Some("Europe/Berlin")).is_ok());
    for bad in ["Mars/Olympus", "../etc/passwd", "/etc/localtime", "Local"] {
        assert!(time_zone(Some(bad)).is_err(), "{bad}");
    }
}
