//! Engine set-up: the pooling allocator, epoch ticker and WASI linker shared by every
//! function of one configuration.

use crate::function::{Function, FunctionSpec, Host, LoadError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig,
};

/// Period of the epoch ticker. Deadlines are checked at this granularity, and a guest
/// that computes for longer than one tick yields to the async executor so one busy
/// guest cannot starve other requests on the same worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Upper bound on pool slots (concurrent sandboxes across all functions). Each slot
/// reserves virtual address space for its linear memory (4 GiB plus guard, so that
/// bounds checks are done by the MMU); 4096 slots is about 17 TiB of the 128 TiB
/// user address space.
pub const MAX_TOTAL_SLOTS: u32 = 4096;

/// Memory kept resident (zeroed with `memset` instead of returned with `madvise`) per
/// pool slot. The prototype measured the default decommit path spending most CPU in
/// kernel TLB shoot-downs; keeping linear memory, tables and stacks resident tripled
/// throughput (17k → 46k req/s on 2 cores). 1 MiB covers the example guests.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

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
        for s in specs {
            total += u64::from(s.pool_size);
            max_memory = max_memory.max(s.memory_limit);
        }
        RuntimeOptions {
            total_slots: total.clamp(1, u64::from(MAX_TOTAL_SLOTS)) as u32,
            max_memory_bytes: max_memory,
            cache_dir: default_cache_dir(),
            deadlines: true,
        }
    }
}

/// The engine, its linker and its epoch ticker. Dropping it stops the ticker.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<Host>>,
    ticker_stop: Arc<AtomicBool>,
    pub(crate) deadlines: bool,
    /// The on-disk compile cache, kept for its hit and miss counters.
    cache: Option<Cache>,
}

/// Compile-cache activity of one [`Runtime`] since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules whose compiled code was found in the cache.
    pub hits: u64,
    /// Modules compiled and then stored in the cache.
    pub misses: u64,
}

impl Runtime {
    /// Builds an engine sized by `options`.
    pub fn new(options: &RuntimeOptions) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::default();
        let slots = options.total_slots.max(1);
        // Round the memory limit up to whole 64 KiB wasm pages.
        let max_memory = options.max_memory_bytes.div_ceil(65536) * 65536;
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            .table_elements(TABLE_ELEMENTS)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            .async_stack_keep_resident(KEEP_RESIDENT_BYTES);

        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(options.deadlines)
            .async_stack_size(ASYNC_STACK_BYTES)
            .max_wasm_stack(MAX_WASM_STACK_BYTES);
        let mut kept_cache = None;
        if let Some(dir) = &options.cache_dir {
            let mut cache = CacheConfig::new();
            cache.with_directory(dir);
            match Cache::new(cache) {
                Ok(cache) => {
                    kept_cache = Some(cache.clone());
                    config.cache(Some(cache));
                }
                // A cache is an optimisation: without one, modules still compile.
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %format!("{e:#}"),
                    "compile cache unavailable; compiling every module at start"
                ),
            }
        }
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |host: &mut Host| &mut host.wasi)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        crate::hostcalls::add_to_linker(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("gojinn-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            ticker_stop,
            deadlines: options.deadlines,
            cache: kept_cache,
        })
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
