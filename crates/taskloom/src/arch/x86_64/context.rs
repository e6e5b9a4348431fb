//! x86_64's register set, as `GetThreadContext` returns it: the same type
//! on Linux (from a `ucontext` or `PTRACE_GETREGS`) and on Windows (from a
//! `CONTEXT`).

/// Registers of a thread, as `GetThreadContext` returns them (x86_64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub struct ThreadContext {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rflags: u64,
}

impl ThreadContext {
    /// The registers by name, program counter, stack and frame pointer
    /// first (as `taskloom threads --context` prints them).
    pub fn registers(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rip", self.rip),
            ("rsp", self.rsp),
            ("rbp", self.rbp),
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
            ("rflags", self.rflags),
        ]
    }
}
