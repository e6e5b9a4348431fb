#![no_main]
//! `stat` parser: never panics; a parsed name is exactly the bytes between the first '(' and the last ')'.
use libfuzzer_sys::fuzz_target;
use taskloom::inspect::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse::parse_stat(data) {
        let open = data.iter().position(|&c| c == b'(').unwrap();
        let close = data.iter().rposition(|&c| c == b')').unwrap();
        assert_eq!(&s.comm[..], &data[open + 1..close]);
    }
});
