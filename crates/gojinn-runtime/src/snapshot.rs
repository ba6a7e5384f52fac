//! Pre-initialised snapshots: a route's `snapshot` option.
//!
//! A guest whose start-up does not depend on the request (a language runtime's
//! initialisation, tables built at start) need not run it on every request. At
//! load, the module is instantiated once, its initialisation function runs, and
//! wasmtime-wizer writes a new module whose memory image and globals hold the
//! state it left; every request then starts a fresh sandbox from that image, by
//! copy-on-write like any other module, and calls only the per-request entry
//! point.
//!
//! What a module exports decides both halves:
//!
//! - the initialisation: `wizer.initialize` (or `wizer-initialize`), after a
//!   reactor's `_initialize` when there is one; or `_initialize` alone (a WASI
//!   reactor, such as Go's `-buildmode=c-shared`);
//! - the entry point per request: `_start` when the module has one (a command that
//!   also exports `wizer.initialize`), else [`HANDLE_EXPORT`].
//!
//! A snapshot is refused, with the reason, when the state it would freeze is not
//! safe to share between requests:
//!
//! - the initialisation read random bytes (`random_get`): every request would
//!   start from the same seeds (hash keys, `math/rand` state), which the
//!   languages promise are random per process;
//! - it wrote to stdout (the response channel of a request that does not exist);
//! - it called a `gojinn` host function (a grant is per request, and a value read
//!   once would be served to every caller), exited, trapped or ran past the
//!   route's timeout.
//!
//! During initialisation the guest sees the route's environment and arguments,
//! an empty stdin and no mounts.
//!
//! Snapshots are cached on disk beside the compile cache's directory
//! (`<cache>-snapshots/<sha256>.wasm`, see [`snapshot_dir`]), keyed by the
//! module's bytes, what its
//! initialisation sees (environment, arguments) and the snapshot format; the
//! snapshot's compiled code then goes through the compile cache like any module.

use crate::engine::Runtime;
use crate::function::{FunctionSpec, Host, LoadError};
use crate::limits::Limits;
use crate::pipes::CappedSink;
use crate::stdio::Stdio;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::{Caller, Instance, Linker, Module, Store, Trap, UpdateDeadline, Val};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

/// The export a snapshot of a reactor calls once per request.
pub const HANDLE_EXPORT: &str = "gojinn_handle";

/// Initialisation functions looked for, in this order, before a reactor's
/// `_initialize` alone.
const INIT_EXPORTS: [&str; 2] = ["wizer.initialize", "wizer-initialize"];

/// A WASI reactor's own initialisation function.
const REACTOR_INIT: &str = "_initialize";

/// Part of every cache key: a change to what goes into a snapshot (this crate's
/// rules or the wizer release) must not reuse an old one.
const FORMAT: &str = "gojinn-snapshot-1 wasmtime-wizer-48.0.8";

/// Stderr kept from an initialisation, for the log.
const MAX_INIT_STDERR_BYTES: usize = 16 << 10;

/// Whether, and how, a function starts from a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Snapshot {
    /// Every request runs the module from its start.
    #[default]
    Off,
    /// Requests start from a snapshot taken after initialisation, or the load
    /// fails saying why it is not safe.
    On,
    /// As `On`, but an initialisation that read random bytes is snapshotted
    /// anyway. Unsafe: every request shares the seeds. Only for measuring what a
    /// snapshot would save (`call_loop`); the server never uses it.
    IgnoreRandomness,
}

/// Raised by `random_get` during initialisation.
#[derive(Debug)]
struct RandomDuringInit;

impl std::fmt::Display for RandomDuringInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("random_get called during initialisation")
    }
}

impl std::error::Error for RandomDuringInit {}

/// The snapshot of `code` for `spec`: from the cache when there, else made and
/// stored.
pub(crate) fn prepare(
    runtime: &Runtime,
    code: &[u8],
    spec: &FunctionSpec,
    argv: &[String],
) -> Result<Vec<u8>, LoadError> {
    let refuse = |reason: String| LoadError::Snapshot {
        path: spec.module.clone(),
        reason,
    };
    // wizer reads the binary format only.
    let wasm: Cow<'_, [u8]> = wat::parse_bytes(code).map_err(|e| LoadError::Compile {
        path: spec.module.clone(),
        detail: e.to_string(),
    })?;
    let cached = runtime
        .cache_dir()
        .and_then(snapshot_dir)
        .map(|dir| dir.join(format!("{}.wasm", cache_key(&wasm, spec, argv))));
    if let Some(path) = &cached {
        if let Ok(bytes) = std::fs::read(path) {
            return Ok(bytes);
        }
    }
    // On a thread of its own with its own executor: loads happen both at start
    // and inside the server's runtime (reload), where blocking on a future of the
    // caller's executor is not allowed.
    let made = std::thread::scope(|s| {
        s.spawn(|| {
            let executor = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| format!("cannot start its executor: {e}"))?;
            executor.block_on(make(runtime, &wasm, spec, argv))
        })
        .join()
        .unwrap_or_else(|_| Err("the snapshot thread panicked".to_owned()))
    })
    .map_err(refuse)?;
    if let Some(path) = &cached {
        if let Err(e) = store(path, &made) {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot cache the snapshot; it will be made again at the next load"
            );
        }
    }
    Ok(made)
}

