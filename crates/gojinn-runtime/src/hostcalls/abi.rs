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
}

impl Family {
    /// `legacy` or `v1`, as in `docs/abi.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Legacy => "legacy",
            Family::V1 => "v1",
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

/// The Markdown table of every host function, as `docs/abi.md` holds it between
/// its `<!-- BEGIN host-functions -->` and `<!-- END host-functions -->` markers.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| function | parameters | result | family | what it does |\n|---|---|---|---|---|\n",
    );
    for f in super::HOST_FUNCTIONS {
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

/// `legacy` / `v1` in the table → [`Family`].
macro_rules! abi_family {
    (legacy) => {
        $crate::hostcalls::abi::Family::Legacy
    };
    (v1) => {
        $crate::hostcalls::abi::Family::V1
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

/// Registers one entry with the linker: `sync` with `func_wrap`, `async` with
/// `func_wrap_async`. The entry's `|caller, call|` names are bound to the
/// `Caller` and to the import name (for `fail` and the log).
macro_rules! abi_link {
    (sync $linker:ident $name:ident ($($p:ident: $t:ty),*) ($($ret:ty)?) $caller:ident $call:ident $body:block) => {
        $linker.func_wrap(
            $crate::hostcalls::abi::MODULE,
            stringify!($name),
            |caller: wasmtime::Caller<'_, $crate::function::Host>, $($p: $t),*| -> abi_ret!($($ret)?) {
                #[allow(unused_mut, unused_variables)]
                let mut $caller = caller;
                #[allow(unused_variables)]
                let $call: &'static str = stringify!($name);
                $body
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
                    let result: abi_ret!($($ret)?) = $body;
                    result
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
/// import name); it must evaluate to the declared result.
macro_rules! host_abi {
    ($(
        #[doc = $doc:literal]
        $family:ident $mode:ident fn $name:ident ($($p:ident: $t:ty),* $(,)?) $(-> $ret:ty)?
            = |$caller:ident, $call:ident| $body:block
    )*) => {
        /// Every function of the `gojinn` import module, in the order of
        /// `docs/abi.md`: what [`add_to_linker`] links, with its signature.
        pub const HOST_FUNCTIONS: &[$crate::hostcalls::abi::HostFn] = &[$(
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
