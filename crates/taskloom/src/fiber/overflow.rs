//! Stack overflow: a SIGSEGV handler that names the fiber whose guard page
//! was hit, then aborts. Faults elsewhere go to the handler that was there
//! before (Rust's own, or the default action).
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, Ordering};

static INSTALL: Once = Once::new();
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

/// Installs the handler (once per process) and makes sure this thread has an
/// alternate signal stack to run it on.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let mut old = Box::new(MaybeUninit::<libc::sigaction>::zeroed());
        // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO | SA_ONSTACK.
        unsafe {
            let mut sa = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
            sa.sa_sigaction = on_segv as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGSEGV, &sa, old.as_mut_ptr()) == 0 {
                PREVIOUS.store(Box::into_raw(old).cast(), Ordering::Release);
            }
        }
    });
    ensure_altstack();
}

/// Gives this thread an alternate signal stack if it has none (leaked with the thread).
fn ensure_altstack() {
    thread_local! {
        static CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if CHECKED.with(|c| c.replace(true)) {
        return;
    }
    let mut current = MaybeUninit::<libc::stack_t>::zeroed();
    // SAFETY: querying the alternate stack into valid storage.
    unsafe {
        if libc::sigaltstack(ptr::null(), current.as_mut_ptr()) != 0 {
            return;
        }
        if current.assume_init().ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        let size = 64 * 1024;
        let mem = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let ss = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: size,
        };
        libc::sigaltstack(&ss, ptr::null_mut());
    }
}

/// Formats `v` in decimal or hex into `buf`, returning the used tail.
fn fmt_num(mut v: u64, hex: bool, buf: &mut [u8; 24]) -> &[u8] {
    let base = if hex { 16 } else { 10 };
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v % base) as usize];
        v /= base;
        if v == 0 {
            break;
        }
    }
    if hex {
        i -= 2;
        buf[i] = b'0';
        buf[i + 1] = b'x';
    }
    &buf[i..]
}

fn write_stderr(parts: &[&[u8]]) {
    for p in parts {
        // SAFETY: writing a valid buffer to fd 2; async-signal-safe.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
}

extern "C" fn on_segv(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((id, lo, hi)) = super::current_guard() {
        // The guard page, or just below it (a large frame may skip over it).
        if addr >= lo.saturating_sub(64 * 1024) && addr < hi {
            let (mut a, mut b) = ([0u8; 24], [0u8; 24]);
            write_stderr(&[
                b"\nfiber stack overflow in fiber #",
                fmt_num(id, false, &mut a),
                b" (fault at ",
                fmt_num(addr as u64, true, &mut b),
                b", below its stack); aborting\n",
            ]);
            // SAFETY: abort is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    let prev = PREVIOUS.load(Ordering::Acquire);
    // SAFETY: `prev` was stored once from a filled sigaction and never freed.
    unsafe {
        if prev.is_null() {
            return;
        }
        let prev = &*prev;
        let handler = prev.sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            // Restore the default action; the faulting instruction runs again and dies.
            let mut dfl = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGSEGV, &dfl, ptr::null_mut());
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}
