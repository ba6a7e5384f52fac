//! One function: a compiled, pre-linked module and the per-call sandbox.

use crate::engine::{Bounds, Flavour, Runtime};
use crate::limits::Limits;
use crate::pipes::CappedSink;
use crate::signature::{self, SignatureError, SignaturePolicy};
use crate::snapshot::{self as snap, Snapshot};
use crate::stdio::Stdio;
use bytes::Bytes;
use gojinn_host::{Capabilities, Session};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use wasmtime::{Engine, InstancePre, Module, ModuleExport, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// How much of a guest's stderr is kept per call; the rest is dropped (and counted).
pub const DEFAULT_MAX_STDERR_BYTES: usize = 64 << 10;

/// How long a request may wait for a free sandbox when its route is at `pool_size`
/// before it is turned away (503). Long enough to smooth a burst, short enough that
/// an overloaded route answers quickly instead of piling up connections.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_millis(200);

/// Everything needed to load and run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The module file (`.wasm` or `.wat`).
    pub module: PathBuf,
    /// Deadline of one call (instantiation included).
    pub timeout: Duration,
    /// Maximum linear memory, in bytes.
    pub memory_limit: u64,
    /// Environment given to the guest; nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// Arguments after `argv[0]` (the module's file name).
    pub args: Vec<String>,
    /// Maximum concurrent sandboxes of this function.
    pub pool_size: u32,
    /// Guest stdout cap, in bytes.
    pub max_output_bytes: usize,
    /// Guest stderr bytes kept per call.
    pub max_stderr_bytes: usize,
    /// How long a call may wait for a free sandbox.
    pub queue_wait: Duration,
    /// Wasm fuel one call may consume (about one unit per instruction); past it
    /// the call ends with [`Fault::Fuel`]. `None`: no limit but the deadline.
    /// The engine counts fuel only when some function of it has a limit
    /// ([`RuntimeOptions::fuel`](crate::RuntimeOptions)).
    pub fuel: Option<u64>,
    /// Signature check before compiling; `None` checks nothing (a signature
    /// footer, if present, is still removed before compiling).
    pub signature: Option<SignaturePolicy>,
    /// What the `gojinn` host functions may do; `None` grants nothing (calls are
    /// denied, `host_log` still logs).
    pub capabilities: Option<Arc<Capabilities>>,
    /// Host directories preopened for the guest.
    pub mounts: Vec<MountSpec>,
    /// Whether requests start from a pre-initialised snapshot
    /// ([`crate::snapshot`]).
    pub snapshot: Snapshot,
}

/// One host directory visible to the guest.
#[derive(Debug, Clone)]
pub struct MountSpec {
    /// Host directory.
    pub host: PathBuf,
    /// Path the guest sees.
    pub guest: String,
    /// Whether the guest may change it.
    pub writable: bool,
}

/// Why a function could not be loaded. Each message names the module.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine itself could not be set up.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// The module file could not be read.
    #[error("cannot read module `{path}`: {source}")]
    Read {
        /// The module path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid wasm/wat, or rejected by the compiler.
    #[error("module `{path}` is not valid WebAssembly: {detail}")]
    Compile {
        /// The module path.
        path: PathBuf,
        /// The compiler's message.
        detail: String,
    },
    /// Valid, but declares more memory or table space up front than the route's
    /// sandbox may have.
    #[error("module `{path}` needs more than its sandbox allows: {detail}")]
    TooLarge {
        /// The module path.
        path: PathBuf,
        /// What is too large, and the limit.
        detail: String,
    },
    /// An import the host does not provide.
    #[error("module `{path}` cannot be linked: {detail}")]
    Link {
        /// The module path.
        path: PathBuf,
        /// The linker's message, naming the import.
        detail: String,
    },
    /// Refused by a `strict` signature policy.
    #[error("module `{path}` refused by the strict signature policy: {reason}")]
    Signature {
        /// The module path.
        path: PathBuf,
        /// Why its signature was not accepted.
        reason: SignatureError,
    },
    /// Not a WASI command (no `_start` taking and returning nothing).
    #[error("module `{path}` is not a WASI command: it must export a function `_start` with no parameters and no results")]
    NotCommand {
        /// The module path.
        path: PathBuf,
    },
    /// `snapshot` was asked for and cannot be given safely.
    #[error("module `{path}` cannot start from a snapshot: {reason}")]
    Snapshot {
        /// The module path.
        path: PathBuf,
        /// Why (see [`crate::snapshot`]).
        reason: String,
    },
}

