//! Numbers and tables for people.

/// A count with its noun: "1 file", "2 files".
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The widest a table's cell gets: a longer one is cut, ending in `…`.
const MAX_CELL: usize = 60;

/// A cell as a table shows it: on one line, at most MAX_CELL characters.
fn cell(c: &str) -> String {
    let one_line: String = c.chars().map(|ch| if ch.is_control() { ' ' } else { ch }).collect();
    if one_line.chars().count() <= MAX_CELL {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// A plain table: columns padded to their widest cell (cells of any length come cut to
/// MAX_CELL, so no width is out of range).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|s| s.to_string()).collect());
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

pub fn local_time(ts: &jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cell_of_any_length_is_cut_and_never_panics() {
        let long = "x".repeat(70_000);
        let t = super::table(&["NAME", "SIZE"], &[vec![long, "1 B".into()], vec!["a\nb".into(), "2 B".into()]]);
        assert!(t.lines().all(|l| l.chars().count() <= 2 * super::MAX_CELL + 2), "{t}");
        assert!(t.contains('…') && t.contains("a b"));
    }
}
