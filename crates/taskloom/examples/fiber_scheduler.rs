//! A small round-robin scheduler built only on taskloom's public fiber API.
//!
//! Each task is a fiber that does a step of work and yields; `yield_now`
//! switches to the scheduler fiber, which picks the next runnable task.
//! Run: `cargo run -p taskloom --example fiber_scheduler`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use taskloom::fiber::{self, Fiber, FiberRef, FlsKey};

/// The scheduler: the thread's own fiber plus a run queue of tasks.
struct Scheduler {
    home: FiberRef,
    queue: RefCell<VecDeque<Fiber>>,
}

impl Scheduler {
    fn spawn(self: &Rc<Self>, name: &'static str, steps: u32, task_name: Rc<FlsKey<&'static str>>) {
        let sched = Rc::clone(self);
        let fiber = Fiber::new(move || {
            task_name.set(name); // fiber local: each task sees its own name
            for step in 1..=steps {
                println!("{:>6}: step {step}/{steps}", task_name.get().unwrap());
                sched.yield_now();
            }
            println!("{name:>6}: done");
        })
        .expect("create task fiber");
        self.queue.borrow_mut().push_back(fiber);
    }

    /// Gives up the CPU: back to the scheduler fiber.
    fn yield_now(&self) {
        fiber::switch_to_fiber(self.home);
    }

    /// Runs tasks round-robin until all are finished.
    fn run(&self) {
        loop {
            let Some(task) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            fiber::switch_to_fiber(task.to_ref());
            if !task.is_finished() {
                self.queue.borrow_mut().push_back(task);
            }
            // A finished task's fiber is deleted here, when `task` drops.
        }
    }
}

fn main() {
    let home = fiber::convert_thread_to_fiber().expect("convert thread");
    let sched = Rc::new(Scheduler {
        home,
        queue: RefCell::default(),
    });
    let task_name = Rc::new(FlsKey::new().expect("FLS slot"));
    sched.spawn("alpha", 3, task_name.clone());
    sched.spawn("beta", 2, task_name.clone());
    sched.spawn("gamma", 4, task_name);
    sched.run();
    fiber::convert_fiber_to_thread().expect("convert back");
}
