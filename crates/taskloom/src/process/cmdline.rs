//! Splitting one command line string into words as a POSIX shell does.
//!
//! `CreateProcess` takes a single command line; taskloom accepts one too and
//! splits it by the POSIX shell's quoting rules (XCU 2.2), without running a
//! shell and without any expansion:
//!
//! - blanks (space, tab, newline) separate words;
//! - `'...'` keeps every byte literally;
//! - `"..."` keeps bytes literally except that `\` escapes `$`, `` ` ``, `"`,
//!   `\` and newline (a backslash before anything else stays);
//! - outside quotes `\` keeps the next byte literally, and `\` + newline is removed;
//! - `''` and `""` make an empty word.
//!
//! `$VAR`, globs, `~`, `;`, `|` and redirections get no special meaning: they
//! are ordinary bytes of a word. An unterminated quote or a trailing `\` is an
//! error.

use crate::error::{Error, Result};

/// Splits `line` into words (see the module docs for the rules).
pub fn split(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(Error::CommandLine("unterminated single quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err(Error::CommandLine("unterminated double quote".into()));
                            }
                        },
                        Some(c) => word.push(c),
                        None => return Err(Error::CommandLine("unterminated double quote".into())),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(Error::CommandLine("trailing backslash".into())),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    fn ok(line: &str) -> Vec<String> {
        split(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    #[test]
    fn splits_like_sh() {
        assert_eq!(ok("a b\tc\n d"), ["a", "b", "c", "d"]);
        assert_eq!(ok("  lead trail  "), ["lead", "trail"]);
        assert_eq!(ok("'a b' \"c d\""), ["a b", "c d"]);
        assert_eq!(ok("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(ok(r#"'it''s' "say \"hi\"""#), ["its", "say \"hi\""]);
        assert_eq!(ok(r"a\ b c\\d"), ["a b", r"c\d"]);
        assert_eq!(ok(r#""\a\$\\""#), [r"\a$\"]);
        assert_eq!(ok("'' \"\""), ["", ""]);
        assert_eq!(ok("a\\\nb"), ["ab"]);
        assert_eq!(ok("$HOME *.rs ; |"), ["$HOME", "*.rs", ";", "|"]);
        assert_eq!(ok("'\\'"), ["\\"]);
        assert!(ok("").is_empty());
    }

    #[test]
    fn rejects_unterminated() {
        for line in ["'a", "\"a", "a\\", "\"a\\"] {
            assert!(split(line).is_err(), "{line:?}");
        }
    }
}
