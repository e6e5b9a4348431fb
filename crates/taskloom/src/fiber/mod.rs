//! Fibers: the Windows fiber API (`ConvertThreadToFiber`, `CreateFiberEx`,
//! `SwitchToFiber`, `DeleteFiber`, fiber local storage) as a safe Rust API.
//!
//! Fibers are cooperative: a fiber runs until it calls [`switch_to_fiber`].
//! Switching is symmetric, as on Windows: any fiber may switch to any other
//! fiber of its thread, not only back to the one that resumed it.
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use taskloom::fiber::{self, Fiber};
//!
//! let main = fiber::convert_thread_to_fiber().unwrap();
//! let log = Rc::new(Cell::new(0));
//! let seen = log.clone();
//! let worker = Fiber::new(move || {
//!     seen.set(seen.get() + 1);
//!     fiber::switch_to_fiber(main); // back to the thread's fiber
//! })
//! .unwrap();
//! fiber::switch_to_fiber(worker.to_ref());
//! assert_eq!(log.get(), 1);
//! drop(worker); // DeleteFiber
//! fiber::convert_fiber_to_thread().unwrap();
//! ```
//!
//! # Rules, and how they differ from Windows
//! - **Threads.** [`Fiber`] and [`FiberRef`] are `!Send`: a fiber runs only
//!   on the thread that created it. Windows lets a fiber move between
//!   threads, but compiled Rust caches thread-local addresses across calls,
//!   so a fiber resumed on another thread would read the first thread's
//!   thread-locals; the type system rules that out:
//!
//!   ```compile_fail
//!   let f = taskloom::fiber::Fiber::new(|| {}).unwrap();
//!   std::thread::spawn(move || drop(f)); // error: `Fiber` cannot be sent between threads
//!   ```
//! - **Switching** to the running fiber, to a finished fiber or to a deleted
//!   one panics with a message saying which (Windows: undefined behaviour).
//! - **Returning** from a fiber's function finishes the fiber and switches
//!   to the fiber that started it (the one that first switched to it), or to
//!   the thread's own fiber if that one has finished or was deleted. The
//!   successor is fixed when the fiber starts, as `uc_link` is for
//!   `makecontext`: recording the latest resumer instead would cost two
//!   stores on every switch, a third of a ping-pong round trip. Windows
//!   exits the thread instead, which in Rust would skip the destructors on
//!   every other fiber's stack.
//! - **Panics** never unwind across a switch: a panic in a fiber is caught
//!   when it reaches the fiber's function, the fiber finishes, and the panic
//!   is raised again in the fiber that gets control, out of its
//!   `switch_to_fiber` call.
//! - **Deleting** (dropping the [`Fiber`]) a suspended fiber does not run
//!   the destructors of the frames on its stack (as `DeleteFiber` does not):
//!   what they own leaks. Its FLS destructors run. Unlike `DeleteFiber`,
//!   its stack is never freed or reused: it stays mapped for good, so a
//!   scoped thread borrowing a local of the fiber, or a value pinned on its
//!   stack, never sees that memory freed or overwritten (safe code cannot
//!   cause a use-after-free this way). A fiber that finished or never
//!   started gives its stack back to the pool. Dropping the handle of the
//!   *running* fiber defers the deletion until it switches away or finishes.
//! - **Stacks** are pooled per thread. On Linux they are mapped with a
//!   guard page, and an overflow prints `fiber stack overflow in fiber #N`
//!   and aborts. On Windows each fiber is an OS fiber (`CreateFiberEx`,
//!   `SwitchToFiber`), whose stack the system makes, and an overflow is the
//!   system's stack overflow (Rust reports it and the process ends).
//! - **Backtraces** (gdb, perf) end at the fiber's entry function: with
//!   symmetric switching there is no parent frame to continue into, so the
//!   first frame is marked as the outermost one.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

// The per-system half: where a fiber's stack and closure live and how
// control moves (ARCHITECTURE.md, "Two systems, one API").
#[cfg(target_os = "linux")]
mod overflow;
#[cfg(target_os = "linux")]
mod stack;
#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod sys;
#[cfg(windows)]
#[path = "windows.rs"]
mod sys;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use sys::Stack;

/// Default reserved stack size of a fiber: 1 MiB, as on Windows
/// (`CreateFiberEx(0, 0, ...)`). It is reserved `PROT_NONE` with
/// `MAP_NORESERVE` and made accessible without being touched, so pages are
/// backed only once used: address space, not memory.
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;
/// An FLS value and the generation of the index it was set under.
type FlsValue = (u64, Box<dyn Any>);

/// Most FLS indices the process can hold at once (Windows' `FLS_MAXIMUM_AVAILABLE`).
pub const FLS_MAXIMUM_AVAILABLE: usize = 4080;
/// Stacks kept per thread for reuse.
const POOL_LIMIT: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Created,
    Live,
    Finished,
}

type Payload = Box<dyn Any + Send>;

