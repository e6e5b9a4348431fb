//! The reference document's "Creating a Process", with taskloom.
//!
//! Windows starts `notepad.exe` from a command line and closes its handles
//! after five seconds without waiting; here a `sleep` plays notepad and the
//! pause is one second. Run: `cargo run -p taskloom --example create_process`.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::time::Duration;

use taskloom::process::ProcessBuilder;

fn main() {
    // One command line string, split as a shell would, searched on PATH.
    let child = match ProcessBuilder::from_command_line("sleep 2").and_then(|b| b.spawn()) {
        Ok(child) => child,
        Err(err) => {
            // The error says what failed and why, not a bare number.
            eprintln!("CreateProcess failed: {err}");
            std::process::exit(1);
        }
    };
    println!("Process Created! (pid {})", child.pid());
    std::thread::sleep(Duration::from_secs(1));
    // CloseHandle: dropping the handle neither kills nor waits for the process.
    drop(child);
}