/// Why a call produced no usable response.
///
/// Every variant is a fault of the guest except [`Fault::Overload`] (the route is
/// at its concurrency cap) and [`Fault::Host`] (the host could not set up the
/// sandbox): the server maps each to its own status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The deadline passed (in wasm code or blocked in a host call).
    Timeout,
    /// The call consumed its `fuel_limit`.
    Fuel {
        /// The limit, in fuel units.
        limit: u64,
    },
    /// The guest trapped (panic, unreachable, stack overflow, bad memory access…).
    Trap(String),
    /// The guest exited with a non-zero code.
    Exit(i32),
    /// The guest asked for more memory than its limit.
    Memory(String),
    /// The guest wrote more than the stdout cap.
    OutputCap {
        /// The cap, in bytes.
        limit: usize,
    },
    /// No sandbox became free within the queue wait.
    Overload,
    /// The guest's stdout is empty or a broken response object
    /// ([`Function::invoke`], [`gojinn_contract::decode_output`]), or
    /// sets a header HTTP cannot carry.
    Contract {
        /// What is wrong with it.
        error: gojinn_contract::ContractError,
        /// The start of the stdout, for the log (never for the client).
        stdout: String,
    },
    /// The host could not give the sandbox what its config grants (a mount
    /// directory that cannot be opened): the server's fault, not the guest's.
    Host(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Timeout => f.write_str("deadline exceeded"),
            Fault::Fuel { limit } => write!(f, "fuel limit of {limit} units consumed"),
            Fault::Trap(msg) => write!(f, "trap: {msg}"),
            Fault::Exit(code) => write!(f, "exited with code {code}"),
            Fault::Memory(msg) => write!(f, "memory limit: {msg}"),
            Fault::OutputCap { limit } => write!(f, "stdout exceeded {limit} bytes"),
            Fault::Overload => f.write_str("no free sandbox within the queue wait"),
            Fault::Contract { error, .. } => error.fmt(f),
            Fault::Host(msg) => write!(f, "host fault: {msg}"),
        }
    }
}

/// How much of a guest's bad stdout a [`Fault::Contract`] quotes for the log.
pub const MAX_QUOTED_STDOUT_CHARS: usize = 200;

/// What one call produced: the guest's stdout ([`Function::call`]) or its decoded
/// response ([`Function::invoke`]), and what the sandbox measured either way.
#[derive(Debug)]
pub struct CallOutcome<T = Vec<u8>> {
    /// The guest's output on a clean exit, or the fault.
    pub result: Result<T, Fault>,
    /// The kept part of the guest's stderr (also on faults).
    pub stderr: Vec<u8>,
    /// Stderr bytes dropped past the cap.
    pub stderr_dropped: u64,
    /// Time spent instantiating.
    pub instantiate_time: Duration,
    /// Time from instantiation to the end of the run (or fault).
    pub run_time: Duration,
    /// The sandbox's linear-memory high-water mark, in bytes (0 when no sandbox ran).
    pub memory_peak: u64,
    /// How many times the guest grew its memory during the call.
    pub memory_grows: u32,
    /// How the code that ran checked its memory accesses ([`Bounds::Guard`] or
    /// [`Bounds::Checked`]).
    pub bounds: Bounds,
}

/// What a call measured about its sandbox, filled in as it runs (so a timed-out
/// run still reports what it got to).
#[derive(Default)]
struct Timings {
    instantiate: Duration,
    run: Duration,
    memory_peak: u64,
    memory_grows: u32,
    /// Whether to measure the call's CPU time ([`Bounds::Adaptive`] observing).
    measure_cpu: bool,
    /// The call's CPU time, instantiation to reset, when measured and the call
    /// stayed on one thread.
    cpu: Option<Duration>,
}

/// Store data of one sandbox.
pub(crate) struct Host {
    pub(crate) wasi: WasiP1Ctx,
    /// The WASI context's stdio pipes, for the fast stdio calls.
    pub(crate) stdio: Stdio,
    pub(crate) limits: Limits,
    /// State of the `gojinn` host calls; only for modules that import them.
    pub(crate) session: Option<Session>,
}

