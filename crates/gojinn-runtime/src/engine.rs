//! Engine set-up: the pooling allocator, epoch ticker and WASI linker shared by every
//! function of one configuration.

use crate::function::{Function, FunctionSpec, Host, LoadError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy, Linker,
    PoolingAllocationConfig, ProfilingStrategy,
};

/// Period of the epoch ticker. Deadlines are checked at this granularity, and a guest
/// that computes for longer than one tick yields to the async executor so one busy
/// guest cannot starve other requests on the same worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Upper bound on pool slots (concurrent sandboxes across all functions). Each slot
/// of the guard-page engine reserves virtual address space for its linear memory
/// (4 GiB plus guard, so that bounds checks are done by the MMU); 4096 slots is
/// about 17 TiB of the 128 TiB user address space. The explicit-checks engine's
/// pool has as many slots, each reserving only the largest memory limit.
pub const MAX_TOTAL_SLOTS: u32 = 4096;

/// Memory kept resident (reset with `memset` instead of returned with `madvise`)
/// per pool slot when the kernel cannot say which pages a guest wrote: the first
/// this many bytes of each slot are reset after every call, written or not. The
/// prototype measured the `madvise` path spending most CPU in kernel TLB
/// shoot-downs; keeping 1 MiB resident tripled throughput (17k → 46k req/s on 2
/// cores). 1 MiB covers the tuned example guests.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// The bound on memory kept resident per pool slot when the kernel has
/// `PAGEMAP_SCAN` (Linux ≥ 6.7). Only pages the guest wrote are reset then, so a
/// slot keeps what its function actually touches per call, its working set, up
/// to this bound; past it the rest is returned with `madvise` and faulted back
/// next time. The bound is sized for a standard Go guest's working set (see
/// docs/performance.md for what each language's hello writes per call).
const KEEP_RESIDENT_MAX_BYTES: usize = 32 << 20;

/// How a pool slot's memory is reset between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxReset {
    /// The kernel's `PAGEMAP_SCAN` finds the pages the guest wrote; only those
    /// are reset (up to [`KEEP_RESIDENT_MAX_BYTES`]).
    PagemapScan,
    /// The first [`KEEP_RESIDENT_BYTES`] are reset whether written or not, the
    /// rest returned to the kernel (kernels without `PAGEMAP_SCAN`).
    Memset,
}

impl SandboxReset {
    /// What this kernel allows.
    pub fn detect() -> Self {
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            SandboxReset::PagemapScan
        } else {
            SandboxReset::Memset
        }
    }

    /// The name used in the start-up log and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            SandboxReset::PagemapScan => "pagemap_scan",
            SandboxReset::Memset => "memset",
        }
    }

    /// Bytes of linear memory each slot may keep resident.
    fn keep_resident(self, max_memory: u64) -> usize {
        match self {
            SandboxReset::PagemapScan => usize::try_from(max_memory)
                .unwrap_or(usize::MAX)
                .min(KEEP_RESIDENT_MAX_BYTES),
            SandboxReset::Memset => KEEP_RESIDENT_BYTES,
        }
    }
}

/// How guest code keeps its memory accesses inside its linear memory.
///
/// Guard pages cost nothing per access but make growing memory expensive: each
/// `memory.grow` is an `mprotect`, and the grown pages are made inaccessible
/// again with another when the slot is next used; each of those flushes the TLB
/// of every other core running the server, by interrupt. Explicit checks cost a
/// compare per access (Go 17 %, Rust 4 % in the bench) and make growth free.
/// Which is cheaper depends on the function, so by default it is measured
/// (docs/performance.md, "Growing memory").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bounds {
    /// Every function on the guard-page engine.
    Guard,
    /// Every function on the explicit-checks engine.
    Checked,
    /// Functions start on the guard-page engine; one whose calls grow memory
    /// often enough for the checks to be cheaper moves to the explicit-checks
    /// engine after its first calls (see `Function::settled_bounds`). The
    /// default.
    #[default]
    Adaptive,
}

impl Bounds {
    /// What `$GOJINN_BOUNDS` asks for (`guard`, `checked` or `adaptive`; unset
    /// or empty: adaptive). A diagnostic switch, for comparing the engines on a
    /// real load; the error names the bad value.
    pub fn from_env() -> Result<Self, String> {
        Self::from_var(std::env::var("GOJINN_BOUNDS"))
    }

    /// [`Bounds::from_env`] of the variable's value as `std::env::var` gives it.
    fn from_var(raw: Result<String, std::env::VarError>) -> Result<Self, String> {
        switch(
            "GOJINN_BOUNDS",
            raw,
            &[Bounds::Guard, Bounds::Checked, Bounds::Adaptive],
            Bounds::name,
        )
    }

