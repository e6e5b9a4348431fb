//! Human formatting shared by the subcommands.

use std::time::Duration;

/// `1.234s`, `12.3ms`, `450µs`, `2m03s`: as `time` and `hyperfine` print them.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else if secs >= 1.0 {
        format!("{secs:.3}s")
    } else if secs >= 1e-3 {
        format!("{:.1}ms", secs * 1e3)
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// The error and its causes, skipping a cause the message already spells out
/// (library errors include their source in their own text).
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_time() {
        assert_eq!(duration(Duration::from_millis(1234)), "1.234s");
        assert_eq!(duration(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(duration(Duration::from_micros(450)), "450µs");
        assert_eq!(duration(Duration::from_secs(123)), "2m03s");
    }
}

/// A column's alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Prints rows as an aligned table under a header, as `ps` and `docker ps` do;
/// the last column is never padded. Control characters in cells are escaped
/// so that a name with a newline or tab cannot break the table.
pub fn table(header: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let clean: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_control(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &clean {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                text.push_str("  ");
            }
            match header[i].1 {
                Align::Right => {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                }
                Align::Left if i == last => text.push_str(cell),
                Align::Left => {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|(h, _)| *h).collect());
    for row in &clean {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Escapes control characters (`\n`, `\t`, ...) so a cell stays on one line.
pub fn escape_control(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn tables_align_and_escape() {
        let t = table(
            &[
                ("NAME", Align::Left),
                ("PROCS", Align::Right),
                ("LIMITS", Align::Left),
            ],
            &[
                vec!["a".into(), "3".into(), "procs 10".into()],
                vec!["long\tname".into(), "12".into(), "-".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME        PROCS  LIMITS\na               3  procs 10\nlong\\tname     12  -\n"
        );
    }
}
