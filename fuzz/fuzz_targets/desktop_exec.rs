#![no_main]
//! Desktop entries and their `Exec` keys: parsing never panics, and an
//! `Exec` built by quoting arguments expands back to exactly those arguments.
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use taskloom::shell::desktop::{
    DesktopEntry, ExecContext, ExecTarget, expand_exec, quote_exec_arg,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = ExecContext {
        name: "n",
        icon: Some("i"),
        entry_path: Path::new("/e.desktop"),
    };
    let target = ExecTarget {
        path: Some("/f".into()),
        url: "file:///f".into(),
    };
    if let Ok(e) = DesktopEntry::parse(text) {
        if let Some(exec) = e.exec {
            let _ = expand_exec(&exec, Some(&target), ctx);
        }
    }
    let _ = expand_exec(text, None, ctx);
    // Round trip: split on NUL into arguments, quote each, expand.
    let args: Vec<&str> = text.split('\0').collect();
    if args[0].is_empty() {
        return;
    }
    let quoted: Vec<String> = args.iter().map(|a| quote_exec_arg(a)).collect();
    let out = expand_exec(&quoted.join(" "), None, ctx).expect("quoted arguments always parse");
    let out: Vec<String> = out.into_iter().map(|o| o.into_string().unwrap()).collect();
    assert_eq!(out, args);
});
