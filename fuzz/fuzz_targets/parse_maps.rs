#![no_main]
//! `maps` parser and module grouping: never panic; every module spans its mappings.
use libfuzzer_sys::fuzz_target;
use taskloom::inspect::{modules_from_maps, parse};

fuzz_target!(|data: &[u8]| {
    let maps = parse::parse_maps(data);
    for m in modules_from_maps(&maps) {
        assert!(m.base.checked_add(m.size).is_some());
    }
});