/// Where snapshots are kept for the compile cache `dir`: its sibling
/// `<dir>-snapshots`. Not inside it: wasmtime's cache worker deletes files it
/// does not recognise there.
pub fn snapshot_dir(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?;
    let mut sibling = name.to_os_string();
    sibling.push("-snapshots");
    Some(dir.with_file_name(sibling))
}

/// Hex SHA-256 of everything a snapshot depends on.
fn cache_key(wasm: &[u8], spec: &FunctionSpec, argv: &[String]) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(FORMAT.as_bytes());
    field(format!("{:?}", spec.snapshot).as_bytes());
    for (k, v) in &spec.env {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    field(b"--");
    for a in argv {
        field(a.as_bytes());
    }
    field(b"--");
    field(wasm);
    hex::encode(h.finalize())
}

/// Writes `bytes` at `path` whole or not at all.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Runs the initialisation and writes the snapshot, or says why not.
async fn make(
    runtime: &Runtime,
    wasm: &[u8],
    spec: &FunctionSpec,
    argv: &[String],
) -> Result<Vec<u8>, String> {
    let mut wizer = Wizer::new();
    let (cx, instrumented) = wizer.instrument(wasm).map_err(|e| format!("{e:#}"))?;
    let module =
        Module::new(&runtime.primary.engine, &instrumented).map_err(|e| format!("{e:#}"))?;
    let exports_func = |name: &str| {
        module
            .get_export(name)
            .and_then(|e| e.func().cloned())
            .is_some_and(|f| f.params().len() == 0 && f.results().len() == 0)
    };
    let reactor = exports_func(REACTOR_INIT);
    let init = match INIT_EXPORTS.into_iter().find(|n| exports_func(n)) {
        Some(name) => name,
        None if reactor => REACTOR_INIT,
        None => {
            return Err(format!(
                "it exports no initialisation function: a command exports `{}` \
                 (run once, before the snapshot), a reactor `{REACTOR_INIT}`",
                INIT_EXPORTS[0]
            ))
        }
    };
    if !exports_func("_start") && !exports_func(HANDLE_EXPORT) {
        return Err(format!(
            "it exports no entry point for requests: `_start` (a command) or \
             `{HANDLE_EXPORT}` (a reactor), taking and returning nothing"
        ));
    }
    wizer.init_func(init);

    let stdout = MemoryOutputPipe::new(1 << 10);
    let stderr = CappedSink::new(MAX_INIT_STDERR_BYTES);
    let mut builder = WasiCtxBuilder::new();
    let stdio = Stdio::attach(
        &mut builder,
        bytes::Bytes::new(),
        stdout.clone(),
        stderr.clone(),
    );
    builder.envs(&spec.env).args(argv);
    let mut store = Store::new(
        &runtime.primary.engine,
        Host {
            wasi: builder.build_p1(),
            stdio,
            limits: Limits::new(spec.memory_limit),
            session: None,
        },
    );
    store.limiter(|host| &mut host.limits);
    if runtime.fuel {
        store
            .set_fuel(u64::MAX)
            .map_err(|e| format!("cannot set fuel: {e:#}"))?;
    }
    if runtime.deadlines {
        let deadline = Instant::now() + spec.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Continue(1)
            })
        });
    }

    let mut linker: Linker<Host> = Linker::new(&runtime.primary.engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |host: &mut Host| &mut host.wasi)
        .map_err(|e| format!("{e:#}"))?;
    if spec.snapshot != Snapshot::IgnoreRandomness {
        linker.allow_shadowing(true);
        linker
            .func_wrap(
                "wasi_snapshot_preview1",
                "random_get",
                |_: Caller<'_, Host>, _: i32, _: i32| -> wasmtime::Result<i32> {
                    Err(wasmtime::Error::new(RandomDuringInit))
                },
            )
            .map_err(|e| format!("{e:#}"))?;
    }
    // The `gojinn` host functions (and anything else) trap: see the module doc.
    linker
        .define_unknown_imports_as_traps(&module)
        .map_err(|e| format!("{e:#}"))?;

    let ran = async {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        if reactor && init != REACTOR_INIT {
            instance
                .get_typed_func::<(), ()>(&mut store, REACTOR_INIT)?
                .call_async(&mut store, ())
                .await?;
        }
        instance
            .get_typed_func::<(), ()>(&mut store, init)?
            .call_async(&mut store, ())
            .await?;
        wasmtime::Result::Ok(instance)
    }
    .await;
    let (kept, _) = stderr.take();
    if !kept.is_empty() {
        tracing::info!(
            target: "gojinn::snapshot",
            module = %spec.module.display(),
            stderr = %String::from_utf8_lossy(&kept).trim_end(),
            "the initialisation wrote to stderr"
        );
    }
    let instance = ran.map_err(|e| why_init_failed(&e, init))?;
    if !stdout.contents().is_empty() {
        return Err(format!(
            "its initialisation (`{init}`) wrote to stdout, which belongs to a request's \
             response; write to stderr instead"
        ));
    }
    let snapshot = wizer
        .snapshot(
            &cx,
            &mut Initialised {
                store: &mut store,
                instance,
            },
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
    without_spent_segments(&snapshot).map_err(|e| format!("cannot rewrite the snapshot: {e}"))
}