/// One fiber's record. Records are never freed (they are reused), so a
/// `FiberRef` can always be checked against the record's generation. The
/// fields a switch touches come first, in one cache line.
#[repr(C)]
struct Slot {
    /// Where to resume the fiber. Linux: the stack pointer saved by its
    /// latest switch away (or made for its first run). Windows: its OS fiber
    /// (constant while it lives). Valid whenever the fiber is not the running one; zero once
    /// it finished, and for a thread record that never switched. A deleted
    /// fiber's record may keep a stale value: its new generation matches no
    /// `FiberRef`, so nothing reads it.
    sp: Cell<usize>,
    generation: Cell<u64>,
    /// The fiber that started this one, and its generation then: where
    /// control goes when this fiber's function returns.
    starter: Cell<*const Slot>,
    starter_gen: Cell<u64>,
    /// The next record of the free list this one is on.
    next_free: Cell<*const Slot>,
    /// Set when there is work to do on resumption: a panic to raise.
    pending: Cell<bool>,
    float: Cell<bool>,
    state: Cell<State>,
    /// Return the stack to the pool on delete.
    pooled: Cell<bool>,
    id: Cell<u64>,
    panic: Cell<Option<Payload>>,
    guard: Cell<(usize, usize)>,
    /// Usable size and top of the stack the record holds (kept across reuse);
    /// on Windows the "top" is the OS fiber, the context a new fiber starts in.
    stack_size: Cell<usize>,
    stack_top: Cell<usize>,
    /// Windows: the boxed closure of a fiber that has not started, and the
    /// function that runs it (Linux keeps the closure on the fiber's stack
    /// and the function in the stack's first frame).
    #[cfg(windows)]
    closure: Cell<*mut ()>,
    #[cfg(windows)]
    start: Cell<Option<sys::Start>>,
    /// Whether `data` / `fls` may hold something (skips their `RefCell`s otherwise).
    has_data: Cell<bool>,
    has_fls: Cell<bool>,
    stack: Cell<Option<Stack>>,
    /// Drops the closure of a fiber that never started (where `sys::place`
    /// put it); `None` once the fiber took it.
    drop_closure: Cell<Option<unsafe fn(&Slot)>>,
    data: RefCell<Option<Box<dyn Any>>>,
    /// FLS values by index, each with the generation of the index it was
    /// set under: a value whose index was freed (and perhaps handed out
    /// again) is stale, invisible to keys and destroyed on this thread.
    fls: RefCell<Vec<Option<FlsValue>>>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            sp: Cell::new(0),
            generation: Cell::new(0),
            id: Cell::new(0),
            state: Cell::new(State::Free),
            float: Cell::new(false),
            starter: Cell::new(ptr::null()),
            starter_gen: Cell::new(0),
            next_free: Cell::new(ptr::null()),
            pending: Cell::new(false),
            panic: Cell::new(None),
            pooled: Cell::new(true),
            guard: Cell::new((0, 0)),
            stack_size: Cell::new(0),
            stack_top: Cell::new(0),
            #[cfg(windows)]
            closure: Cell::new(ptr::null_mut()),
            #[cfg(windows)]
            start: Cell::new(None),
            has_data: Cell::new(false),
            has_fls: Cell::new(false),
            stack: Cell::new(None),
            drop_closure: Cell::new(None),
            data: RefCell::new(None),
            fls: RefCell::new(Vec::new()),
        }
    }
}

/// Fiber ids: each thread takes a block of 2^32 from this counter once, then counts locally.
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

#[inline]
fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let mut id = n.get();
        if id & 0xffff_ffff == 0 {
            id = next_id_block();
        }
        n.set(id + 1);
        id + 1
    })
}

#[cold]
fn next_id_block() -> u64 {
    NEXT_ID_BLOCK.fetch_add(1, Ordering::Relaxed) << 32
}

/// Per-thread fiber bookkeeping.
struct ThreadFibers {
    /// The thread's own record: its fiber once converted, its FLS home before.
    home: Cell<*const Slot>,
    all: RefCell<Vec<&'static Slot>>,
    /// Fibers whose handle was dropped while they ran.
    doomed: RefCell<Vec<&'static Slot>>,
}

/// The free records of this thread: two intrusive lists through
/// `Slot::next_free`, in a thread-local without a destructor so that taking
/// and returning a record is a few plain loads and stores.
struct FreeLists {
    /// Records that still hold a stack (at most `POOL_LIMIT`).
    stacked: Cell<*const Slot>,
    stacked_len: Cell<usize>,
    /// Records without a stack.
    bare: Cell<*const Slot>,
    /// Whether this thread has set up fibers: the overflow handler and its
    /// alternate stack, and `THREAD` (whose destructor cleans up at exit).
    ready: Cell<bool>,
}

impl FreeLists {
    fn pop(&self, list: &Cell<*const Slot>) -> Option<&'static Slot> {
        let s = slot_ref(list.get())?;
        list.set(s.next_free.replace(ptr::null()));
        Some(s)
    }

    fn push(&self, list: &Cell<*const Slot>, s: &'static Slot) {
        s.next_free.set(list.get());
        list.set(s);
    }
}

/// Sets the thread up for fibers on its first use of them.
#[inline]
fn ensure_ready() {
    if !FREE.with(|f| f.ready.get()) {
        set_up_thread();
    }
}

