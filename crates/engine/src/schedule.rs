//! When scheduled backups run: every day, on chosen weekdays, on a day of the month, or by a
//! cron line, at a time of day in the device's local time zone. Times that a daylight-saving
//! change skips run just after the change; times it repeats run once, at their first
//! occurrence. Pure computation on an injected clock, so the scheduler and its tests agree.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::retention::Policy;

/// `[schedule.NAME]` in the configuration (docs/CONFIG.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `day`, `week` or `month` (or give `cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Weekdays, for `every = "week"` (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Day of the month, for `every = "month"`; past a short month's end, its last day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<i8>,
    /// Local time of day, `HH:MM` (default 02:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// A five-field cron line instead of every/days/day/at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Units backed up (none: all, a full backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
    /// Locations backed up to, each in turn (none: the default location).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// Conditions for a run: `reachable`, `unmetered`, `wifi`, `ethernet`, `mains`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    #[serde(flatten)]
    pub retention: Policy,
    // Always said, also when true: a reader (the page) must not take a missing key for "off".
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// What must hold for a scheduled run to start; otherwise it is skipped and the reason kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// The location answers.
    Reachable,
    /// The network in use is not metered (NetworkManager's view).
    Unmetered,
    /// The network in use is Wi-Fi.
    Wifi,
    /// The network in use is Ethernet.
    Ethernet,
    /// The device runs on mains power.
    Mains,
}

impl ScheduleConfig {
    /// The cadence this schedule describes, or what is wrong with it.
    pub fn cadence(&self) -> Result<Cadence, String> {
        if let Some(c) = &self.cron {
            if self.every.is_some() || self.at.is_some() || !self.days.is_empty() || self.day.is_some() {
                return Err("give either cron or every/days/day/at, not both".into());
            }
            return Ok(Cadence::Cron(Cron::parse(c)?));
        }
        let at = parse_time_of_day(self.at.as_deref().unwrap_or("02:00"))?;
        match self.every.as_deref() {
            Some("day") => Ok(Cadence::Daily { at }),
            Some("week") => {
                Ok(Cadence::Weekly { days: self.days.iter().map(|d| parse_weekday(d)).collect::<Result<_, _>>()?, at })
            }
            Some("month") => match self.day.unwrap_or(1) {
                d @ 1..=31 => Ok(Cadence::Monthly { day: d, at }),
                d => Err(format!("day = {d} is not a day of the month (1-31; 31 means the last day)")),
            },
            Some(other) => Err(format!("every = {other:?}: use \"day\", \"week\" or \"month\", or a cron line")),
            None => Err("needs every = \"day\" | \"week\" | \"month\", or cron = \"…\"".into()),
        }
    }
}

/// How often a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    Daily {
        at: Time,
    },
    /// On these weekdays (all when empty).
    Weekly {
        days: Vec<Weekday>,
        at: Time,
    },
    /// On this day of the month; past a short month's end, on its last day.
    Monthly {
        day: i8,
        at: Time,
    },
    Cron(Cron),
}

impl Cadence {
    /// The first run strictly after `after`, in `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Timestamp {
        let local = after.to_zoned(tz.clone()).datetime();
        let mut date = local.date();
        // Two years of days cover every cadence (a cron line for Feb 29 included).
        for _ in 0..(366 * 8) {
            for t in self.times_on(date) {
                let at = resolve(date.to_datetime(t), tz);
                if at > after {
                    return at;
                }
            }
            date = date.tomorrow().unwrap_or(date);
        }
        // A cron line that never matches (e.g. Feb 30): nothing in eight years.
        Timestamp::MAX
    }

    /// The local times of day this cadence runs on `date`, in order.
    fn times_on(&self, date: Date) -> Vec<Time> {
        match self {
            Cadence::Daily { at } => vec![*at],
            Cadence::Weekly { days, at } => {
                if days.is_empty() || days.contains(&date.weekday()) {
                    vec![*at]
                } else {
                    vec![]
                }
            }
            Cadence::Monthly { day, at } => {
                let last = date.days_in_month();
                if date.day() == (*day).min(last) {
                    vec![*at]
                } else {
                    vec![]
                }
            }
            Cadence::Cron(c) => c.times_on(date),
        }
    }

    /// Whether a run is due now: the first run after the last one (or after the schedule was
    /// set up) has come. Runs missed while the device was off collapse into this one.
    pub fn due(&self, last: Timestamp, now: Timestamp, tz: &TimeZone) -> bool {
        self.next_after(last, tz) <= now
    }
}

/// A local date and time as an instant: in a gap (clocks jump forward), the instant the gap
/// ends at the same offset from it; in a fold (clocks go back), the first occurrence.
fn resolve(dt: DateTime, tz: &TimeZone) -> Timestamp {
    tz.to_ambiguous_zoned(dt).compatible().map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
}

