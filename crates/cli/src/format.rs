//! Numbers and tables for people.

/// A count with its noun: "1 file", "2 files".
pub fn count(n: impl TryInto<u64>, one: &str, many: &str) -> String {
    let n = n.try_into().unwrap_or(u64::MAX);
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A size in IEC units, as every front end writes it.
pub fn bytes(n: u64) -> String {
    lifeboat_engine::size::iec(n)
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
    let one_line = one_line(c);
    if one_line.chars().count() <= MAX_CELL {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// Text on one line: control characters (line breaks, tabs) become spaces.
fn one_line(c: &str) -> String {
    c.chars().map(|ch| if ch.is_control() { ' ' } else { ch }).collect()
}

/// A plain table: columns padded to their widest cell (cells of any length come cut to
/// MAX_CELL, so no width is out of range).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_of(header, rows, false)
}

/// As [`table`], with the last column (sentences: what happened) whole, on one line.
pub fn table_with_text(header: &[&str], rows: &[Vec<String>]) -> String {
    table_of(header, rows, true)
}

fn table_of(header: &[&str], rows: &[Vec<String>], last_whole: bool) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| if last_whole && i + 1 == r.len() { one_line(c) } else { cell(c) })
                .collect()
        })
        .collect();
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

/// An RFC 3339 time (as the JSON has it) as [`local_time`] prints it; text that is not one
/// is kept as it is.
pub fn local_time_of(rfc3339: &str) -> String {
    rfc3339.parse::<jiff::Timestamp>().map(|t| local_time(&t)).unwrap_or_else(|_| rfc3339.to_string())
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