#[cold]
#[inline(never)]
fn set_up_thread() {
    sys::set_up_thread();
    THREAD.with(|_| ()); // registers its destructor
    FREE.with(|f| f.ready.set(true));
}

/// A free record, one that holds a stack first when `stacked` (a fiber
/// that may reuse it), else a bare one, else a new one.
#[inline]
fn alloc_slot(stacked: bool) -> &'static Slot {
    let free = FREE.with(|f| {
        if stacked && let Some(s) = f.pop(&f.stacked) {
            f.stacked_len.set(f.stacked_len.get() - 1);
            return Some(s);
        }
        f.pop(&f.bare)
    });
    free.unwrap_or_else(new_slot)
}

#[cold]
fn new_slot() -> &'static Slot {
    let s: &'static Slot = Box::leak(Box::new(Slot::new()));
    THREAD.with(|t| t.all.borrow_mut().push(s));
    s
}

impl ThreadFibers {
    fn home(&self) -> &'static Slot {
        let h = self.home.get();
        if !h.is_null() {
            // SAFETY: records are leaked, never freed.
            return unsafe { &*h };
        }
        let s = alloc_slot(false);
        s.state.set(State::Live);
        s.id.set(next_id());
        self.home.set(s);
        s
    }
}

impl Drop for ThreadFibers {
    fn drop(&mut self) {
        // Thread exit: FLS destructors of the running fiber, and of the thread's record.
        let cur = CURRENT
            .try_with(|c| c.replace(ptr::null()))
            .unwrap_or(ptr::null());
        for s in [cur, self.home.get()] {
            if !s.is_null() {
                // SAFETY: records are leaked, never freed.
                run_fls_destructors(unsafe { &*s });
            }
        }
        // The stacks kept by free records go with the thread.
        FREE.with(|f| {
            while let Some(s) = f.pop(&f.stacked) {
                s.stack.take();
                s.stack_size.set(0);
                s.guard.set((0, 0));
                f.push(&f.bare, s);
            }
            f.stacked_len.set(0);
        });
    }
}

thread_local! {
    /// Whether `ThreadFibers::doomed` may hold a fiber to reap.
    static DOOMED_PENDING: Cell<bool> = const { Cell::new(false) };
    /// The running fiber of this thread (null when the thread is not a fiber).
    static CURRENT: Cell<*const Slot> = const { Cell::new(ptr::null()) };
    static FREE: FreeLists = const { FreeLists {
        stacked: Cell::new(ptr::null()),
        stacked_len: Cell::new(0),
        bare: Cell::new(ptr::null()),
        ready: Cell::new(false),
    } };
    static THREAD: ThreadFibers = const { ThreadFibers {
        home: Cell::new(ptr::null()),
        all: RefCell::new(Vec::new()),
        doomed: RefCell::new(Vec::new()),
    } };
}

/// A record from a possibly null pointer.
#[inline]
fn slot_ref(p: *const Slot) -> Option<&'static Slot> {
    // SAFETY: records are leaked and never freed; a non-null pointer always names one.
    (!p.is_null()).then(|| unsafe { &*p })
}

#[inline]
fn current_slot() -> *const Slot {
    CURRENT.with(|c| c.get())
}

/// For the overflow handler: the running fiber's id and guard range.
#[cfg(target_os = "linux")]
fn current_guard() -> Option<(u64, usize, usize)> {
    let cur = CURRENT.try_with(|c| c.get()).ok()?;
    if cur.is_null() {
        return None;
    }
    // SAFETY: records are never freed; Cells are plain loads here.
    let s = unsafe { &*cur };
    let (lo, hi) = s.guard.get();
    (hi != 0).then(|| (s.id.get(), lo, hi))
}

/// Why a fiber operation was refused.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FiberError {
    /// `ConvertThreadToFiber` on a thread that already is a fiber.
    #[error("this thread is already a fiber")]
    AlreadyFiber,
    /// The call needs the thread to be a fiber.
    #[error("this thread is not a fiber (call convert_thread_to_fiber first)")]
    NotFiber,
    /// `ConvertFiberToThread` from a fiber other than the thread's own.
    #[error("only the thread's own fiber can convert back to a thread; switch to it first")]
    NotThreadFiber,
    /// Fibers have no context switch on this architecture yet.
    #[error(
        "fibers are not written for {} yet (only x86_64)",
        std::env::consts::ARCH
    )]
    Unsupported,
    /// The system refused (Windows: `ConvertThreadToFiberEx` failed for a
    /// reason other than the thread being a fiber already); the OS error code.
    #[error("the system refused to make this thread a fiber: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
    /// No FLS slot is left (`FLS_OUT_OF_INDEXES`).
    #[error(
        "no fiber local storage index is left (the limit is {FLS_MAXIMUM_AVAILABLE} per process)"
    )]
    FlsExhausted,
}

/// A reference to a fiber (the `LPVOID` Windows passes around): copyable,
/// checked on use, and tied to its thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FiberRef {
    slot: *const Slot,
    generation: u64,
}

