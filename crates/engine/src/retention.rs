//! Which backups a schedule's retention keeps. Pure: the caller lists the location's backups
//! and removes what this returns; nothing here touches a repository.
//!
//! The rules, each keeping backups independently (a backup is kept when any rule keeps it):
//! - `keep_last = n`: the schedule's n newest backups;
//! - `keep_within = d`: those made in the last d days;
//! - `keep_daily`/`keep_weekly`/`keep_monthly = n`: for each of the n newest local days
//!   (ISO weeks, months) holding one of the schedule's backups, the newest backup of it.
//!
//! Only successful backups (completed, or completed with warnings) count for the rules; a
//! failed one is never what a rule keeps. Whatever the rules say, a pinned backup is never
//! removed, the location's newest successful backup is never removed, and only backups the
//! schedule made are ever candidates. A policy with no rule keeps everything.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self == &Policy::default()
    }
}

/// One backup of the location, as retention sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub slug: String,
    pub date: Timestamp,
    pub pinned: bool,
    pub successful: bool,
    /// The schedule that made it, if any.
    pub schedule: Option<String>,
}

/// The slugs to remove: the schedule's backups that no rule keeps and nothing protects.
#[cfg(test)]
pub fn to_remove(policy: &Policy, schedule: &str, backups: &[Candidate], now: Timestamp, tz: &TimeZone) -> Vec<String> {
    to_remove_among(policy, backups, &|b| b.schedule.as_deref() == Some(schedule), now, tz)
}