/// A loaded function. Cheap to share (`Arc` inside); every [`call`](Self::call)
/// builds a fresh store and instance.
#[derive(Clone)]
pub struct Function {
    inner: Arc<Inner>,
}

struct Inner {
    /// The module compiled for the runtime's primary engine.
    code: Code,
    /// The module compiled for the explicit-checks engine, once this function
    /// has moved there ([`Bounds::Adaptive`]); calls use it from then on.
    moved: OnceLock<Code>,
    /// What decides the move; `None` when the runtime's bounds are fixed.
    adapt: Option<Adapt>,
    spec: FunctionSpec,
    argv: Vec<String>,
    permits: Semaphore,
    /// The route's grants (empty when none were configured).
    caps: Arc<Capabilities>,
    /// Whether the module imports anything from `gojinn` (else no session is made).
    uses_host: bool,
    /// The names the module imports from `gojinn`, in import order.
    host_imports: Vec<String>,
    /// Whether the engine counts fuel: then every call gets its store's fuel.
    fuel: bool,
    /// The Gojinn host functions the module imports that this server does not provide.
    unavailable_imports: Vec<&'static str>,
    /// Whether calls have deadlines ([`RuntimeOptions::deadlines`](crate::RuntimeOptions)).
    deadlines: bool,
    compile_time: Duration,
}

/// A module compiled for one engine, linked and ready to instantiate.
struct Code {
    engine: Engine,
    pre: InstancePre<Host>,
    /// The export each call runs: `_start`, or a snapshotted reactor's
    /// [`snap::HANDLE_EXPORT`], found once at load rather than by name per call.
    entry: ModuleExport,
    bounds: Bounds,
}

impl Code {
    /// Compiles `code` (the module's bytes, signature removed) for `flavour`'s
    /// engine and links it.
    fn compile(
        flavour: &Flavour,
        code: &[u8],
        spec: &FunctionSpec,
    ) -> Result<(Code, Module), LoadError> {
        let module = Module::new(&flavour.engine, code).map_err(|e| {
            let detail = format!("{e:#}");
            // wasmtime checks a module's declared memories and tables against the
            // pool's slots while compiling and says so only in its message.
            if detail.contains("pooling allocator") {
                LoadError::TooLarge {
                    path: spec.module.clone(),
                    detail,
                }
            } else {
                LoadError::Compile {
                    path: spec.module.clone(),
                    detail,
                }
            }
        })?;
        let exports_entry = |name: &str| {
            module
                .get_export(name)
                .and_then(|e| e.func().cloned())
                .is_some_and(|f| f.params().len() == 0 && f.results().len() == 0)
        };
        let entry_name = if exports_entry("_start") {
            "_start"
        } else if spec.snapshot != Snapshot::Off && exports_entry(snap::HANDLE_EXPORT) {
            snap::HANDLE_EXPORT
        } else {
            return Err(LoadError::NotCommand {
                path: spec.module.clone(),
            });
        };
        let entry = module
            .get_export_index(entry_name)
            .ok_or_else(|| LoadError::NotCommand {
                path: spec.module.clone(),
            })?;
        let link_error = |e: wasmtime::Error| LoadError::Link {
            path: spec.module.clone(),
            detail: format!("{e:#}"),
        };
        let pre = crate::hostcalls::linker_for(&flavour.linker, &module)
            .and_then(|linker| linker.instantiate_pre(&module))
            .map_err(link_error)?;
        Ok((
            Code {
                engine: flavour.engine.clone(),
                pre,
                entry,
                bounds: flavour.bounds,
            },
            module,
        ))
    }
}

/// The observation behind [`Bounds::Adaptive`].
struct Adapt {
    /// What moving needs, until the move is decided (taken then, so the
    /// module's bytes are not kept for the server's lifetime).
    pending: Mutex<Option<Pending>>,
    /// Calls observed on the primary engine, up to [`OBSERVED_CALLS`].
    calls: AtomicU32,
    /// How many of those calls grew memory.
    grew: AtomicU32,
    /// Their CPU time, in ns.
    cpu_ns: AtomicU64,
    /// The decision once made and, on a move, its code compiled.
    settled: watch::Sender<Option<Bounds>>,
}

