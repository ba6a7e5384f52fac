//! What the `gojinn` import module declares, as data: the public list
//! [`HOST_FUNCTIONS`](super::HOST_FUNCTIONS) and the Markdown table of
//! `docs/abi.md`, both produced by [`host_abi!`] from the one table in
//! `hostcalls/mod.rs`.

use std::fmt::Write as _;

/// The import module every host function lives in.
pub(crate) const MODULE: &str = "gojinn";

/// A WebAssembly value type used by the ABI (pointers and lengths are `i32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbiType {
    /// `i32`: pointers, lengths, flags and most status results.
    I32,
    /// `i64`: byte counts that may exceed a buffer, row counts, TTLs in milliseconds.
    I64,
}

impl AbiType {
    /// The type as written in `.wat` and in `docs/abi.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            AbiType::I32 => "i32",
            AbiType::I64 => "i64",
        }
    }
}

impl std::fmt::Display for AbiType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Rust types a host function's parameters and results may have, and the
/// ABI type each one is; the table names Rust types so the linker closures and
/// the list cannot disagree.
pub(crate) trait AbiValue {
    const TYPE: AbiType;
}

impl AbiValue for i32 {
    const TYPE: AbiType = AbiType::I32;
}

impl AbiValue for i64 {
    const TYPE: AbiType = AbiType::I64;
}

/// Which result convention a host function follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Gojinn's original functions: their exact signatures and results (`-1`/`0`
    /// on failure, details only in the log and `host_last_error`).
    Legacy,
    /// ABI v1: `>= 0` on success or a negative [`gojinn_host::code`].
    V1,
    /// Gojinn functions this server does not provide (S3, AI, WebSockets, the
    /// job queue). Linked so a module that imports them loads and serves its
    /// other paths; every call returns Gojinn's failure value and logs a
    /// warning, and `gojinn validate` names each such import.
    Unavailable,
}

impl Family {
    /// `legacy`, `v1` or `unavailable`, as in `docs/abi.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Legacy => "legacy",
            Family::V1 => "v1",
            Family::Unavailable => "unavailable",
        }
    }
}

/// One parameter of a host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub(crate) name: &'static str,
    pub(crate) ty: AbiType,
}

impl Param {
    /// The parameter's name in the table (`k_ptr`, `out_max`…).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its wasm type.
    pub fn ty(&self) -> AbiType {
        self.ty
    }
}

/// One function of the `gojinn` import module, as linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFn {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [Param],
    pub(crate) result: Option<AbiType>,
    pub(crate) family: Family,
    pub(crate) doc: &'static str,
}

impl HostFn {
    /// The import name (`host_kv_get_v1`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its parameters, in order.
    pub fn params(&self) -> &'static [Param] {
        self.params
    }

    /// Its result type; `None` for a function that returns nothing.
    pub fn result(&self) -> Option<AbiType> {
        self.result
    }

    /// Its result convention.
    pub fn family(&self) -> Family {
        self.family
    }

    /// One line saying what it does.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    /// Whether a module's import of this name has exactly this signature.
    pub fn matches(&self, ty: &wasmtime::FuncType) -> bool {
        let is = |abi: AbiType, v: wasmtime::ValType| {
            matches!(
                (abi, v),
                (AbiType::I32, wasmtime::ValType::I32) | (AbiType::I64, wasmtime::ValType::I64)
            )
        };
        ty.params().len() == self.params.len()
            && ty.params().zip(self.params).all(|(v, p)| is(p.ty, v))
            && ty.results().len() == usize::from(self.result.is_some())
            && ty.results().zip(self.result).all(|(v, r)| is(r, v))
    }

    /// The import as `.wat` text, the function bound to `$name`:
    /// `(import "gojinn" "name" (func $name (param …) (result …)))`.
    pub fn wat_import(&self) -> String {
        let mut s = format!("(import \"{MODULE}\" \"{0}\" (func ${0}", self.name);
        if !self.params.is_empty() {
            s.push_str(" (param");
            for p in self.params {
                s.push(' ');
                s.push_str(p.ty.as_str());
            }
            s.push(')');
        }
        if let Some(r) = self.result {
            let _ = write!(s, " (result {r})");
        }
        s.push_str("))");
        s
    }
}

