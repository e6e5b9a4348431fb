//! The reference document's "Creating a Process", with taskloom.
//!
//! Windows starts `notepad.exe` from a command line and closes its handles
//! after five seconds without waiting; here a `sleep` plays notepad and the
//! pause is one second. Run: `cargo run -p taskloom --example create_process`.

use std::time::Duration;

use taskloom::process::ProcessBuilder;

fn main() {
    // One command line string, split as the system splits one, searched on PATH.
    let line = if cfg!(windows) {
        r#"cmd /c "ping -n 3 127.0.0.1 >NUL""#
    } else {
        "sleep 2"
    };
    let child = match ProcessBuilder::from_command_line(line).and_then(|b| b.spawn()) {
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