impl FiberRef {
    #[inline]
    fn slot(&self) -> &'static Slot {
        // SAFETY: records are leaked and never freed, and FiberRef is !Send, so
        // the record belongs to this thread.
        unsafe { &*self.slot }
    }

    /// Whether the fiber still exists (not deleted).
    pub fn is_alive(&self) -> bool {
        self.slot().generation.get() == self.generation && self.slot().state.get() != State::Free
    }

    /// Whether its function has returned.
    pub fn is_finished(&self) -> bool {
        self.is_alive() && self.slot().state.get() == State::Finished
    }

    /// A number identifying the fiber (unique in the process), also used in the overflow message.
    pub fn id(&self) -> u64 {
        self.slot().id.get()
    }
}

impl fmt::Debug for FiberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FiberRef(#{})", self.id())
    }
}

/// An owned fiber (`CreateFiber`'s result); dropping it is `DeleteFiber`.
pub struct Fiber {
    r: FiberRef,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for Fiber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fiber(#{})", self.r.id())
    }
}

/// Options of `CreateFiberEx`.
#[derive(Default)]
pub struct FiberBuilder {
    fresh_stack: bool,
    reserve: Option<usize>,
    commit: usize,
    float: bool,
    data: Option<Box<dyn Any>>,
}

impl fmt::Debug for FiberBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FiberBuilder")
            .field("reserve", &self.reserve)
            .field("commit", &self.commit)
            .field("float", &self.float)
            .finish()
    }
}

impl FiberBuilder {
    /// Address space reserved for the stack (`dwStackReserveSize`); rounded
    /// up to pages. As on Windows, 0 means the default
    /// ([`DEFAULT_STACK_SIZE`]), and a commit at least as large as the
    /// reserve makes the reserve the commit rounded up to a whole MiB.
    pub fn stack_reserve(mut self, bytes: usize) -> Self {
        self.reserve = Some(bytes);
        self
    }

    /// Bytes of stack backed by memory up front (`dwStackCommitSize`); the rest on first touch.
    pub fn stack_commit(mut self, bytes: usize) -> Self {
        self.commit = bytes;
        self
    }

    /// Map a fresh stack instead of reusing a pooled one, and unmap it on
    /// delete (no stack memory is ever shared between fibers' lifetimes).
    pub fn fresh_stack(mut self, yes: bool) -> Self {
        self.fresh_stack = yes;
        self
    }

    /// `FIBER_FLAG_FLOAT_SWITCH`: also save and restore MXCSR and the x87 control word.
    pub fn float_switch(mut self, yes: bool) -> Self {
        self.float = yes;
        self
    }

    /// The fiber's data (`lpParameter`), read with [`fiber_data`] while it runs.
    pub fn data<T: 'static>(mut self, data: T) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// Creates the fiber; it does not run until switched to.
    #[inline]
    pub fn spawn<F: FnOnce() + 'static>(self, f: F) -> io::Result<Fiber> {
        // A large closure lives in a box; a small one on the fiber's own stack.
        if std::mem::size_of::<F>() > 1024 {
            let boxed = Box::new(f);
            return self.spawn_in_place(boxed);
        }
        self.spawn_in_place(f)
    }

    #[inline]
    fn spawn_in_place<F: FnOnce() + 'static>(self, f: F) -> io::Result<Fiber> {
        if !sys::SUPPORTED {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                FiberError::Unsupported.to_string(),
            ));
        }
        ensure_ready();
        reap_doomed();
        let reserve = windows_reserve(self.reserve, self.commit);
        let slot = alloc_slot(!self.fresh_stack);
        // A deleted fiber's record keeps its stack: reuse it when the size fits.
        let want = sys::usable_size(reserve);
        let reuse = !self.fresh_stack && sys::stack_fits(slot, want, self.float);
        if !reuse {
            give_new_stack(slot, reserve, self.commit, self.float)?;
        }
        let sp = sys::place::<F>(slot, f);
        slot.drop_closure.set(Some(sys::drop_closure::<F>));
        slot.id.set(next_id());
        // Stores are what creating costs: skip those that change nothing.
        if slot.float.get() != self.float {
            slot.float.set(self.float);
        }
        if slot.pooled.get() == self.fresh_stack {
            slot.pooled.set(!self.fresh_stack);
        }
        if let Some(data) = self.data {
            *slot.data.borrow_mut() = Some(data);
            slot.has_data.set(true);
        }
        slot.state.set(State::Created);
        slot.sp.set(sp);
        Ok(Fiber {
            r: FiberRef {
                slot,
                generation: slot.generation.get(),
            },
            _not_send: PhantomData,
        })
    }
}

/// Maps a new stack for `slot` (dropping the one it held); on failure the
/// record goes back to the free list.
#[cold]
#[inline(never)]
/// The reserve `CreateFiberEx` takes for these sizes: 0 is the default, and
/// a commit at least as large as the reserve rounds the reserve up to it in
/// whole MiB.
fn windows_reserve(reserve: Option<usize>, commit: usize) -> usize {
    const MIB: usize = 1024 * 1024;
    let reserve = reserve.filter(|&r| r > 0).unwrap_or(DEFAULT_STACK_SIZE);
    if commit >= reserve {
        commit.div_ceil(MIB).saturating_mul(MIB)
    } else {
        reserve
    }
}

