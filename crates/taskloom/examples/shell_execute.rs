//! `ShellExecuteEx` with `SEE_MASK_NOCLOSEPROCESS`, with taskloom: open a
//! target with whatever the desktop associates with it, then wait for the
//! process that was started.
//!
//! Run: `cargo run -p taskloom --example shell_execute -- FILE_OR_URL`
//! (default: this example's own source file). Without a desktop (a bare
//! server), the error says which type has no application.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use taskloom::shell::ShellExecute;

fn main() {
    let target = std::env::args_os().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shell_execute.rs").into()
    });
    let se = ShellExecute::new(&target);
    // What would run, and why (the association that was used).
    match se.resolve() {
        Ok(launch) => println!(
            "{} is {} -> {}",
            target.to_string_lossy(),
            launch.mime.as_deref().unwrap_or("a program"),
            launch.application.as_deref().unwrap_or("run directly"),
        ),
        Err(err) => {
            eprintln!("ShellExecuteEx failed: {err}");
            std::process::exit(1);
        }
    }
    let mut launched = match se.spawn() {
        Ok(l) => l,
        Err(err) => {
            eprintln!("ShellExecuteEx failed: {err}");
            std::process::exit(1);
        }
    };
    // hProcess: a real handle, unlike xdg-open's detached child.
    println!("started pid {}", launched.process.pid());
    match launched.process.wait() {
        Ok(status) => println!("it ended: {status}"),
        Err(err) => eprintln!("wait failed: {err}"),
    }
}