    /// The name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Bounds::Guard => "guard",
            Bounds::Checked => "checked",
            Bounds::Adaptive => "adaptive",
        }
    }
}

/// Who answers a guest's reads of stdin and writes to stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdioCalls {
    /// The runtime's own `fd_read` and `fd_write` for the plain case (see
    /// `stdio.rs`), wasmtime-wasi's for everything else. The default.
    #[default]
    Direct,
    /// wasmtime-wasi's for every call.
    Wasi,
}

impl StdioCalls {
    /// What `$GOJINN_STDIO` asks for (`direct` or `wasi`; unset or empty:
    /// direct). A diagnostic switch, like `GOJINN_BOUNDS`; the error names the
    /// bad value.
    pub fn from_env() -> Result<Self, String> {
        Self::from_var(std::env::var("GOJINN_STDIO"))
    }

    /// [`StdioCalls::from_env`] of the variable's value as `std::env::var` gives it.
    fn from_var(raw: Result<String, std::env::VarError>) -> Result<Self, String> {
        switch(
            "GOJINN_STDIO",
            raw,
            &[StdioCalls::Direct, StdioCalls::Wasi],
            StdioCalls::name,
        )
    }

    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            StdioCalls::Direct => "direct",
            StdioCalls::Wasi => "wasi",
        }
    }
}

/// A diagnostic switch: `raw`, the value of `$var`, names one of `choices`
/// (unset or empty: `T`'s default). The error names the variable, the bad value
/// and the names it may take.
fn switch<T: Copy + Default>(
    var: &str,
    raw: Result<String, std::env::VarError>,
    choices: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    let value = match raw {
        Err(std::env::VarError::NotPresent) => return Ok(T::default()),
        Err(e) => return Err(format!("{var}: {e}")),
        Ok(value) if value.is_empty() => return Ok(T::default()),
        Ok(value) => value,
    };
    choices
        .iter()
        .copied()
        .find(|&choice| name(choice) == value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|&choice| name(choice)).collect();
            format!("{var}=`{value}` is not one of {}", names.join(", "))
        })
}

/// Size of each async (fiber) stack a guest runs on.
const ASYNC_STACK_BYTES: usize = 1 << 20;

/// Maximum native stack a guest may use (its wasm call depth); a deeper recursion
/// traps with a stack overflow instead of crashing the host.
const MAX_WASM_STACK_BYTES: usize = 512 << 10;

/// Table elements per table slot in the pool.
pub(crate) const TABLE_ELEMENTS: usize = 100_000;

/// How the engine is sized.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Pool slots: the sum of the functions' concurrency caps (capped at
    /// [`MAX_TOTAL_SLOTS`]).
    pub total_slots: u32,
    /// The largest memory limit of any function, in bytes.
    pub max_memory_bytes: u64,
    /// Directory of the on-disk compile cache; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Whether calls have deadlines (epoch checks compiled into guest code, the
    /// call's timer). Always on when serving; `bench/` turns it off to measure
    /// what deadlines cost. Off, a guest that loops runs forever.
    pub deadlines: bool,
    /// How slots are reset between calls ([`SandboxReset::detect`] unless a
    /// test or bench compares the two).
    pub reset: SandboxReset,
    /// Whether guest code counts fuel (wasmtime's `consume_fuel`): on only when
    /// some function has a `fuel_limit`, because counting costs every function
    /// of the engine time in each loop and call.
    pub fuel: bool,
    /// How guest memory accesses are bounds-checked ([`Bounds::Adaptive`] unless
    /// a test or bench pins one).
    pub bounds: Bounds,
    /// Who answers stdio calls ([`StdioCalls::Direct`] unless a test compares).
    pub stdio: StdioCalls,
}

/// The compile cache directory: `$GOJINN_CACHE_DIR` (`off` disables the cache), else
/// `$XDG_CACHE_HOME/gojinn`, else `$HOME/.cache/gojinn`.
///
/// Entries are keyed by the module's content hash, the wasmtime version and the
/// compiler settings (wasmtime's cache does this), so a changed module, engine or
/// setting never loads stale code.
pub fn default_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("GOJINN_CACHE_DIR") {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gojinn"))
}