fn give_new_stack(
    slot: &'static Slot,
    reserve: usize,
    commit: usize,
    float: bool,
) -> io::Result<()> {
    drop(slot.stack.take());
    slot.stack_size.set(0);
    let fresh = match sys::new_stack(slot, reserve, commit, float) {
        Ok(st) => st,
        Err(e) => {
            FREE.with(|f| f.push(&f.bare, slot));
            return Err(e);
        }
    };
    slot.stack_size.set(fresh.size());
    slot.guard.set(fresh.guard());
    slot.stack_top.set(fresh.top());
    slot.stack.set(Some(fresh));
    Ok(())
}

impl Fiber {
    /// `CreateFiber` with the default stack: a fiber that will run `f`.
    #[inline]
    pub fn new<F: FnOnce() + 'static>(f: F) -> io::Result<Fiber> {
        FiberBuilder::default().spawn(f)
    }

    /// `CreateFiberEx`: a builder for stack sizes, float switching and data.
    pub fn builder() -> FiberBuilder {
        FiberBuilder::default()
    }

    /// A copyable reference to switch to.
    pub fn to_ref(&self) -> FiberRef {
        self.r
    }

    /// Whether its function has returned.
    pub fn is_finished(&self) -> bool {
        self.r.is_finished()
    }

    /// Its id.
    pub fn id(&self) -> u64 {
        self.r.id()
    }
}

impl Drop for Fiber {
    #[inline]
    fn drop(&mut self) {
        let s = self.r.slot();
        if ptr::eq(s, current_slot()) {
            // Deleted once it is no longer running: at the next create or delete on this thread.
            // References to it fail from now on, as for any deleted fiber.
            s.generation.set(s.generation.get() + 1);
            // During thread exit the list is gone, and so is every record
            // of the thread with it: nothing left to reap.
            let _ = THREAD.try_with(|t| t.doomed.borrow_mut().push(s));
            DOOMED_PENDING.with(|p| p.set(true));
            return;
        }
        free_slot(s);
        reap_doomed();
    }
}

/// Deletes the self-deleted fibers that are no longer running.
#[inline]
fn reap_doomed() {
    // The common case, nothing to reap, costs one thread-local load.
    if DOOMED_PENDING.with(Cell::get) {
        reap_doomed_slow();
    }
}

#[cold]
#[inline(never)]
fn reap_doomed_slow() {
    let cur = current_slot();
    let ready: Vec<&'static Slot> = match THREAD.try_with(|t| {
        let mut d = t.doomed.borrow_mut();
        if d.is_empty() {
            return Vec::new();
        }
        let (ready, keep): (Vec<_>, Vec<_>) = d.drain(..).partition(|s| !ptr::eq(*s, cur));
        DOOMED_PENDING.with(|p| p.set(!keep.is_empty()));
        *d = keep;
        ready
    }) {
        Ok(r) => r,
        Err(_) => return,
    };
    for s in ready {
        free_slot(s);
    }
}

/// Deletes a fiber that is not running: FLS destructors, closure, record.
/// The record keeps its stack for the next fiber (up to `POOL_LIMIT` kept
/// stacks per thread; a fresh-stack fiber's stack is unmapped). The common
/// case, a finished fiber with nothing left to drop, is inline: a few loads
/// and five stores.
#[inline]
fn free_slot(s: &'static Slot) {
    // A fiber deleted while suspended (it started: its closure was taken;
    // it did not finish) still has live frames on its stack: whatever
    // borrowed from them (a scoped thread, a pinned value) may use them after
    // the delete. Its stack is never reused or unmapped.
    let suspended = s.state.get() != State::Finished && s.drop_closure.get().is_none();
    if s.has_fls.get() | s.drop_closure.get().is_some() | s.has_data.get() | s.pending.get() {
        drop_contents(s);
    }
    // `sp` may keep a stale value: the generation bump below makes every
    // `FiberRef` to this record fail before `sp` is looked at.
    s.state.set(State::Free);
    s.generation.set(s.generation.get() + 1);
    FREE.with(|f| {
        let n = f.stacked_len.get();
        if suspended {
            leak_stack(f, s);
        } else if s.pooled.get() && s.stack_size.get() != 0 && n < POOL_LIMIT {
            f.push(&f.stacked, s);
            f.stacked_len.set(n + 1);
        } else {
            unmap_and_free(f, s);
        }
    });
}

/// The stack of a fiber deleted mid-run: kept mapped for good (leaked), so
/// its frames stay valid memory for anything that still refers to them.
#[cold]
#[inline(never)]
fn leak_stack(f: &FreeLists, s: &'static Slot) {
    std::mem::forget(s.stack.take());
    s.stack_size.set(0);
    s.guard.set((0, 0));
    f.push(&f.bare, s);
}

#[cold]
#[inline(never)]
fn unmap_and_free(f: &FreeLists, s: &'static Slot) {
    s.stack.take(); // unmapped here
    s.stack_size.set(0);
    s.guard.set((0, 0));
    f.push(&f.bare, s);
}

