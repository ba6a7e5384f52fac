//! The server's allocator: mimalloc instead of glibc's malloc.
//!
//! A request allocates and frees a few dozen small blocks across two worker
//! threads (hyper's buffers, the request JSON, the sandbox's store and WASI
//! context); mimalloc's per-thread free lists serve them in about 2 µs less per
//! request than glibc (docs/performance.md). By default mimalloc commits its
//! arenas eagerly and keeps what is freed in them, so a server that compiled its
//! modules at start-up would idle at three times glibc's memory. This crate sets
//! it, before the program's first allocation, to commit arena memory on demand
//! and to return freed pages after 10 ms instead of 1 s (mimalloc 2's default):
//! a server with ten functions then idles at 33–37 MiB (glibc: 36 MiB).

/// Every allocation of a program that links this crate (`use gojinn_alloc as
/// _;`). Being here, and not in the binary, also links the object that holds
/// [`CONFIGURE`], so the options are always set.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` (`include/mimalloc.h`).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// mimalloc's `mi_option_purge_delay`, in ms (1000 by default in mimalloc 3).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Runs before `main` (and so before the first allocation, which reserves
/// mimalloc's first arena and reads the option then).
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static CONFIGURE: extern "C" fn() = configure;

extern "C" fn configure() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table,
    // which it reads when it reserves an arena; nothing else runs yet.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options are in force when the program runs (this test binary links
    /// the crate as the server does).
    #[test]
    #[allow(unsafe_code)]
    fn options_are_set_before_main() {
        // SAFETY: reads an integer from mimalloc's option table.
        let (eager, delay) = unsafe {
            (
                libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(PURGE_DELAY),
            )
        };
        assert_eq!((eager, delay), (0, 10));
    }
}