impl RuntimeOptions {
    /// Options sized for `specs`.
    pub fn for_functions<'a>(specs: impl IntoIterator<Item = &'a FunctionSpec>) -> Self {
        let mut total: u64 = 0;
        let mut max_memory = 64 << 10;
        let mut fuel = false;
        for s in specs {
            total += u64::from(s.pool_size);
            max_memory = max_memory.max(s.memory_limit);
            fuel |= s.fuel.is_some();
        }
        RuntimeOptions {
            total_slots: total.clamp(1, u64::from(MAX_TOTAL_SLOTS)) as u32,
            max_memory_bytes: max_memory,
            cache_dir: default_cache_dir(),
            deadlines: true,
            reset: SandboxReset::detect(),
            fuel,
            bounds: Bounds::from_env().unwrap_or_else(|error| {
                let default = Bounds::default();
                tracing::error!(%error, "using {} bounds checks", default.name());
                default
            }),
            stdio: StdioCalls::from_env().unwrap_or_else(|error| {
                let default = StdioCalls::default();
                tracing::error!(%error, "using {} stdio calls", default.name());
                default
            }),
        }
    }
}

/// One wasmtime engine with the WASI and `gojinn` imports linked.
pub(crate) struct Flavour {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<Host>>,
    /// How this engine's code checks memory accesses: [`Bounds::Guard`] or
    /// [`Bounds::Checked`].
    pub(crate) bounds: Bounds,
}

/// The engines, their linkers and the epoch ticker. Dropping it stops the ticker.
pub struct Runtime {
    /// The engine functions are loaded on.
    pub(crate) primary: Arc<Flavour>,
    /// With [`Bounds::Adaptive`], the explicit-checks engine a function moves to.
    pub(crate) checked: Option<Arc<Flavour>>,
    ticker_stop: Arc<AtomicBool>,
    pub(crate) deadlines: bool,
    /// Whether guest code counts fuel ([`RuntimeOptions::fuel`]).
    pub(crate) fuel: bool,
    /// The on-disk compile cache, kept for its hit and miss counters.
    cache: Option<Cache>,
    /// The compile cache's directory (snapshots are kept beside it).
    cache_dir: Option<PathBuf>,
    reset: SandboxReset,
}

/// Compile-cache activity of one [`Runtime`] since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules whose compiled code was found in the cache.
    pub hits: u64,
    /// Modules compiled and then stored in the cache.
    pub misses: u64,
}

/// Builds one engine (`bounds` is `Guard` or `Checked`) and its linker.
fn flavour(
    options: &RuntimeOptions,
    reset: SandboxReset,
    bounds: Bounds,
    cache: Option<&Cache>,
) -> Result<Flavour, LoadError> {
    let mut pool = PoolingAllocationConfig::default();
    let slots = options.total_slots.max(1);
    // Round the memory limit up to whole 64 KiB wasm pages.
    let max_memory = options.max_memory_bytes.div_ceil(65536) * 65536;
    pool.pagemap_scan(match reset {
        SandboxReset::PagemapScan => Enabled::Yes,
        SandboxReset::Memset => Enabled::No,
    });
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        .table_elements(TABLE_ELEMENTS)
        .linear_memory_keep_resident(reset.keep_resident(max_memory))
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .async_stack_keep_resident(KEEP_RESIDENT_BYTES);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(options.deadlines)
        .consume_fuel(options.fuel)
        .async_stack_size(ASYNC_STACK_BYTES)
        .max_wasm_stack(MAX_WASM_STACK_BYTES)
        // A copy-on-write memory image for every module that fits a slot,
        // however sparse its data: without one, each instantiation copies
        // the data segments into fresh pages. wasmtime's default (16 MiB)
        // leaves out snapshots of runtimes with large heaps (a Go reactor
        // after initialisation: the copy was 15 % of its call).
        .memory_guaranteed_dense_image_size(max_memory);
    if bounds == Bounds::Checked {
        // Every access compares against the memory's current length, so a slot
        // needs neither guard pages nor pages made inaccessible: the whole
        // reservation (the largest limit) stays readable and writable, growth
        // is a length update, and a reset changes no protection.
        config
            .signals_based_traps(false)
            .memory_guard_size(0)
            .guard_before_linear_memory(false)
            .memory_reservation(max_memory)
            .memory_reservation_for_growth(0);
    }
    // `GOJINN_PERFMAP=1` writes /tmp/perf-PID.map so that `perf report` names
    // the guest's functions instead of showing bare JIT addresses.
    if std::env::var_os("GOJINN_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    if let Some(cache) = cache {
        config.cache(Some(cache.clone()));
    }
    let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;

    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |host: &mut Host| &mut host.wasi)
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    if options.stdio == StdioCalls::Direct {
        crate::stdio::add_to_linker(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    }
    crate::hostcalls::add_to_linker(&mut linker)
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    Ok(Flavour {
        engine,
        linker: Arc::new(linker),
        bounds,
    })
}