/// The slugs to remove among the backups `chosen` picks (a schedule's, or those with some
/// tags for `backups forget`): the rules count only those, and the same protections hold.
pub fn to_remove_among(
    policy: &Policy,
    backups: &[Candidate],
    chosen: &dyn Fn(&Candidate) -> bool,
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<String> {
    if policy.is_empty() {
        return Vec::new();
    }
    let newest_successful =
        backups.iter().filter(|b| b.successful).max_by(|a, b| a.date.cmp(&b.date).then(a.slug.cmp(&b.slug)));
    let mut mine: Vec<&Candidate> = backups.iter().filter(|b| chosen(b)).collect();
    // Newest first; equal dates by slug, so the result does not depend on the input order.
    mine.sort_by(|a, b| b.date.cmp(&a.date).then(b.slug.cmp(&a.slug)));
    let counted: Vec<&Candidate> = mine.iter().copied().filter(|b| b.successful).collect();
    let mut keep = std::collections::HashSet::new();
    if let Some(n) = policy.keep_last {
        keep.extend(counted.iter().take(n as usize).map(|b| b.slug.as_str()));
    }
    if let Some(days) = policy.keep_within {
        let since = now.to_zoned(TimeZone::UTC).checked_sub((days as i64).days()).map(|z| z.timestamp());
        if let Ok(since) = since {
            keep.extend(counted.iter().filter(|b| b.date > since).map(|b| b.slug.as_str()));
        }
    }
    let buckets = |n: Option<u32>, key: &dyn Fn(Timestamp) -> (i32, i32)| -> Vec<&str> {
        let Some(n) = n else { return Vec::new() };
        let mut seen: Vec<(i32, i32)> = Vec::new();
        let mut out = Vec::new();
        for b in &counted {
            let k = key(b.date);
            if seen.contains(&k) {
                continue;
            }
            if seen.len() == n as usize {
                break;
            }
            seen.push(k);
            out.push(b.slug.as_str());
        }
        out
    };
    let day = |t: Timestamp| {
        let d = t.to_zoned(tz.clone()).date();
        (d.year() as i32, d.day_of_year() as i32)
    };
    let week = |t: Timestamp| {
        let w = t.to_zoned(tz.clone()).date().iso_week_date();
        (w.year() as i32, w.week() as i32)
    };
    let month = |t: Timestamp| {
        let d = t.to_zoned(tz.clone()).date();
        (d.year() as i32, d.month() as i32)
    };
    keep.extend(buckets(policy.keep_daily, &day));
    keep.extend(buckets(policy.keep_weekly, &week));
    keep.extend(buckets(policy.keep_monthly, &month));
    mine.iter()
        .filter(|b| !keep.contains(b.slug.as_str()) && !b.pinned)
        .filter(|b| newest_successful.is_none_or(|n| n.slug != b.slug))
        .map(|b| b.slug.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    /// The same policy, said another way: a backup by itself, against the others.
    fn removed_by_definition(
        p: &Policy,
        schedule: &str,
        all: &[Candidate],
        b: &Candidate,
        now: Timestamp,
        tz: &TimeZone,
    ) -> bool {
        if b.schedule.as_deref() != Some(schedule) || b.pinned || p.is_empty() {
            return false;
        }
        let order = |x: &Candidate| (x.date, x.slug.clone());
        if b.successful && all.iter().filter(|x| x.successful).all(|x| order(x) <= order(b)) {
            return false;
        }
        if !b.successful {
            return true;
        }
        let ours: Vec<&Candidate> =
            all.iter().filter(|x| x.schedule.as_deref() == Some(schedule) && x.successful).collect();
        let newer: Vec<&&Candidate> = ours.iter().filter(|x| order(x) > order(b)).collect();
        let by_last = p.keep_last.is_some_and(|n| (newer.len() as u32) < n);
        let by_within = p.keep_within.is_some_and(|d| b.date.as_second() > now.as_second() - d as i64 * 86_400);
        let bucket = |n: Option<u32>, key: &dyn Fn(Timestamp) -> String| {
            let Some(n) = n else { return false };
            let mine = key(b.date);
            let newest_of_its_bucket = newer.iter().all(|x| key(x.date) != mine);
            let mut keys: Vec<String> = newer.iter().map(|x| key(x.date)).collect();
            keys.sort();
            keys.dedup();
            newest_of_its_bucket && (keys.len() as u32) < n
        };
        let z = |t: Timestamp| t.to_zoned(tz.clone());
        let by_day = bucket(p.keep_daily, &|t| z(t).strftime("%Y-%m-%d").to_string());
        let by_week = bucket(p.keep_weekly, &|t| z(t).strftime("%G-%V").to_string());
        let by_month = bucket(p.keep_monthly, &|t| z(t).strftime("%Y-%m").to_string());
        !(by_last || by_within || by_day || by_week || by_month)
    }

    fn rule() -> impl Strategy<Value = Option<u32>> {
        prop_oneof![Just(None), (0u32..6).prop_map(Some)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn what_is_removed_is_exactly_what_the_policy_says(
            backups in prop::collection::vec((0i64..400 * 1440, any::<bool>(), 0u8..10, 0u8..3), 0..40),
            policy in (rule(), rule(), rule(), rule(), rule()).prop_map(|(a, b, c, d, e)| Policy {
                keep_last: a, keep_within: b, keep_daily: c, keep_weekly: d, keep_monthly: e,
            }),
            zone in prop_oneof![Just("UTC"), Just("Europe/Helsinki"), Just("America/New_York")],
        ) {
            let tz = TimeZone::get(zone).unwrap();
            let all: Vec<Candidate> = backups.iter().enumerate().map(|(i, (minute, pinned, ok, sched))| Candidate {
                slug: format!("{i:08x}"),
                // Minutes apart, and sometimes the very same second.
                date: Timestamp::from_second(BASE + minute * 60).unwrap(),
                pinned: *pinned,
                successful: *ok > 1,
                schedule: match sched { 0 => Some("nightly".into()), 1 => Some("weekly".into()), _ => None },
            }).collect();
            let now = Timestamp::from_second(BASE + 400 * 86_400).unwrap();
            let mut got = to_remove(&policy, "nightly", &all, now, &tz);
            got.sort();
            let mut want: Vec<String> = all.iter()
                .filter(|b| removed_by_definition(&policy, "nightly", &all, b, now, &tz))
                .map(|b| b.slug.clone())
                .collect();
            want.sort();
            prop_assert_eq!(&got, &want);
            for slug in &got {
                let b = all.iter().find(|b| &b.slug == slug).unwrap();
                prop_assert!(!b.pinned, "a pinned backup was removed");
                prop_assert_eq!(b.schedule.as_deref(), Some("nightly"), "another schedule's backup was removed");
            }
            if let Some(newest) = all.iter().filter(|b| b.successful).max_by_key(|b| (b.date, b.slug.clone())) {
                prop_assert!(!got.contains(&newest.slug), "the newest successful backup was removed");
            }
        }
    }

    #[test]
    fn a_week_of_nightly_backups_kept_three_days() {
        let tz = TimeZone::get("Europe/Helsinki").unwrap();
        let all: Vec<Candidate> = (0..7)
            .map(|d| Candidate {
                slug: format!("d{d}"),
                date: Timestamp::from_second(BASE + d * 86_400 + 3600).unwrap(),
                pinned: d == 0,
                successful: true,
                schedule: Some("nightly".into()),
            })
            .collect();
        let now = Timestamp::from_second(BASE + 7 * 86_400).unwrap();
        let policy = Policy { keep_daily: Some(3), ..Default::default() };
        let mut gone = to_remove(&policy, "nightly", &all, now, &tz);
        gone.sort();
        assert_eq!(gone, ["d1", "d2", "d3"], "d0 is pinned; d4-d6 are the three newest days");
    }
}
