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