/// The Markdown tables of every host function and of the other signatures
/// linked for Gojinn modules, as `docs/abi.md` holds them between its
/// `<!-- BEGIN host-functions -->` and `<!-- END host-functions -->` markers.
pub fn markdown_table() -> String {
    let mut out = rows(super::HOST_FUNCTIONS);
    out.push_str(
        "\nOther signatures of the same imports, from earlier Gojinn releases: a module \
         that imports one of these gets it instead of the entry above.\n\n",
    );
    out.push_str(&rows(super::HOST_VARIANTS));
    out
}

fn rows(functions: &[HostFn]) -> String {
    let mut out = String::from(
        "| function | parameters | result | family | what it does |\n|---|---|---|---|---|\n",
    );
    for f in functions {
        let params = f
            .params
            .iter()
            .map(|p| format!("{} {}", p.name, p.ty))
            .collect::<Vec<_>>()
            .join(", ");
        let params = if params.is_empty() {
            "none".to_owned()
        } else {
            format!("`{params}`")
        };
        let result = f.result.map_or("none", AbiType::as_str);
        let result = if f.result.is_some() {
            format!("`{result}`")
        } else {
            result.to_owned()
        };
        // A `|` in a summary would end its cell.
        let doc = f.doc().replace('|', "\\|");
        let _ = writeln!(
            out,
            "| `{}` | {params} | {result} | {} | {doc} |",
            f.name,
            f.family.as_str()
        );
    }
    out
}

/// What an entry's body may evaluate to: its declared result, or that result in
/// a `wasmtime::Result`, whose error traps the guest (for the few failures an
/// original Gojinn signature cannot report).
pub(crate) trait IntoWasm<T> {
    fn into_wasm(self) -> wasmtime::Result<T>;
}

impl IntoWasm<i32> for i32 {
    fn into_wasm(self) -> wasmtime::Result<i32> {
        Ok(self)
    }
}

impl IntoWasm<i64> for i64 {
    fn into_wasm(self) -> wasmtime::Result<i64> {
        Ok(self)
    }
}

impl IntoWasm<()> for () {
    fn into_wasm(self) -> wasmtime::Result<()> {
        Ok(self)
    }
}

impl<T> IntoWasm<T> for wasmtime::Result<T> {
    fn into_wasm(self) -> wasmtime::Result<T> {
        self
    }
}

/// `legacy` / `v1` / `unavailable` in the table → [`Family`].
macro_rules! abi_family {
    (legacy) => {
        $crate::hostcalls::abi::Family::Legacy
    };
    (v1) => {
        $crate::hostcalls::abi::Family::V1
    };
    (unavailable) => {
        $crate::hostcalls::abi::Family::Unavailable
    };
}

/// The declared result type, `()` when there is none.
macro_rules! abi_ret {
    () => {
        ()
    };
    ($t:ty) => {
        $t
    };
}

/// The declared result as an [`AbiType`].
macro_rules! abi_result {
    () => {
        None
    };
    ($t:ty) => {
        Some(<$t as $crate::hostcalls::abi::AbiValue>::TYPE)
    };
}

/// The [`HostFn`] of one table entry (shared by [`host_abi!`] and
/// [`host_abi_variants!`]).
macro_rules! abi_host_fn {
    ($doc:literal $family:ident $name:ident ($($p:ident: $t:ty),*) ($($ret:ty)?)) => {
        $crate::hostcalls::abi::HostFn {
            name: stringify!($name),
            params: &[$($crate::hostcalls::abi::Param {
                name: stringify!($p),
                ty: <$t as $crate::hostcalls::abi::AbiValue>::TYPE,
            }),*],
            result: abi_result!($($ret)?),
            family: abi_family!($family),
            doc: $doc,
        }
    };
}

