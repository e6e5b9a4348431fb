//! The reference document's "Creating a Thread", with taskloom.
//!
//! Windows creates a thread running `EthicalFunction`, waits for it with
//! `WaitForSingleObject(INFINITE)` and prints. Run:
//! `cargo run -p taskloom --example create_thread`.

use taskloom::thread::ThreadBuilder;

/// The thread's function; its return value is the thread's exit code.
fn ethical_function() -> u32 {
    println!("Thread created");
    println!("For educational purposes only*");
    0
}

fn main() {
    let thread = ThreadBuilder::new()
        .name("ethical")
        .spawn(ethical_function)
        .expect("CreateThread");
    // WaitForSingleObject(hThread, INFINITE), then GetExitCodeThread.
    let code = thread.join().expect("join");
    println!("Thread returned (exit code {code})");
}