/// What a move to the explicit-checks engine compiles.
struct Pending {
    checked: Arc<Flavour>,
    code: Vec<u8>,
}

impl Function {
    pub(crate) fn load(runtime: &Runtime, spec: FunctionSpec) -> Result<Self, LoadError> {
        let bytes = std::fs::read(&spec.module).map_err(|source| LoadError::Read {
            path: spec.module.clone(),
            source,
        })?;
        // Verified before `Module::new`, which is where the compile cache is
        // consulted: a cached compilation never stands in for a signature.
        let code = match &spec.signature {
            Some(policy) => match signature::verify(&bytes, &policy.trusted_keys) {
                Ok(unsigned) => unsigned,
                Err(reason) if policy.strict => {
                    return Err(LoadError::Signature {
                        path: spec.module.clone(),
                        reason,
                    })
                }
                Err(reason) => {
                    tracing::warn!(
                        target: "gojinn::signature",
                        module = %spec.module.display(),
                        reason = %reason,
                        "signature policy audit: module loaded without a valid signature"
                    );
                    signature::unsigned(&bytes)
                }
            },
            None => signature::unsigned(&bytes),
        };
        let program = spec
            .module
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "main.wasm".to_owned());
        let mut argv = vec![program];
        argv.extend(spec.args.iter().cloned());
        let compile_started = Instant::now();
        let snapshotted;
        let code = if spec.snapshot == Snapshot::Off {
            code
        } else {
            snapshotted = snap::prepare(runtime, code, &spec, &argv)?;
            &snapshotted[..]
        };
        let (code_primary, module) = Code::compile(&runtime.primary, code, &spec)?;
        let compile_time = compile_started.elapsed();
        let host_imports: Vec<String> = module
            .imports()
            .filter(|i| i.module() == "gojinn")
            .map(|i| i.name().to_owned())
            .collect();
        let uses_host = !host_imports.is_empty();
        let unavailable_imports = crate::hostcalls::unavailable_imports(&module);
        let caps = spec
            .capabilities
            .clone()
            .unwrap_or_else(|| Arc::new(Capabilities::none("")));
        Ok(Function {
            inner: Arc::new(Inner {
                adapt: runtime.checked.as_ref().map(|checked| Adapt {
                    pending: Mutex::new(Some(Pending {
                        checked: checked.clone(),
                        code: code.to_vec(),
                    })),
                    calls: AtomicU32::new(0),
                    grew: AtomicU32::new(0),
                    cpu_ns: AtomicU64::new(0),
                    settled: watch::Sender::new(None),
                }),
                code: code_primary,
                moved: OnceLock::new(),
                permits: Semaphore::new(spec.pool_size.max(1) as usize),
                argv,
                caps,
                uses_host,
                host_imports,
                fuel: runtime.fuel,
                unavailable_imports,
                deadlines: runtime.deadlines,
                spec,
                compile_time,
            }),
        })
    }

    /// The spec this function was loaded from.
    pub fn spec(&self) -> &FunctionSpec {
        &self.inner.spec
    }

    /// The names the module imports from the `gojinn` host module, in import
    /// order (the loader warns about calls the route's grants would deny).
    pub fn host_imports(&self) -> &[String] {
        &self.inner.host_imports
    }

    /// The Gojinn host functions the module imports that this server does not
    /// provide (`host_ask_ai`, `host_s3_put`…): linked, but every call fails. For
    /// the warnings of `gojinn validate` and of a load.
    pub fn unavailable_imports(&self) -> &[&'static str] {
        &self.inner.unavailable_imports
    }

    /// How long compiling the module took at load (a compile-cache hit makes this
    /// the time to read and check the cached code).
    pub fn compile_time(&self) -> Duration {
        self.inner.compile_time
    }

    /// How the function's calls check their memory accesses now.
    pub fn bounds(&self) -> Bounds {
        self.inner.moved.get().unwrap_or(&self.inner.code).bounds
    }

    /// How the function's calls check their memory accesses for good: at once
    /// when the runtime's bounds are fixed; with [`Bounds::Adaptive`], once the
    /// first calls have been observed and, on a move, the explicit-checks code
    /// is compiled (so not before that many calls have succeeded).
    pub async fn settled_bounds(&self) -> Bounds {
        let Some(adapt) = &self.inner.adapt else {
            return self.inner.code.bounds;
        };
        let mut settled = adapt.settled.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let decided = settled
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|b| *b);
        decided.unwrap_or(Bounds::Guard)
    }

    /// Runs the function on one contract request and decodes its response: the
    /// request path of the server and of `gojinn build --test` alike. `trace_id`
    /// labels the call's host-call log lines.
    pub async fn invoke(
        &self,
        request: &gojinn_contract::Request,
        trace_id: &str,
    ) -> CallOutcome<gojinn_contract::Response> {
        let outcome = self
            .call_traced(gojinn_contract::encode_request(request), trace_id)
            .await;
        let result = outcome.result.and_then(|stdout| {
            gojinn_contract::decode_output(&stdout).map_err(|error| Fault::Contract {
                error,
                stdout: String::from_utf8_lossy(&stdout)
                    .chars()
                    .take(MAX_QUOTED_STDOUT_CHARS)
                    .collect(),
            })
        });
        CallOutcome {
            result,
            stderr: outcome.stderr,
            stderr_dropped: outcome.stderr_dropped,
            instantiate_time: outcome.instantiate_time,
            run_time: outcome.run_time,
            memory_peak: outcome.memory_peak,
            memory_grows: outcome.memory_grows,
            bounds: outcome.bounds,
        }
    }

    /// Runs the function once in a fresh sandbox with `stdin` as its input.
    pub async fn call(&self, stdin: Vec<u8>) -> CallOutcome {
        self.call_traced(stdin, "").await
    }

    /// [`call`](Self::call), with the request's trace id for host-call logs.
    pub async fn call_traced(&self, stdin: Vec<u8>, trace_id: &str) -> CallOutcome {
        let inner = &*self.inner;
        let spec = &inner.spec;
        let stderr = CappedSink::new(spec.max_stderr_bytes);
        let no_output = |result| CallOutcome {
            result,
            stderr: Vec::new(),
            stderr_dropped: 0,
            instantiate_time: Duration::ZERO,
            run_time: Duration::ZERO,
            memory_peak: 0,
            memory_grows: 0,
            bounds: inner.code.bounds,
        };

        // A free sandbox is the common case: take it without setting up the
        // queue-wait timer (a clock read and a timer entry per call).
        let _permit = match inner.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(spec.queue_wait, inner.permits.acquire()).await {
                Ok(Ok(permit)) => permit,
                _ => return no_output(Err(Fault::Overload)),
            },
        };

        let started = Instant::now();
        let mut timings = Timings::default();
        let session = inner
            .uses_host
            .then(|| Session::new(inner.caps.clone(), trace_id));
        let code = inner.moved.get().unwrap_or(&inner.code);
        timings.measure_cpu =
            code.bounds == Bounds::Guard && inner.adapt.as_ref().is_some_and(|a| a.observing());
        let run = inner.run(code, stdin, stderr.clone(), session, started, &mut timings);
        let result = if inner.deadlines {
            match tokio::time::timeout(spec.timeout, run).await {
                Ok(result) => result,
                Err(_) => {
                    timings.run = started.elapsed().saturating_sub(timings.instantiate);
                    Err(Fault::Timeout)
                }
            }
        } else {
            run.await
        };
        let (stderr, stderr_dropped) = stderr.take();
        if let Some(adapt) = &inner.adapt {
            if result.is_ok() {
                adapt.observe(&self.inner, &timings);
            }
        }
        CallOutcome {
            result,
            stderr,
            stderr_dropped,
            instantiate_time: timings.instantiate,
            run_time: timings.run,
            memory_peak: timings.memory_peak,
            memory_grows: timings.memory_grows,
            bounds: code.bounds,
        }
    }
}