impl Runtime {
    /// Builds the engines sized by `options`.
    pub fn new(options: &RuntimeOptions) -> Result<Self, LoadError> {
        let reset = match options.reset {
            // Asked for, but this kernel cannot: say so rather than pretend.
            SandboxReset::PagemapScan if SandboxReset::detect() == SandboxReset::Memset => {
                return Err(LoadError::Engine(
                    "this kernel has no PAGEMAP_SCAN (Linux 6.7 or later)".to_owned(),
                ))
            }
            r => r,
        };
        let mut kept_cache = None;
        if let Some(dir) = &options.cache_dir {
            let mut cache = CacheConfig::new();
            cache.with_directory(dir);
            match Cache::new(cache) {
                Ok(cache) => kept_cache = Some(cache),
                // A cache is an optimisation: without one, modules still compile.
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %format!("{e:#}"),
                    "compile cache unavailable; compiling every module at start"
                ),
            }
        }
        let cache = kept_cache.as_ref();
        let (primary, checked) = match options.bounds {
            Bounds::Guard => (flavour(options, reset, Bounds::Guard, cache)?, None),
            Bounds::Checked => (flavour(options, reset, Bounds::Checked, cache)?, None),
            Bounds::Adaptive => (
                flavour(options, reset, Bounds::Guard, cache)?,
                Some(Arc::new(flavour(options, reset, Bounds::Checked, cache)?)),
            ),
        };
        let primary = Arc::new(primary);

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let engines: Vec<_> = std::iter::once(&primary)
            .chain(checked.as_ref())
            .map(|f| f.engine.weak())
            .collect();
        std::thread::Builder::new()
            .name("gojinn-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for weak in &engines {
                        match weak.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => return,
                        }
                    }
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        Ok(Runtime {
            primary,
            checked,
            ticker_stop,
            deadlines: options.deadlines,
            fuel: options.fuel,
            cache_dir: options.cache_dir.clone(),
            cache: kept_cache,
            reset,
        })
    }

    /// The on-disk cache directory, when the cache is on.
    pub(crate) fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    /// How this engine resets a slot between calls.
    pub fn reset(&self) -> SandboxReset {
        self.reset
    }

    /// How guest memory accesses are bounds-checked.
    pub fn bounds(&self) -> Bounds {
        match self.checked {
            Some(_) => Bounds::Adaptive,
            None => self.primary.bounds,
        }
    }

    /// Compile-cache hits and misses so far; zero when the cache is off.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache
            .as_ref()
            .map_or_else(CacheStats::default, |c| CacheStats {
                hits: c.cache_hits() as u64,
                misses: c.cache_misses() as u64,
            })
    }

    /// Compiles and links one function. `.wat` text is accepted as well as binary wasm.
    pub fn load(&self, spec: FunctionSpec) -> Result<Function, LoadError> {
        Function::load(self, spec)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    #[test]
    fn a_switch_takes_its_names_and_defaults_when_unset_or_empty() {
        let bounds = Bounds::from_var;
        assert_eq!(bounds(Err(VarError::NotPresent)), Ok(Bounds::Adaptive));
        assert_eq!(bounds(Ok(String::new())), Ok(Bounds::Adaptive));
        assert_eq!(bounds(Ok("guard".into())), Ok(Bounds::Guard));
        assert_eq!(bounds(Ok("checked".into())), Ok(Bounds::Checked));
        assert_eq!(bounds(Ok("adaptive".into())), Ok(Bounds::Adaptive));
        let stdio = StdioCalls::from_var;
        assert_eq!(stdio(Err(VarError::NotPresent)), Ok(StdioCalls::Direct));
        assert_eq!(stdio(Ok(String::new())), Ok(StdioCalls::Direct));
        assert_eq!(stdio(Ok("direct".into())), Ok(StdioCalls::Direct));
        assert_eq!(stdio(Ok("wasi".into())), Ok(StdioCalls::Wasi));
    }

    #[test]
    fn a_switch_error_names_the_variable_the_value_and_the_choices() {
        assert_eq!(
            Bounds::from_var(Ok("Guard".into())),
            Err("GOJINN_BOUNDS=`Guard` is not one of guard, checked, adaptive".into())
        );
        assert_eq!(
            StdioCalls::from_var(Ok("fast".into())),
            Err("GOJINN_STDIO=`fast` is not one of direct, wasi".into())
        );
        let not_unicode = VarError::NotUnicode(std::ffi::OsString::from("x"));
        match Bounds::from_var(Err(not_unicode)) {
            Err(error) => assert!(error.starts_with("GOJINN_BOUNDS: "), "{error}"),
            Ok(taken) => panic!("a value that is not unicode was taken as {taken:?}"),
        }
    }
}
