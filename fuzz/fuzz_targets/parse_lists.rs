#![no_main]
//! NUL-separated lists (`cmdline`, `environ`): joining the items back gives the input.
use libfuzzer_sys::fuzz_target;
use taskloom::inspect::parse;

fuzz_target!(|data: &[u8]| {
    let items = parse::split_nul(data);
    let mut joined = items.join(&0u8);
    if data.last() == Some(&0) {
        joined.push(0);
    }
    assert_eq!(joined, data);
});
