//! The low layer on Windows: owned handles, wide strings and the calling
//! thread's last error, over `windows-sys` (what `linux/` is on Linux).