/// What a deleted fiber may still own: FLS values, its closure if it never
/// started, its data, a panic nobody took.
#[cold]
#[inline(never)]
fn drop_contents(s: &'static Slot) {
    run_fls_destructors(s);
    if let Some(drop_fn) = s.drop_closure.get() {
        s.drop_closure.set(None);
        // SAFETY: the closure was written at spawn and never moved out (it did not start).
        unsafe { drop_fn(s) };
    }
    if s.has_data.get() {
        s.has_data.set(false);
        s.data.borrow_mut().take();
    }
    if s.pending.get() {
        s.pending.set(false);
        s.panic.take();
    }
}

#[inline]
fn run_fls_destructors(s: &Slot) {
    if s.has_fls.get() {
        run_fls_destructors_slow(s);
    }
}

#[cold]
#[inline(never)]
fn run_fls_destructors_slow(s: &Slot) {
    s.has_fls.set(false);
    // Take the values out first: a destructor may itself use FLS.
    let values = std::mem::take(&mut *s.fls.borrow_mut());
    for v in values.into_iter().flatten() {
        drop(v);
    }
}

/// A fiber's life, from its first Rust frame (each system's entry calls
/// it): runs the closure, then chooses whom to leave for and returns that
/// fiber's context, which the entry resumes. `starter` is the record of the
/// fiber whose switch started this one.
#[inline(always)]
fn fiber_body<F: FnOnce()>(slot: &'static Slot, starter: &'static Slot) -> usize {
    slot.starter.set(starter);
    slot.starter_gen.set(starter.generation.get());
    slot.drop_closure.set(None);
    // SAFETY: the closure was placed at spawn; it is moved out exactly once, here.
    let f = unsafe { sys::take_closure::<F>(slot) };
    after_resume(slot);
    let panic = catch_unwind(AssertUnwindSafe(f)).err();
    finish(slot, panic)
}

/// Ends a finished fiber: picks its starter (or the thread's fiber), hands
/// over its panic, makes that fiber the current one and returns its
/// context. Inlined into the entry: the common path is a few loads and
/// three stores; the rest is out of line.
#[inline(always)]
fn finish(slot: &'static Slot, panic: Option<Payload>) -> usize {
    slot.state.set(State::Finished);
    slot.sp.set(0);
    // Neither candidate is running (this fiber is), so a non-zero `sp` is a
    // suspended fiber's.
    let target = match slot_ref(slot.starter.get()) {
        Some(r) if r.generation.get() == slot.starter_gen.get() && r.sp.get() != 0 => r,
        _ => thread_fiber_or_abort(),
    };
    if let Some(p) = panic {
        hand_over_panic(target, p);
    }
    let to = target.sp.get();
    CURRENT.with(|c| c.set(target));
    to
}

/// The thread's own fiber, where a fiber goes when its starter is gone.
#[cold]
#[inline(never)]
fn thread_fiber_or_abort() -> &'static Slot {
    match slot_ref(THREAD.with(|t| t.home.get())).filter(|h| h.sp.get() != 0) {
        Some(h) => h,
        None => overflow_free_abort(
            b"taskloom: a fiber finished with no fiber left to switch to; aborting\n",
        ),
    }
}

#[cold]
#[inline(never)]
fn hand_over_panic(target: &Slot, p: Payload) {
    target.panic.set(Some(p));
    target.pending.set(true);
}

fn overflow_free_abort(msg: &[u8]) -> ! {
    sys::abort(msg)
}

/// Work handed to a fiber by the one that switched to it: a panic to raise.
#[inline]
fn after_resume(cur: &Slot) {
    if cur.pending.get() {
        handle_pending(cur);
    }
}

#[cold]
#[inline(never)]
fn handle_pending(cur: &Slot) {
    cur.pending.set(false);
    if let Some(p) = cur.panic.take() {
        resume_unwind(p);
    }
}

/// `SwitchToFiber`: suspends the running fiber and runs `target`.
///
/// # Panics
/// If this thread is not a fiber, or `target` is running, finished or deleted.
#[inline]
pub fn switch_to_fiber(target: FiberRef) {
    let t = target.slot();
    let to = t.sp.get();
    // One thread-local lookup for the read and the write (on windows-gnu
    // each lookup is a `TlsGetValue` call).
    let cur = CURRENT.with(|c| {
        let cur = c.get();
        // Only the running fiber (`cur`) has a stale `sp`: every other fiber of
        // this thread is suspended, not started, finished or deleted.
        // One branch for all four checks (`|`, not `||`): the hot path stays straight.
        if cur.is_null() | (to == 0) | ptr::eq(t, cur) | (t.generation.get() != target.generation) {
            bad_switch(cur, target);
        }
        c.set(t);
        cur
    });
    // SAFETY: non-null (checked above), records are never freed.
    let cur: &Slot = unsafe { &*cur };
    // SAFETY: `to` is the context of a suspended (or not yet started) fiber
    // of this thread, checked above, and `cur` is the running fiber's record.
    unsafe { sys::switch(cur, t, to) };
    after_resume(cur);
}