/// Successful calls [`Bounds::Adaptive`] watches before it decides.
pub const OBSERVED_CALLS: u32 = 16;

/// What growing memory costs a call on the guard-page engine with the server
/// under load, in µs of CPU. A grow itself is an `mprotect` that only adds
/// access (no TLB flush); the cost is at the slot's next use, where wasmtime
/// takes the access back from the grown pages: one `mprotect` per call that
/// grew, however many times, and a TLB shoot-down of every other core running
/// the server. Measured on 2 cores: the default Zig hello (2 grows a call) went
/// from 148 to 95 µs of server CPU per request on the explicit-checks engine,
/// AssemblyScript's (1 grow) from 148 to 91 (docs/performance.md, "Growing
/// memory").
const GROWING_CALL_COST_US: u64 = 50;

/// What explicit checks add to a call's CPU time, as a divisor: about a quarter
/// (in process, Go 1.27 +24 %, Rust +20 %, Zig +19 %).
const CHECK_COST_DIVISOR: u64 = 4;

/// Whether calls of which `grew` grew memory, taking `cpu_us` µs of CPU (both
/// summed over the observed calls), would be cheaper with explicit bounds checks.
fn cheaper_checked(grew: u64, cpu_us: u64) -> bool {
    grew * GROWING_CALL_COST_US > cpu_us / CHECK_COST_DIVISOR
}

