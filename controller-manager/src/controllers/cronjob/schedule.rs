//! Cron schedules as the CronJob controller reads them (robfig/cron v3 `ParseStandard`, which
//! upstream uses): five fields (minute, hour, day of month, month, day of week) with `*`, `?`,
//! ranges `a-b`, steps `/n`, lists `a,b` and month / weekday names (`jan`, `mon`), or one of the
//! macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`. A `TZ=` / `CRON_TZ=`
//! prefix is refused (the API refuses it; `spec.timeZone` is the way). When both day fields are
//! restricted a day matches either (cron's OR rule); a `*` in one makes it AND.
//!
//! [`Schedule::next`] walks fields like robfig does, in the schedule's time zone and over
//! absolute time for hours and minutes, so a time skipped by a DST gap does not run that day
//! and a time repeated by a DST fall-back runs twice. Times come from IANA names through
//! jiff's zone support: the zoneinfo files (`$ZONEINFO` or `/usr/share/zoneinfo`), read as TZif.
//!
//! Not implemented: `@every <duration>`.

use k8s_openapi::jiff::civil::DateTime;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Span, Timestamp};

/// robfig gives up after five years of searching.
const SEARCH_YEARS: i16 = 5;

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// The day-of-month / day-of-week field started with `*` or `?`.
    dom_star: bool,
    dow_star: bool,
}

struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value the first name stands for (months count from 1).
    names_from: u32,
}

const MINUTE: Field = Field {
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: Field = Field {
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DOM: Field = Field {
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: Field = Field {
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    names_from: 1,
};
const DOW: Field = Field {
    min: 0,
    max: 6,
    names: &DAY_NAMES,
    names_from: 0,
};

impl Field {
    fn value(&self, s: &str, expr: &str) -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.names_from + i as u32);
        }
        s.parse::<u32>()
            .map_err(|_| format!("failed to parse int from {s}: invalid syntax (in {expr})"))
    }

    /// One comma-separated part: the bits it sets and whether it was a star.
    fn part(&self, expr: &str) -> Result<(u64, bool), String> {
        let (range, step) = match expr.split_once('/') {
            Some((range, step)) => {
                let step = step
                    .parse::<u32>()
                    .map_err(|_| format!("failed to parse int from {step}: invalid syntax"))?;
                (range, Some(step))
            }
            None => (expr, None),
        };
        let (mut start, mut end, mut star) = if range == "*" || range == "?" {
            (self.min, self.max, true)
        } else if let Some((a, b)) = range.split_once('-') {
            (self.value(a, expr)?, self.value(b, expr)?, false)
        } else {
            let v = self.value(range, expr)?;
            (v, v, false)
        };
        if let Some(step) = step {
            if step == 0 {
                return Err(format!("step of range should be a positive number: {expr}"));
            }
            // `n/step` means `n-max/step`.
            if !star && !range.contains('-') {
                end = self.max;
            }
            if step > 1 {
                star = false;
            }
        }
        if start < self.min {
            return Err(format!(
                "beginning of range ({start}) below minimum ({}): {expr}",
                self.min
            ));
        }
        if end > self.max {
            return Err(format!(
                "end of range ({end}) above maximum ({}): {expr}",
                self.max
            ));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {expr}"
            ));
        }
        let step = step.unwrap_or(1);
        let mut bits = 0u64;
        while start <= end {
            bits |= 1 << start;
            start += step;
        }
        Ok((bits, star))
    }

    fn parse(&self, field: &str) -> Result<(u64, bool), String> {
        let mut bits = 0;
        let mut star = false;
        for part in field.split(',') {
            let (b, s) = self.part(part)?;
            bits |= b;
            star |= s;
        }
        Ok((bits, star))
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    fn from_str(spec: &str) -> Result<Schedule, String> {
        parse(spec)
    }
}

/// Parses a standard (5-field or macro) schedule.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        return Err("TZ and CRON_TZ prefixes are not supported, use spec.timeZone".into());
    }
    let expanded = match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
        s => s,
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {fields:?}",
            fields.len()
        ));
    }
    let (minutes, _) = MINUTE.parse(fields[0])?;
    let (hours, _) = HOUR.parse(fields[1])?;
    let (days_of_month, dom_star) = DOM.parse(fields[2])?;
    let (months, _) = MONTH.parse(fields[3])?;
    let (days_of_week, dow_star) = DOW.parse(fields[4])?;
    Ok(Schedule {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        dom_star,
        dow_star,
    })
}

fn has(bits: u64, v: i8) -> bool {
    v >= 0 && bits & (1 << v) != 0
}

impl Schedule {
    fn day_matches(&self, dt: &DateTime) -> bool {
        let dom = has(self.days_of_month, dt.day());
        let dow = has(self.days_of_week, dt.weekday().to_sunday_zero_offset());
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first activation strictly after `after` (whole minutes), or None when there is none
    /// within five years (e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let secs = after.as_second();
        let mut t = Timestamp::from_second(secs - secs.rem_euclid(60) + 60).ok()?;
        let limit = t.to_zoned(tz.clone()).year() + SEARCH_YEARS;
        // Each step moves at least a minute forward; the bound only guards against a bug.
        for _ in 0..1_000_000 {
            let dt = t.to_zoned(tz.clone()).datetime();
            if dt.year() > limit {
                return None;
            }
            if !has(self.months, dt.month()) {
                let next_month = dt
                    .date()
                    .first_of_month()
                    .checked_add(Span::new().months(1))
                    .ok()?;
                t = next_month.to_zoned(tz.clone()).ok()?.timestamp();
                continue;
            }
            if !self.day_matches(&dt) {
                t = dt
                    .date()
                    .tomorrow()
                    .ok()?
                    .to_zoned(tz.clone())
                    .ok()?
                    .timestamp();
                continue;
            }
            if !has(self.hours, dt.hour()) {
                let into_hour = i64::from(dt.minute()) * 60 + i64::from(dt.second());
                t = Timestamp::from_second(t.as_second() - into_hour + 3600).ok()?;
                continue;
            }
            if !has(self.minutes, dt.minute()) {
                t = Timestamp::from_second(t.as_second() + 60).ok()?;
                continue;
            }
            return Some(t);
        }
        None
    }
}

/// The zone of `spec.timeZone` (UTC when unset), from the zoneinfo database.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    let name = match name {
        None | Some("") | Some("UTC") | Some("Etc/UTC") => return Ok(TimeZone::UTC),
        Some(name) => name,
    };
    if let Ok(tz) = TimeZone::get(name) {
        return Ok(tz);
    }
    let valid = !name.starts_with('/')
        && !name.contains("..")
        && name != "Local"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !valid {
        return Err(format!("unknown time zone {name}"));
    }
    let dir = std::env::var("ZONEINFO").unwrap_or_else(|_| "/usr/share/zoneinfo".into());
    let data = std::fs::read(std::path::Path::new(&dir).join(name))
        .map_err(|_| format!("unknown time zone {name}"))?;
    TimeZone::tzif(name, &data).map_err(|e| format!("unknown time zone {name}: {e}"))
}

#[cfg(test)]
mod tests;