/// A five-field cron line: minute, hour, day of month, month, day of week (0 or 7 = Sunday).
/// Fields take `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`. As in cron,
/// when both day fields are restricted, a day matching either runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<u8>,
    hours: Vec<u8>,
    days: Vec<u8>,
    months: Vec<u8>,
    weekdays: Vec<u8>,
    days_any: bool,
    weekdays_any: bool,
    text: String,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "cron {text:?} needs five fields (minute hour day-of-month month day-of-week), e.g. \"30 2 * * 1-5\""
            ));
        }
        let field = |i: usize, lo: u8, hi: u8, name: &str| {
            parse_field(fields[i], lo, hi).map_err(|e| format!("cron {text:?}: {name} {e}"))
        };
        let mut weekdays = field(4, 0, 7, "day of week")?;
        for d in weekdays.iter_mut() {
            if *d == 7 {
                *d = 0;
            }
        }
        weekdays.sort_unstable();
        weekdays.dedup();
        Ok(Cron {
            minutes: field(0, 0, 59, "minute")?,
            hours: field(1, 0, 23, "hour")?,
            days: field(2, 1, 31, "day of month")?,
            months: field(3, 1, 12, "month")?,
            weekdays,
            days_any: fields[2] == "*",
            weekdays_any: fields[4] == "*",
            text: text.to_string(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    fn times_on(&self, date: Date) -> Vec<Time> {
        if !self.months.contains(&(date.month() as u8)) {
            return vec![];
        }
        let dom = self.days.contains(&(date.day() as u8));
        let dow = self.weekdays.contains(&(date.weekday().to_sunday_zero_offset() as u8));
        let day_ok = match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        };
        if !day_ok {
            return vec![];
        }
        let mut out = Vec::new();
        for &h in &self.hours {
            for &m in &self.minutes {
                if let Ok(t) = Time::new(h as i8, m as i8, 0, 0) {
                    out.push(t);
                }
            }
        }
        out
    }
}

fn parse_field(text: &str, lo: u8, hi: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                (r, s.parse::<u8>().ok().filter(|&s| s > 0).ok_or_else(|| format!("has a bad step {s:?}"))?)
            }
            None => (part, 1),
        };
        let num = |s: &str| -> Result<u8, String> {
            s.parse::<u8>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| format!("{s:?} is not in {lo}-{hi}"))
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let n = num(range)?;
            (n, if part.contains('/') { hi } else { n })
        };
        if a > b {
            return Err(format!("has a backwards range {range:?}"));
        }
        out.extend((a..=b).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `"HH:MM"` as a time of day.
pub fn parse_time_of_day(text: &str) -> Result<Time, String> {
    let bad = || format!("time {text:?} is not HH:MM (24-hour), e.g. \"02:30\"");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// A weekday from its English name or three-letter abbreviation.
pub fn parse_weekday(text: &str) -> Result<Weekday, String> {
    let t = text.to_ascii_lowercase();
    let all = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    all.iter()
        .find(|(short, _)| t.len() >= 3 && t.starts_with(short) && short.starts_with(&t[..3]))
        .map(|(_, d)| *d)
        .ok_or_else(|| format!("{text:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// Local wall-clock time in `zone` as an instant (the first, in a fold).
    fn local(zone: &str, s: &str) -> Timestamp {
        resolve(s.parse::<DateTime>().unwrap(), &tz(zone))
    }

    fn shown(t: Timestamp, zone: &str) -> String {
        t.to_zoned(tz(zone)).strftime("%Y-%m-%d %H:%M %Z").to_string()
    }

    fn at(h: i8, m: i8) -> Time {
        Time::new(h, m, 0, 0).unwrap()
    }

    #[test]
    fn daily_weekly_and_monthly() {
        let z = "Europe/Helsinki";
        let daily = Cadence::Daily { at: at(2, 30) };
        let t = local(z, "2026-03-10T01:00");
        assert_eq!(shown(daily.next_after(t, &tz(z)), z), "2026-03-10 02:30 EET");
        let t = local(z, "2026-03-10T02:30");
        assert_eq!(shown(daily.next_after(t, &tz(z)), z), "2026-03-11 02:30 EET", "strictly after");

        // 2026-03-10 is a Tuesday.
        let weekly = Cadence::Weekly { days: vec![Weekday::Monday, Weekday::Friday], at: at(20, 0) };
        assert_eq!(shown(weekly.next_after(t, &tz(z)), z), "2026-03-13 20:00 EET");
        let t = local(z, "2026-03-13T20:00");
        assert_eq!(shown(weekly.next_after(t, &tz(z)), z), "2026-03-16 20:00 EET");

        let monthly = Cadence::Monthly { day: 15, at: at(3, 0) };
        assert_eq!(shown(monthly.next_after(t, &tz(z)), z), "2026-03-15 03:00 EET");
    }

    #[test]
    fn the_31st_runs_on_the_last_day_of_short_months() {
        let z = "America/New_York";
        let m = Cadence::Monthly { day: 31, at: at(4, 0) };
        let mut t = local(z, "2026-01-31T05:00");
        let mut seen = Vec::new();
        for _ in 0..4 {
            t = m.next_after(t, &tz(z));
            seen.push(shown(t, z));
        }
        assert_eq!(
            seen,
            ["2026-02-28 04:00 EST", "2026-03-31 04:00 EDT", "2026-04-30 04:00 EDT", "2026-05-31 04:00 EDT"]
        );
        let leap = m.next_after(local(z, "2028-02-01T00:00"), &tz(z));
        assert_eq!(shown(leap, z), "2028-02-29 04:00 EST");
    }

    #[test]
    fn daylight_saving_gaps_run_after_the_jump_and_folds_run_once() {
        // Helsinki: clocks jump 03:00 -> 04:00 on 2026-03-29 and go 04:00 -> 03:00 on 2026-10-25.
        let z = "Europe/Helsinki";
        let d = Cadence::Daily { at: at(3, 30) };
        let spring = d.next_after(local(z, "2026-03-28T12:00"), &tz(z));
        assert_eq!(shown(spring, z), "2026-03-29 04:30 EEST", "03:30 does not exist that night");
        let autumn = d.next_after(local(z, "2026-10-24T12:00"), &tz(z));
        assert_eq!(shown(autumn, z), "2026-10-25 03:30 EEST", "the first 03:30");
        let after = d.next_after(autumn, &tz(z));
        assert_eq!(shown(after, z), "2026-10-26 03:30 EET", "not again an hour later");

        // New York: 02:00 -> 03:00 on 2026-03-08, 02:00 -> 01:00 on 2026-11-01.
        let z = "America/New_York";
        let d = Cadence::Daily { at: at(2, 15) };
        let spring = d.next_after(local(z, "2026-03-07T12:00"), &tz(z));
        assert_eq!(shown(spring, z), "2026-03-08 03:15 EDT");
        let d = Cadence::Daily { at: at(1, 30) };
        let autumn = d.next_after(local(z, "2026-10-31T12:00"), &tz(z));
        assert_eq!(shown(autumn, z), "2026-11-01 01:30 EDT");
        assert_eq!(shown(d.next_after(autumn, &tz(z)), z), "2026-11-02 01:30 EST");
        // Elapsed time between the two runs around the fold is 25 hours, not 24 or 26.
        assert_eq!(d.next_after(autumn, &tz(z)).as_second() - autumn.as_second(), 25 * 3600);
    }

    #[test]
    fn runs_missed_while_off_run_once() {
        let z = "Europe/Helsinki";
        let d = Cadence::Daily { at: at(2, 0) };
        let last = local(z, "2026-05-01T02:00");
        // Off for five days: due once on waking...
        let now = local(z, "2026-05-06T09:00");
        assert!(d.due(last, now, &tz(z)));
        // ...and once it ran at 09:00, not again until the next 02:00.
        assert!(!d.due(now, local(z, "2026-05-06T23:59"), &tz(z)));
        assert!(d.due(now, local(z, "2026-05-07T02:00"), &tz(z)));
    }

    #[test]
    fn cron_lines() {
        let z = "Europe/Helsinki";
        let c = Cadence::Cron(Cron::parse("*/15 9-17 * * 1-5").unwrap());
        let t = local(z, "2026-03-13T17:50"); // a Friday
        assert_eq!(shown(c.next_after(t, &tz(z)), z), "2026-03-16 09:00 EET");
        let c = Cadence::Cron(Cron::parse("0 4 1,15 * 0").unwrap()); // the 1st, the 15th, or Sundays
        let t = local(z, "2026-03-02T00:00");
        assert_eq!(shown(c.next_after(t, &tz(z)), z), "2026-03-08 04:00 EET");
        for bad in ["* * * *", "60 * * * *", "5-1 * * * *", "*/0 * * * *"] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_time_of_day("24:00").is_err() && parse_time_of_day("7:05").is_ok());
        assert_eq!(parse_weekday("Friday").unwrap(), Weekday::Friday);
        assert!(parse_weekday("fr").is_err());
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn schedules_parse_from_the_configuration_and_typos_are_refused() {
        let text = r#"
[unit.notes]
paths = ["~/notes"]
[schedule.nightly]
every = "day"
at = "03:15"
units = ["notes"]
when = ["unmetered", "mains"]
keep_daily = 7
keep_monthly = 6
[schedule.weekly]
every = "week"
days = ["sat", "sun"]
"#;
        let c = crate::config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let n = &c.schedule["nightly"];
        assert_eq!(n.cadence().unwrap(), Cadence::Daily { at: Time::new(3, 15, 0, 0).unwrap() });
        assert_eq!(n.retention.keep_daily, Some(7));
        assert_eq!(n.when, [Condition::Unmetered, Condition::Mains]);
        assert!(n.enabled);
        for bad in [
            "[schedule.x]\nevery = \"fortnight\"\n",
            "[schedule.x]\nevery = \"day\"\nat = \"25:00\"\n",
            "[schedule.x]\nevery = \"day\"\nkeep_dialy = 3\n",
            "[schedule.x]\ncron = \"* * *\"\n",
            "[schedule.x]\nevery = \"day\"\nlocations = [\"nowhere\"]\n",
            "[schedule.x]\nevery = \"day\"\nwhen = [\"sunny\"]\n",
        ] {
            assert!(crate::config::parse(bad, std::path::Path::new("t.toml")).is_err(), "{bad}");
        }
    }
}