/// Whether a data segment is one of the empty passive segments wizer leaves in
/// place of the module's original active ones.
fn spent(segment: &wasmparser::Data<'_>) -> bool {
    matches!(segment.kind, wasmparser::DataKind::Passive) && segment.data.is_empty()
}

/// The snapshot without the spent segments ([`spent`]), when no instruction
/// names a data segment (`memory.init`, `data.drop`), so that nothing can tell
/// them apart; else the snapshot as it is.
///
/// wasmtime writes every data segment's bounds into each new instance: a Go
/// reactor's 45,000 spent segments cost it about 110 µs per request (15 % of
/// its call) when kept.
fn without_spent_segments(wasm: &[u8]) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    use wasmparser::{DataKind, Operator, Parser, Payload};

    let mut kept = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    if let Operator::MemoryInit { .. } | Operator::DataDrop { .. } = ops.read()? {
                        return Ok(wasm.to_vec());
                    }
                }
            }
            Payload::DataSection(reader) => {
                for segment in reader {
                    kept += u32::from(!spent(&segment?));
                }
            }
            _ => {}
        }
    }
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::DataCountSection { .. } => {
                module.section(&wasm_encoder::DataCountSection { count: kept });
            }
            Payload::DataSection(reader) => {
                let mut data = wasm_encoder::DataSection::new();
                for segment in reader {
                    let segment = segment?;
                    match segment.kind {
                        _ if spent(&segment) => {}
                        DataKind::Passive => {
                            data.passive(segment.data.iter().copied());
                        }
                        DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => {
                            let mut r = offset_expr.get_binary_reader();
                            let expr = r.read_bytes(r.bytes_remaining())?;
                            // The reader's bytes end with the `end` opcode,
                            // which `ConstExpr::raw` adds itself.
                            let expr = expr.strip_suffix(&[0x0b]).unwrap_or(expr);
                            let offset = wasm_encoder::ConstExpr::raw(expr.iter().copied());
                            data.active(memory_index, &offset, segment.data.iter().copied());
                        }
                    }
                }
                module.section(&data);
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    module.section(&wasm_encoder::RawSection {
                        id,
                        data: &wasm[range],
                    });
                }
            }
        }
    }
    Ok(module.finish())
}

/// Says in a user's terms why the initialisation did not complete.
fn why_init_failed(e: &wasmtime::Error, init: &str) -> String {
    if e.downcast_ref::<RandomDuringInit>().is_some() {
        return format!(
            "its initialisation (`{init}`) reads random bytes (`random_get`): every request \
             would start with the same random state (hash seeds, a language's random \
             generator), so a snapshot is refused. Standard Go seeds its runtime this way \
             at start, so Go modules cannot be snapshotted"
        );
    }
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return format!("its initialisation (`{init}`) exited with code {}", exit.0);
    }
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return format!("its initialisation (`{init}`) ran past the route's timeout");
    }
    format!("its initialisation (`{init}`) failed: {e:#}")
}

/// The instance after initialisation, as wizer reads it.
struct Initialised<'a> {
    store: &'a mut Store<Host>,
    instance: Instance,
}

impl InstanceState for Initialised<'_> {
    async fn global_get(&mut self, name: &str, _: ValType) -> SnapshotVal {
        // wizer names only the globals its instrumentation exported.
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer exports every global it reads");
        match global.get(&mut *self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => unreachable!("wizer refuses modules with reference-typed globals: {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer exports every memory it reads");
        contents(memory.data(&*self.store));
    }
}

#[cfg(test)]
mod tests {
    use super::without_spent_segments;

    fn segments(wasm: &[u8]) -> usize {
        wasmparser::Parser::new(0)
            .parse_all(wasm)
            .filter_map(|p| match p.expect("valid") {
                wasmparser::Payload::DataSection(r) => Some(r.count() as usize),
                _ => None,
            })
            .sum()
    }

    #[test]
    fn spent_segments_go_unless_an_instruction_names_a_segment() {
        let module = |body: &str| {
            wat::parse_str(format!(
                r#"(module (memory 1)
                     (data "") (data "") (data (i32.const 8) "kept") (data "passive")
                     (func (export "f") {body}))"#
            ))
            .expect("wat")
        };
        let plain = module("");
        let rewritten = without_spent_segments(&plain).expect("rewrite");
        wasmparser::Validator::new()
            .validate_all(&rewritten)
            .expect("still valid");
        assert_eq!((segments(&plain), segments(&rewritten)), (4, 2));

        let naming = module("(data.drop 1)");
        assert_eq!(without_spent_segments(&naming).expect("rewrite"), naming);
    }
}