#[cold]
#[inline(never)]
fn bad_switch(cur: *const Slot, target: FiberRef) -> ! {
    if cur.is_null() {
        panic!("switch_to_fiber: {}", FiberError::NotFiber);
    }
    let t = target.slot();
    if t.generation.get() != target.generation || t.state.get() == State::Free {
        panic!("switch_to_fiber: fiber #{} was deleted", t.id.get());
    }
    match t.state.get() {
        State::Finished => panic!(
            "switch_to_fiber: fiber #{} has finished (its function returned)",
            t.id.get()
        ),
        _ => panic!(
            "switch_to_fiber: fiber #{} is the running fiber",
            t.id.get()
        ),
    }
}

/// `ConvertThreadToFiber`: makes the calling thread a fiber, so it can switch to others.
pub fn convert_thread_to_fiber() -> Result<FiberRef, FiberError> {
    convert_thread_to_fiber_ex(false)
}

/// `ConvertThreadToFiberEx`, with `FIBER_FLAG_FLOAT_SWITCH`.
pub fn convert_thread_to_fiber_ex(float_switch: bool) -> Result<FiberRef, FiberError> {
    if !sys::SUPPORTED {
        return Err(FiberError::Unsupported);
    }
    if !current_slot().is_null() {
        return Err(FiberError::AlreadyFiber);
    }
    ensure_ready();
    let home = THREAD.with(|t| t.home());
    sys::convert(home, float_switch)?;
    home.float.set(float_switch);
    CURRENT.with(|c| c.set(home));
    Ok(FiberRef {
        slot: home,
        generation: home.generation.get(),
    })
}

/// `ConvertFiberToThread`: the thread stops being a fiber (its FLS values stay as the thread's).
pub fn convert_fiber_to_thread() -> Result<(), FiberError> {
    let cur = current_slot();
    if cur.is_null() {
        return Err(FiberError::NotFiber);
    }
    if !ptr::eq(cur, THREAD.with(|t| t.home.get())) {
        return Err(FiberError::NotThreadFiber);
    }
    sys::convert_back();
    CURRENT.with(|c| c.set(ptr::null()));
    // SAFETY: records are never freed.
    unsafe { &*cur }.sp.set(0);
    Ok(())
}

/// `IsThreadAFiber`.
pub fn is_thread_a_fiber() -> bool {
    !current_slot().is_null()
}

/// The running fiber's stack as (lowest usable address, top), when it runs
/// on a stack of its own (not on a converted thread's).
#[cfg(target_os = "linux")]
pub(crate) fn current_stack() -> Option<(usize, usize)> {
    let s = slot_ref(current_slot())?;
    let stack = s.stack.take();
    let bounds = stack.as_ref().map(|st| (st.top() - st.size(), st.top()));
    s.stack.set(stack);
    bounds
}

/// `GetCurrentFiber`: the running fiber, if this thread is a fiber.
pub fn current_fiber() -> Option<FiberRef> {
    slot_ref(current_slot()).map(|s| FiberRef {
        slot: s,
        generation: s.generation.get(),
    })
}

/// `GetFiberData`: calls `f` with the running fiber's data, if it has data of type `T`.
pub fn fiber_data<T: 'static, R>(f: impl FnOnce(Option<&T>) -> R) -> R {
    let Some(cur) = slot_ref(current_slot()) else {
        return f(None);
    };
    let data = cur.data.borrow();
    f(data.as_ref().and_then(|d| d.downcast_ref::<T>()))
}

/// The record FLS uses now: the running fiber, or the thread's own record.
fn fls_home() -> &'static Slot {
    let cur = current_slot();
    if cur.is_null() {
        THREAD.with(|t| t.home())
    } else {
        // SAFETY: records are never freed.
        unsafe { &*cur }
    }
}

/// The process's FLS indices (`FlsAlloc` hands out the same index to every
/// thread): which are in use, and each index's generation, bumped when it is
/// freed so that values set under an earlier key are never seen by a later
/// one. Index 0 is never handed out (ported code uses 0 as "unset").
struct FlsIndices {
    used: Vec<bool>,
    generation: Vec<u64>,
}

static FLS_INDICES: std::sync::Mutex<FlsIndices> = std::sync::Mutex::new(FlsIndices {
    used: Vec::new(),
    generation: Vec::new(),
});

fn fls_indices() -> std::sync::MutexGuard<'static, FlsIndices> {
    FLS_INDICES.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fiber local storage index (`FlsAlloc`): the same index on every thread
/// of the process (the key is `Send` and `Sync`), and each fiber has its own
/// value in it (a thread that is not a fiber has one too). The value's
/// `Drop` is the FLS destructor; it runs when the fiber is deleted, when
/// the thread exits (for the running fiber), when the value is replaced
/// through [`FlsCallbackKey::set`], and on [`FlsKey::free`].
///
/// `FlsFree` on Windows runs the destructor of every fiber's value in the
/// process; a value here belongs to its thread (it need not be `Send`), so
/// `free` destroys the values of the calling thread's fibers, and each other
/// thread destroys its own when it next uses that index, deletes the fiber
/// or exits. Until then no key sees them: a freed index handed out again
/// starts empty everywhere. Destructors of one fiber run in index order.
/// Dropping the key frees the index.
pub struct FlsKey<T: 'static> {
    index: usize,
    generation: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T: 'static> fmt::Debug for FlsKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlsKey({})", self.index)
    }
}