/// Registers one entry with the linker: `sync` with `func_wrap`, `async` with
/// `func_wrap_async`. The entry's `|caller, call|` names are bound to the
/// `Caller` and to the import name (for `fail` and the log).
macro_rules! abi_link {
    (sync $linker:ident $name:ident ($($p:ident: $t:ty),*) ($($ret:ty)?) $caller:ident $call:ident $body:block) => {
        $linker.func_wrap(
            $crate::hostcalls::abi::MODULE,
            stringify!($name),
            |caller: wasmtime::Caller<'_, $crate::function::Host>, $($p: $t),*| -> wasmtime::Result<abi_ret!($($ret)?)> {
                #[allow(unused_mut, unused_variables)]
                let mut $caller = caller;
                #[allow(unused_variables)]
                let $call: &'static str = stringify!($name);
                // A stub may ignore its parameters.
                $(let _ = &$p;)*
                // Called in place, so a `return` in the body leaves the body.
                #[allow(clippy::redundant_closure_call, clippy::let_unit_value)]
                let result = (|| $body)();
                $crate::hostcalls::abi::IntoWasm::<abi_ret!($($ret)?)>::into_wasm(result)
            },
        )?;
    };
    (async $linker:ident $name:ident ($($p:ident: $t:ty),*) ($($ret:ty)?) $caller:ident $call:ident $body:block) => {
        $linker.func_wrap_async(
            $crate::hostcalls::abi::MODULE,
            stringify!($name),
            |caller: wasmtime::Caller<'_, $crate::function::Host>, ($($p,)*): ($($t,)*)| {
                Box::new(async move {
                    #[allow(unused_mut)]
                    let mut $caller = caller;
                    #[allow(unused_variables)]
                    let $call: &'static str = stringify!($name);
                    $(let _ = &$p;)*
                    // Awaited in place, so a `return` in the body leaves the body.
                    #[allow(clippy::let_unit_value)]
                    let result = async { $body }.await;
                    $crate::hostcalls::abi::IntoWasm::<abi_ret!($($ret)?)>::into_wasm(result)
                })
            },
        )?;
    };
}

/// The one declaration of the host ABI. Each entry is
///
/// ```text
/// /// One line saying what it does (becomes the docs table's last column).
/// <legacy|v1> <sync|async> fn host_name(a: i32, b: i64) -> i64 = |caller, call| { body }
/// ```
///
/// and yields a [`HostFn`] in `HOST_FUNCTIONS` and a linker registration in
/// `add_to_linker`. A body runs with `caller: Caller<Host>` and `call` (the
/// import name); it evaluates to the declared result, or to a
/// `wasmtime::Result` of it whose error traps the guest.
macro_rules! host_abi {
    ($(
        #[doc = $doc:literal]
        $family:ident $mode:ident fn $name:ident ($($p:ident: $t:ty),* $(,)?) $(-> $ret:ty)?
            = |$caller:ident, $call:ident| $body:block
    )*) => {
        /// Every function of the `gojinn` import module, in the order of
        /// `docs/abi.md`: what [`add_to_linker`] links, with its signature.
        pub const HOST_FUNCTIONS: &[$crate::hostcalls::abi::HostFn] = &[$(
            abi_host_fn!($doc $family $name ($($p: $t),*) ($($ret)?))
        ),*];

        /// Links every function of [`HOST_FUNCTIONS`].
        pub(crate) fn add_to_linker(
            linker: &mut wasmtime::Linker<$crate::function::Host>,
        ) -> wasmtime::Result<()> {
            $(abi_link!($mode linker $name ($($p: $t),*) ($($ret)?) $caller $call $body);)*
            Ok(())
        }
    };
}

/// Other signatures Gojinn gave the same imports in earlier releases, declared
/// like [`host_abi!`] entries. Yields `HOST_VARIANTS` and `add_variant_to_linker`,
/// which links one of them (replacing the main entry of that name) into a copy
/// of the linker made for a module that imports it.
macro_rules! host_abi_variants {
    ($(
        #[doc = $doc:literal]
        $family:ident $mode:ident fn $name:ident ($($p:ident: $t:ty),* $(,)?) $(-> $ret:ty)?
            = |$caller:ident, $call:ident| $body:block
    )*) => {
        /// Other signatures of [`HOST_FUNCTIONS`] entries, from earlier Gojinn
        /// releases: a module importing one of these gets it instead.
        pub const HOST_VARIANTS: &[$crate::hostcalls::abi::HostFn] = &[$(
            abi_host_fn!($doc $family $name ($($p: $t),*) ($($ret)?))
        ),*];

        /// Links `variant` (an entry of [`HOST_VARIANTS`]) into `linker`, which
        /// must allow shadowing.
        pub(crate) fn add_variant_to_linker(
            linker: &mut wasmtime::Linker<$crate::function::Host>,
            variant: &$crate::hostcalls::abi::HostFn,
        ) -> wasmtime::Result<()> {
            $(
                if variant.name == stringify!($name)
                    && variant.params.iter().map(|p| p.ty).eq([$(<$t as $crate::hostcalls::abi::AbiValue>::TYPE),*])
                    && variant.result == abi_result!($($ret)?)
                {
                    abi_link!($mode linker $name ($($p: $t),*) ($($ret)?) $caller $call $body);
                    return Ok(());
                }
            )*
            Err(wasmtime::Error::msg(format!("`{}` is not a variant of the host ABI", variant.name)))
        }
    };
}
