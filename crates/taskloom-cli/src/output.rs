//! Human formatting shared by the subcommands.
// The table and width helpers serve commands Windows does not have yet.
#![cfg_attr(windows, allow(dead_code))]

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

/// The width of the terminal standard output is, when it is one.
pub fn stdout_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    ratatui::crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
}

/// Splits `text` at spaces into lines of at most `width` terminal columns
/// (a word longer than that stays whole on its own line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let cols = |s: &str| unicode_width::UnicodeWidthStr::width(s);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && cols(&line) + 1 + cols(word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_at_spaces_to_the_width() {
        assert_eq!(
            wrap("a cgroup namespace rooted at its job", 12),
            ["a cgroup", "namespace", "rooted at", "its job"]
        );
        assert_eq!(
            wrap("unbreakable-word-longer x", 5),
            ["unbreakable-word-longer", "x"]
        );
        assert_eq!(wrap("", 10), [""]);
        // Columns, not bytes: wide characters take two.
        assert_eq!(wrap("漢字 漢字", 5), ["漢字", "漢字"]);
    }

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
    use std::borrow::Cow;
    use std::fmt::Write;
    let clean: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| {
                    if c.chars().any(char::is_control) {
                        Cow::Owned(escape_control(c))
                    } else {
                        Cow::Borrowed(c.as_str())
                    }
                })
                .collect()
        })
        .collect();
    // Terminal columns: a wide character (CJK, most emoji) takes two, a
    // combining mark none.
    let width = |c: &str| {
        if c.is_ascii() {
            c.len()
        } else {
            unicode_width::UnicodeWidthStr::width(c)
        }
    };
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| width(h)).collect();
    for row in &clean {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let mut out = String::with_capacity(
        (clean.len() + 1) * (widths.iter().sum::<usize>() + 2 * widths.len() + 1),
    );
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let start = out.len();
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(width(cell));
            match header[i].1 {
                Align::Right => {
                    let _ = write!(out, "{:pad$}{cell}", "");
                }
                Align::Left if i == last => out.push_str(cell),
                Align::Left => {
                    let _ = write!(out, "{cell}{:pad$}", "");
                }
            }
        }
        let trimmed = out[start..].trim_end().len();
        out.truncate(start + trimmed);
        out.push('\n');
    };
    line(&mut header.iter().map(|(h, _)| *h), &mut out);
    for row in &clean {
        line(&mut row.iter().map(|c| c.as_ref()), &mut out);
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

    #[test]
    fn wide_characters_take_two_columns() {
        // 进程 is four columns wide, not two: the next column stays aligned.
        let t = table(
            &[("NAME", Align::Left), ("PID", Align::Right)],
            &[
                vec!["进程".into(), "1".into()],
                vec!["ab".into(), "22".into()],
            ],
        );
        assert_eq!(t, "NAME  PID\n进程    1\nab     22\n");
    }
}