/// A value with an `FlsAlloc`-style callback run on it in place of (before) its drop.
struct WithCallback<T> {
    value: Option<T>,
    callback: fn(T),
}

impl<T> Drop for WithCallback<T> {
    fn drop(&mut self) {
        if let Some(v) = self.value.take() {
            (self.callback)(v);
        }
    }
}

impl<T: 'static> FlsKey<T> {
    /// `FlsAlloc(NULL)`: a new index whose destructor is `T`'s `Drop`.
    pub fn new() -> Result<Self, FiberError> {
        let mut t = fls_indices();
        if t.used.is_empty() {
            // Index 0 stays taken for good.
            t.used.push(true);
            t.generation.push(0);
        }
        let index = match t.used.iter().position(|u| !u) {
            Some(i) => i,
            None if t.used.len() < FLS_MAXIMUM_AVAILABLE => {
                t.used.push(false);
                t.generation.push(0);
                t.used.len() - 1
            }
            None => return Err(FiberError::FlsExhausted),
        };
        t.used[index] = true;
        Ok(FlsKey {
            index,
            generation: t.generation[index],
            _t: PhantomData,
        })
    }

    /// `FlsAlloc(callback)`: `callback` receives each value when it is destroyed.
    pub fn with_callback(callback: fn(T)) -> Result<FlsCallbackKey<T>, FiberError> {
        Ok(FlsCallbackKey {
            key: FlsKey::new()?,
            callback,
        })
    }

    /// The index (never 0).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Sets the value; returns the old one of this key (a stale value left
    /// by an earlier key of this index is destroyed here instead).
    fn put(&self, value: Box<dyn Any>) -> Option<Box<dyn Any>> {
        let home = fls_home();
        home.has_fls.set(true);
        let old = {
            let mut fls = home.fls.borrow_mut();
            if fls.len() <= self.index {
                fls.resize_with(self.index + 1, || None);
            }
            fls[self.index].replace((self.generation, value))
        };
        match old {
            Some((g, v)) if g == self.generation => Some(v),
            stale => {
                // Destroyed outside the borrow: its destructor may use FLS.
                drop(stale);
                None
            }
        }
    }

    /// `FlsSetValue`: sets this fiber's value; the old one is returned (not destroyed).
    pub fn set(&self, value: T) -> Option<T> {
        self.put(Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Removes this fiber's value.
    pub fn take(&self) -> Option<T> {
        let home = fls_home();
        let old = home
            .fls
            .borrow_mut()
            .get_mut(self.index)
            .and_then(Option::take);
        match old {
            Some((g, v)) if g == self.generation => v.downcast::<T>().ok().map(|b| *b),
            stale => {
                drop(stale);
                None
            }
        }
    }

    /// `FlsGetValue`: calls `f` with this fiber's value.
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let home = fls_home();
        let fls = home.fls.borrow();
        f(fls
            .get(self.index)
            .and_then(|v| v.as_ref())
            .filter(|(g, _)| *g == self.generation)
            .and_then(|(_, v)| v.downcast_ref::<T>()))
    }

    /// `FlsGetValue` for `Clone` values.
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        self.with(|v| v.cloned())
    }

    /// `FlsFree`: destroys the values of the calling thread's fibers and
    /// frees the index (dropping the key does the same); see the type's docs
    /// for other threads' values.
    pub fn free(self) {
        drop(self)
    }
}

impl<T: 'static> Drop for FlsKey<T> {
    fn drop(&mut self) {
        // The index first: from here no key sees a value of this generation.
        {
            let mut t = fls_indices();
            t.generation[self.index] += 1;
            t.used[self.index] = false;
        }
        let Ok(slots) = THREAD.try_with(|t| t.all.borrow().clone()) else {
            return;
        };
        let home = THREAD.try_with(|t| t.home.get()).ok().and_then(slot_ref);
        for s in slots.into_iter().chain(home) {
            let v = s
                .fls
                .borrow_mut()
                .get_mut(self.index)
                .and_then(|v| v.take_if(|(g, _)| *g == self.generation));
            drop(v);
        }
    }
}

/// An FLS slot with a Windows-style destructor callback (see [`FlsKey::with_callback`]).
pub struct FlsCallbackKey<T: 'static> {
    key: FlsKey<WithCallback<T>>,
    callback: fn(T),
}

impl<T: 'static> fmt::Debug for FlsCallbackKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlsCallbackKey({})", self.key.index)
    }
}

impl<T: 'static> FlsCallbackKey<T> {
    /// `FlsSetValue`; a replaced value goes through the callback.
    pub fn set(&self, value: T) {
        self.key.set(WithCallback {
            value: Some(value),
            callback: self.callback,
        });
    }

    /// `FlsGetValue`.
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        self.key.with(|v| f(v.and_then(|w| w.value.as_ref())))
    }

    /// `FlsFree`: the callback runs for every fiber's value.
    pub fn free(self) {
        self.key.free()
    }
}
