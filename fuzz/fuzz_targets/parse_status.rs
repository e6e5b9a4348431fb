#![no_main]
//! `status` parser and key lookup: never panic.
use libfuzzer_sys::fuzz_target;
use taskloom::inspect::parse;

fuzz_target!(|data: &[u8]| {
    let s = parse::parse_status(data);
    let _ = parse::capability_names(s.cap_eff);
    let _ = parse::status_field(data, "Name");
    let _ = parse::fdinfo_flags(data);
});