impl Adapt {
    /// Whether the next call is to be measured.
    fn observing(&self) -> bool {
        self.calls.load(Ordering::Relaxed) < OBSERVED_CALLS
    }

    /// Counts one successful call on the guard-page engine whose CPU time was measured; the call that
    /// completes the observation decides, and on a move compiles the module for
    /// the explicit-checks engine on a thread of its own (calls go on with the
    /// guard-page code meanwhile, and move once it is ready).
    fn observe(&self, inner: &Arc<Inner>, timings: &Timings) {
        let Some(cpu) = timings.cpu else { return };
        if timings.memory_grows > 0 {
            self.grew.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
        if self.calls.fetch_add(1, Ordering::AcqRel) + 1 != OBSERVED_CALLS {
            return;
        }
        let Some(pending) = self.pending.lock().ok().and_then(|mut p| p.take()) else {
            self.settled.send_replace(Some(Bounds::Guard));
            return;
        };
        let grew = self.grew.load(Ordering::Relaxed);
        let cpu_us = self.cpu_ns.load(Ordering::Relaxed) / 1000;
        let module = inner.spec.module.display().to_string();
        let observed = format!(
            "{grew} of {OBSERVED_CALLS} calls grew memory, {:.1} µs of CPU per call",
            cpu_us as f64 / f64::from(OBSERVED_CALLS)
        );
        if !cheaper_checked(u64::from(grew), cpu_us) {
            tracing::debug!(
                target: "gojinn::sandbox",
                module,
                observed,
                "bounds: staying on guard pages"
            );
            self.settled.send_replace(Some(Bounds::Guard));
            return;
        }
        let inner = inner.clone();
        let compile = move || {
            let started = Instant::now();
            let bounds = match Code::compile(&pending.checked, &pending.code, &inner.spec) {
                Ok((code, _)) => {
                    // Only this thread sets it.
                    let _ = inner.moved.set(code);
                    tracing::info!(
                        target: "gojinn::sandbox",
                        module,
                        observed,
                        compile_ms = started.elapsed().as_millis() as u64,
                        "bounds: moved to explicit checks (its calls grow memory)"
                    );
                    Bounds::Checked
                }
                // It compiled once already: only running out of resources gets
                // here, and the guard-page code still serves.
                Err(e) => {
                    tracing::warn!(
                        target: "gojinn::sandbox",
                        module,
                        error = %e,
                        "bounds: cannot compile for explicit checks; staying on guard pages"
                    );
                    Bounds::Guard
                }
            };
            if let Some(adapt) = &inner.adapt {
                adapt.settled.send_replace(Some(bounds));
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("gojinn-recompile".into())
            .spawn(compile)
        {
            tracing::warn!(
                target: "gojinn::sandbox",
                error = %e,
                "bounds: cannot start the compile thread; staying on guard pages"
            );
            self.settled.send_replace(Some(Bounds::Guard));
        }
    }
}

/// CPU time of the calling thread (user and system).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

impl Inner {
    async fn run(
        &self,
        code: &Code,
        stdin: Vec<u8>,
        stderr: CappedSink,
        session: Option<Session>,
        started: Instant,
        timings: &mut Timings,
    ) -> Result<Vec<u8>, Fault> {
        let spec = &self.spec;
        let cpu_started = timings
            .measure_cpu
            .then(|| (std::thread::current().id(), thread_cpu()));
        // One byte past the cap, so "exactly at the cap" and "over it" differ.
        let stdout = MemoryOutputPipe::new(spec.max_output_bytes.saturating_add(1));
        let mut builder = WasiCtxBuilder::new();
        let stdio = Stdio::attach(&mut builder, Bytes::from(stdin), stdout.clone(), stderr);
        builder.envs(&spec.env).args(&self.argv);
        for m in &spec.mounts {
            let perms = if m.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            // Opened per call, like the rest of the context: a directory replaced
            // while serving is seen by the next request. The guest cannot leave it
            // (capability-based lookups refuse `..` and symlinks that escape).
            builder
                .preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| {
                    Fault::Host(format!(
                        "cannot open mount `{}` ({}): {e:#}",
                        m.guest,
                        m.host.display()
                    ))
                })?;
        }
        let wasi = builder.build_p1();
        let mut store = Store::new(
            &code.engine,
            Host {
                wasi,
                stdio,
                limits: Limits::new(spec.memory_limit),
                session,
            },
        );
        store.limiter(|host| &mut host.limits);
        if self.fuel {
            // An engine that counts fuel counts it for every store: a function
            // without a limit gets all there is (2^64 units outlast any deadline).
            store
                .set_fuel(spec.fuel.unwrap_or(u64::MAX))
                .map_err(|e| Fault::Host(format!("cannot set fuel: {e:#}")))?;
        }
        // Backstop for the async timeout in `call`: even if the executor were too
        // busy to fire the timer, wasm code stops at the deadline. Until then a
        // guest that has run for a whole tick yields at each tick, so it shares
        // its worker thread. The first check is at the second tick: the first
        // comes anywhere in the call's first tick, and yielding there would
        // suspend calls shorter than a tick (a Go hello, ~1 ms: one in five),
        // each holding its slot at the back of the queue (docs/performance.md).
        if self.deadlines {
            let hard_deadline = started + spec.timeout;
            store.set_epoch_deadline(2);
            store.epoch_deadline_callback(move |_| {
                if Instant::now() >= hard_deadline {
                    Ok(UpdateDeadline::Interrupt)
                } else {
                    Ok(UpdateDeadline::Yield(1))
                }
            });
        }

        let outcome = match code.pre.instantiate_async(&mut store).await {
            Ok(instance) => {
                timings.instantiate = started.elapsed();
                let start = instance
                    .get_module_export(&mut store, &code.entry)
                    .and_then(|e| e.into_func())
                    .ok_or_else(|| wasmtime::format_err!("the module's entry point is gone"))
                    .and_then(|f| f.typed::<(), ()>(&store));
                match start {
                    Ok(start) => start.call_async(&mut store, ()).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                timings.instantiate = started.elapsed();
                Err(e)
            }
        };
        timings.run = started.elapsed().saturating_sub(timings.instantiate);
        let memory_exceeded = store.data().limits.memory_exceeded;
        timings.memory_peak = store.data().limits.memory_peak as u64;
        timings.memory_grows = store.data().limits.memory_grows;
        drop(store);
        if let Some((thread, cpu_started)) = cpu_started {
            if std::thread::current().id() == thread {
                timings.cpu = Some(thread_cpu().saturating_sub(cpu_started));
            }
        }

        // The store, and with it the WASI context's handle on the pipe, is gone:
        // we hold the only handle, so this takes the buffer without a copy. `None`
        // would mean a handle escaped the store; treat it as an empty stdout.
        let stdout: Vec<u8> = stdout.try_into_inner().map(Vec::from).unwrap_or_default();
        if stdout.len() > spec.max_output_bytes {
            return Err(Fault::OutputCap {
                limit: spec.max_output_bytes,
            });
        }
        match outcome {
            Ok(()) => Ok(stdout),
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    return if exit.0 == 0 {
                        Ok(stdout)
                    } else {
                        Err(Fault::Exit(exit.0))
                    };
                }
                if memory_exceeded {
                    return Err(Fault::Memory(format!("{e:#}")));
                }
                match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => return Err(Fault::Timeout),
                    Some(Trap::OutOfFuel) => {
                        return Err(Fault::Fuel {
                            limit: spec.fuel.unwrap_or(u64::MAX),
                        })
                    }
                    _ => {}
                }
                Err(Fault::Trap(format!("{e:#}")))
            }
        }
    }
}
