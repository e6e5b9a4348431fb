//! Dynamic TLS slots: `TlsAlloc`, `TlsFree`, `TlsGetValue`, `TlsSetValue`.
//!
//! A slot holds one pointer-sized value per thread (as on Windows: no
//! destructor; use [`crate::fiber::FlsKey`] for values that need one). A
//! freed index is reused by a later allocation; each index carries a
//! generation, so a thread that still holds a value set under the old
//! owner reads 0, never the stale value.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many slots a process can hold at once (Windows: 64 + 1024 expansion slots).
pub const TLS_SLOTS: usize = 1088;

struct Registry {
    /// Per index: in use, and its generation.
    slots: Vec<(bool, u32)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { slots: Vec::new() });

/// The live generation of each index (0: never allocated); bumped on alloc and on free,
/// so a stale index neither reads nor writes.
/// Index 0 is never handed out (ported code often takes 0 for "unset"), so
/// the table has one entry more than there are slots.
static LIVE: [AtomicU32; TLS_SLOTS + 1] = [const { AtomicU32::new(0) }; TLS_SLOTS + 1];

thread_local! {
    /// Per thread, per index: (generation, value).
    static VALUES: RefCell<Vec<(u32, usize)>> = const { RefCell::new(Vec::new()) };
}

/// No slot is left (`TLS_OUT_OF_INDEXES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no thread local storage slot is left (the limit is {TLS_SLOTS} per process)")]
pub struct TlsExhausted;

/// A TLS index (`TlsAlloc`'s result). `Copy`, like the Windows `DWORD`.
/// Using it after [`TlsIndex::free`] is a bug, but a harmless one: it reads
/// 0 and its writes are dropped, so it never reaches the index's next owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsIndex {
    index: u32,
    generation: u32,
}

impl TlsIndex {
    /// `TlsAlloc`: a new slot; every thread's value starts at 0.
    pub fn alloc() -> Result<TlsIndex, TlsExhausted> {
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        if reg.slots.is_empty() {
            // Index 0: taken for good, never live.
            reg.slots.push((true, 0));
        }
        let index = match reg.slots.iter().position(|(used, _)| !used) {
            Some(i) => i,
            None if reg.slots.len() < TLS_SLOTS + 1 => {
                reg.slots.push((false, 0));
                reg.slots.len() - 1
            }
            None => return Err(TlsExhausted),
        };
        let slot = &mut reg.slots[index];
        slot.0 = true;
        slot.1 = slot.1.wrapping_add(1).max(1);
        LIVE[index].store(slot.1, Ordering::Release);
        Ok(TlsIndex {
            index: index as u32,
            generation: slot.1,
        })
    }

    /// The index number.
    pub fn index(self) -> u32 {
        self.index
    }

    fn is_live(self) -> bool {
        LIVE[self.index as usize].load(Ordering::Acquire) == self.generation
    }

    /// `TlsSetValue` for the calling thread (ignored for a freed index).
    pub fn set(self, value: usize) {
        if !self.is_live() {
            return;
        }
        VALUES.with(|v| {
            let mut v = v.borrow_mut();
            let i = self.index as usize;
            if v.len() <= i {
                v.resize(i + 1, (0, 0));
            }
            v[i] = (self.generation, value);
        });
    }

    /// `TlsGetValue` for the calling thread (0 if never set, or freed).
    pub fn get(self) -> usize {
        if !self.is_live() {
            return 0;
        }
        VALUES.with(|v| match v.borrow().get(self.index as usize) {
            Some(&(generation, value)) if generation == self.generation => value,
            _ => 0,
        })
    }

    /// `TlsFree`: releases the index for reuse.
    pub fn free(self) {
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = reg.slots.get_mut(self.index as usize)
            && slot.1 == self.generation
            && slot.0
        {
            slot.0 = false;
            slot.1 = slot.1.wrapping_add(1).max(1);
            LIVE[self.index as usize].store(slot.1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_zero_is_never_handed_out_and_every_slot_can_be_had() {
        let all: Vec<TlsIndex> = std::iter::from_fn(|| TlsIndex::alloc().ok()).collect();
        assert!(all.iter().all(|i| i.index() != 0));
        // Every slot there is (less any another test holds right now).
        assert!(all.len() > TLS_SLOTS - 16, "{}", all.len());
        assert!(all.iter().all(|i| (i.index() as usize) <= TLS_SLOTS));
        for i in all {
            i.free();
        }
    }

    #[test]
    fn values_are_per_thread_and_reuse_is_clean() {
        let a = TlsIndex::alloc().unwrap();
        a.set(41);
        assert_eq!(a.get(), 41);
        std::thread::spawn(move || {
            assert_eq!(a.get(), 0, "another thread starts at 0");
            a.set(7);
            assert_eq!(a.get(), 7);
        })
        .join()
        .unwrap();
        assert_eq!(a.get(), 41);
        a.free();
        let b = TlsIndex::alloc().unwrap();
        // The index may be reused, but the old value does not show through.
        assert_eq!(b.get(), 0);
        b.set(5);
        a.set(9); // a stale index does not reach the new owner's value
        assert_eq!(b.get(), 5);
        assert_eq!(a.get(), 0, "a freed index reads 0");
        b.free();
    }
}
