//! The reference document's "Creating a Fiber", with taskloom.
//!
//! Windows converts the thread to a fiber, creates a fiber whose function
//! prints and switches back, switches to it, prints, and deletes it.
//! Run: `cargo run -p taskloom --example create_fiber`.

use taskloom::fiber::{self, Fiber};

fn main() {
    // Converting thread to fiber.
    let main_fiber = fiber::convert_thread_to_fiber().expect("convert");
    // Creating a fiber; its data is the fiber to return to (the Windows example passes the same).
    let worker = Fiber::builder()
        .data(main_fiber)
        .spawn(|| {
            println!("Fiber created");
            println!("For educational purposes only*");
            // Switching back to the main fiber: a fiber does not return to it by itself.
            let back = fiber::fiber_data(|d: Option<&fiber::FiberRef>| *d.expect("fiber data"));
            fiber::switch_to_fiber(back);
        })
        .expect("create fiber");
    // Switching to the fiber (executing its function).
    fiber::switch_to_fiber(worker.to_ref());
    println!("Fiber returned");
    // Deleting the fiber.
    drop(worker);
    fiber::convert_fiber_to_thread().expect("convert back");
}
