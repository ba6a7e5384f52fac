//! The host ABI table (`gojinn_runtime::HOST_FUNCTIONS`) against everything that
//! restates it. Each check names the function or code that differs.
//!
//! How complete each guest-side declaration must be:
//! - `crates/gojinn-sdk/c/gojinn.h`: **every** legacy and v1 entry (C guests
//!   may be ports of Gojinn functions and use the original calls); the
//!   `unavailable` stubs need not be (they only fail).
//! - the Rust SDK's `sys.rs`: **every v1 entry**; legacy entries are optional (the
//!   SDK is written against v1 and uses only `host_log` of the original calls),
//!   but any it declares must match.
//! - the Go example package: a **subset** (it is an example and imports only
//!   `host_log`); each import it declares must be in the table with the same
//!   signature.

use crate::support::{runtime, spec, Scratch};
use gojinn_runtime::{AbiType, Family, HostFn, LoadError, HOST_FUNCTIONS, HOST_VARIANTS};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A signature as the parsers see it: parameter types and result type, spelled
/// `i32` / `i64`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sig {
    params: Vec<&'static str>,
    result: Option<&'static str>,
}

impl std::fmt::Display for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({})", self.params.join(", "))?;
        if let Some(r) = self.result {
            write!(f, " -> {r}")?;
        }
        Ok(())
    }
}

fn table_sig(f: &HostFn) -> Sig {
    Sig {
        params: f.params().iter().map(|p| p.ty().as_str()).collect(),
        result: f.result().map(AbiType::as_str),
    }
}

fn repo_file(rel: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

/// How much of the table a file must declare.
#[derive(Clone, Copy)]
enum Required {
    Every,
    EveryV1,
    Subset,
}

/// Compares `declared` with the table; every difference, named.
fn differences(file: &str, declared: &BTreeMap<String, Sig>, required: Required) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, sig) in declared {
        match HOST_FUNCTIONS.iter().find(|f| f.name() == name) {
            None => problems.push(format!(
                "{file} imports `{name}`, which is not in the host ABI table"
            )),
            Some(f) if table_sig(f) != *sig => problems.push(format!(
                "{file} declares `{name}` as {sig}, the table says {}",
                table_sig(f)
            )),
            Some(_) => {}
        }
    }
    for f in HOST_FUNCTIONS {
        let needed = match required {
            Required::Every => f.family() != Family::Unavailable,
            Required::EveryV1 => f.family() == Family::V1,
            Required::Subset => false,
        };
        if needed && !declared.contains_key(f.name()) {
            problems.push(format!(
                "{file} does not declare `{}` {}",
                f.name(),
                table_sig(f)
            ));
        }
    }
    problems
}

fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

// --- Parsers. Text, not a compiler: each understands the one style its file uses
// and fails loudly on anything else, so a new style is noticed. ---

fn c_type(t: &str) -> Result<&'static str, String> {
    let t = t.trim();
    if t.contains('*') {
        return Ok("i32"); // wasm32: a pointer is an i32 offset
    }
    let base = t
        .split_whitespace()
        .find(|w| *w != "const")
        .unwrap_or_default();
    match base {
        "int32_t" | "uint32_t" => Ok("i32"),
        "int64_t" | "uint64_t" => Ok("i64"),
        other => Err(format!("C type `{other}` has no mapping in this test")),
    }
}

/// `GOJINN_IMPORT("name")` followed by a prototype.
fn parse_c_header(text: &str) -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    for chunk in text.split("GOJINN_IMPORT(\"").skip(1) {
        let (name, rest) = chunk.split_once("\")").expect("GOJINN_IMPORT(\"name\")");
        let proto = rest.split(';').next().unwrap_or_default();
        let (head, params) = proto.split_once('(').expect("a prototype after the import");
        let params = params.rsplit_once(')').expect("closing paren").0;
        let ret = head
            .trim()
            .rsplit_once(char::is_whitespace)
            .expect("type name")
            .0;
        let result = match ret.trim() {
            "void" => None,
            t => Some(c_type(t).unwrap_or_else(|e| panic!("`{name}` result: {e}"))),
        };
        let params = match params.trim() {
            "" | "void" => Vec::new(),
            ps => ps
                .split(',')
                .map(|p| {
                    // The type is everything but the parameter's name.
                    let ty = if p.contains('*') {
                        "*"
                    } else {
                        p.trim()
                            .rsplit_once(char::is_whitespace)
                            .map_or(p, |(t, _)| t)
                    };
                    c_type(ty).unwrap_or_else(|e| panic!("`{name}` parameter `{p}`: {e}"))
                })
                .collect(),
        };
        out.insert(name.to_owned(), Sig { params, result });
    }
    out
}

fn rust_type(t: &str) -> Result<&'static str, String> {
    let t = t.trim();
    if t.starts_with("*const") || t.starts_with("*mut") {
        return Ok("i32");
    }
    match t {
        "i32" | "u32" => Ok("i32"),
        "i64" | "u64" => Ok("i64"),
        other => Err(format!("Rust type `{other}` has no mapping in this test")),
    }
}

/// The `extern "C"` block under `#[link(wasm_import_module = "gojinn")]`.
fn parse_rust_extern(text: &str) -> BTreeMap<String, Sig> {
    let (_, after) = text
        .split_once("wasm_import_module = \"gojinn\"")
        .expect("a #[link(wasm_import_module = \"gojinn\")] block");
    let block = after
        .split_once('{')
        .and_then(|(_, b)| b.split_once('}'))
        .expect("an extern block")
        .0;
    let mut out = BTreeMap::new();
    for item in block.split(';').filter(|i| i.contains("fn ")) {
        let (_, sig) = item.split_once("fn ").expect("fn");
        let (name, rest) = sig.split_once('(').expect("parameters");
        let (params, tail) = rest.rsplit_once(')').expect("closing paren");
        let name = name.trim();
        let params = params
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let (_, ty) = p.split_once(':').expect("name: type");
                rust_type(ty).unwrap_or_else(|e| panic!("`{name}` parameter `{p}`: {e}"))
            })
            .collect();
        let result = tail
            .split_once("->")
            .map(|(_, r)| rust_type(r).unwrap_or_else(|e| panic!("`{name}` result: {e}")));
        out.insert(name.to_owned(), Sig { params, result });
    }
    out
}

fn go_type(t: &str) -> Result<&'static str, String> {
    let t = t.trim();
    if t.starts_with('*') {
        return Ok("i32");
    }
    match t {
        "int32" | "uint32" | "unsafe.Pointer" | "uintptr" => Ok("i32"),
        "int64" | "uint64" => Ok("i64"),
        other => Err(format!("Go type `{other}` has no mapping in this test")),
    }
}

/// `//go:wasmimport gojinn name` and the `func` line after it.
fn parse_go_imports(text: &str) -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("//go:wasmimport ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        if words.next() != Some("gojinn") {
            continue;
        }
        let name = words.next().expect("an import name").to_owned();
        let func = lines.next().expect("a func after //go:wasmimport");
        let (_, sig) = func.split_once('(').expect("parameters");
        let (params, result) = sig.rsplit_once(')').expect("closing paren");
        // Go lets `a, b int32` share a type: names wait for the next type.
        let mut types = Vec::new();
        let mut waiting = 0;
        for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.split_once(char::is_whitespace) {
                Some((_, ty)) => {
                    let ty = go_type(ty).unwrap_or_else(|e| panic!("`{name}`: {e}"));
                    types.extend(std::iter::repeat_n(ty, waiting + 1));
                    waiting = 0;
                }
                None => waiting += 1,
            }
        }
        let result = match result.trim().trim_end_matches('{').trim() {
            "" => None,
            r => Some(go_type(r).unwrap_or_else(|e| panic!("`{name}` result: {e}"))),
        };
        out.insert(
            name,
            Sig {
                params: types,
                result,
            },
        );
    }
    out
}

/// `pub const NAME: i64 = -N;` inside `pub mod code { … }`.
fn parse_rust_codes(text: &str) -> BTreeMap<String, i64> {
    let (_, after) = text
        .split_once("pub mod code {")
        .expect("a `pub mod code` block");
    let block = after.split_once('}').expect("end of the block").0;
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .map(|l| {
            let (name, rest) = l.split_once(':').expect("NAME: i64");
            let value = rest.split_once('=').expect("= value").1;
            let value = value.trim().trim_end_matches(';').trim();
            (
                name.trim().to_owned(),
                value.parse().expect("an integer code"),
            )
        })
        .collect()
}

#[test]
fn every_entry_links_through_runtime_load() {
    let imports: String = HOST_FUNCTIONS
        .iter()
        .map(|f| f.wat_import() + "\n")
        .collect();
    let wat =
        format!("(module\n{imports}(memory (export \"memory\") 1)\n(func (export \"_start\")))\n");
    let dir = Scratch::new("abi-link");
    let path = dir.path().join("every.wat");
    std::fs::write(&path, &wat).expect("write module");
    let rt = runtime();
    if let Err(e) = rt.load(spec(path)) {
        panic!("a module importing every table entry does not load: {e}\n{wat}");
    }
}

/// The control for the test above: the linker does check names and types, so a
/// table that drifted from the registrations could not pass it.
#[test]
fn a_wrong_name_or_type_does_not_link() {
    let dir = Scratch::new("abi-bad");
    let rt = runtime();
    // An entry returning i64 whose i32 form is not one of Gojinn's variants.
    let f = HOST_FUNCTIONS
        .iter()
        .find(|f| {
            f.result() == Some(AbiType::I64)
                && !HOST_VARIANTS
                    .iter()
                    .any(|v| v.name() == f.name() && v.result() == Some(AbiType::I32))
        })
        .expect("an entry returning i64");
    let wrong_type = f.wat_import().replace("(result i64)", "(result i32)");
    let unknown = r#"(import "gojinn" "host_teleport" (func (param i32)))"#.to_owned();
    for (import, named) in [(wrong_type, f.name()), (unknown, "host_teleport")] {
        let path = dir.path().join(format!("{named}.wat"));
        std::fs::write(
            &path,
            format!("(module {import} (memory (export \"memory\") 1) (func (export \"_start\")))"),
        )
        .expect("write module");
        match rt.load(spec(path)) {
            Err(LoadError::Link { detail, .. }) => {
                assert!(
                    detail.contains(named),
                    "link error does not name `{named}`: {detail}"
                )
            }
            Err(e) => panic!("expected a link error for `{named}`, got: {e}"),
            Ok(_) => panic!("`{import}` linked"),
        }
    }
}

#[test]
fn c_header_declares_every_entry() {
    let (_, text) = repo_file("crates/gojinn-sdk/c/gojinn.h");
    let declared = parse_c_header(&text);
    assert!(declared.len() > 1, "no GOJINN_IMPORT found in gojinn.h");
    assert_none(differences("gojinn.h", &declared, Required::Every));
}

#[test]
fn rust_sdk_declares_every_v1_entry() {
    let (_, text) = repo_file("crates/gojinn-sdk/src/sys.rs");
    let declared = parse_rust_extern(&text);
    assert!(declared.len() > 1, "no extern fn found in sys.rs");
    assert_none(differences(
        "gojinn-sdk/src/sys.rs",
        &declared,
        Required::EveryV1,
    ));
}

#[test]
fn go_package_imports_are_in_the_table() {
    let (_, text) = repo_file("examples/go-hello/gojinn/host_wasm.go");
    let declared = parse_go_imports(&text);
    assert!(
        declared.contains_key("host_log"),
        "the Go package no longer imports host_log: is the parser still reading it?"
    );
    assert_none(differences(
        "examples/go-hello/gojinn/host_wasm.go",
        &declared,
        Required::Subset,
    ));
}

/// Each variant is another signature of a table entry (never a new name, never
/// the entry's own signature), and a module importing it loads.
#[test]
fn every_variant_is_another_signature_of_an_entry_and_links() {
    let dir = Scratch::new("abi-variants");
    let rt = runtime();
    assert!(!HOST_VARIANTS.is_empty());
    for (i, v) in HOST_VARIANTS.iter().enumerate() {
        let entry = HOST_FUNCTIONS
            .iter()
            .find(|f| f.name() == v.name())
            .unwrap_or_else(|| panic!("variant `{}` names no table entry", v.name()));
        assert_ne!(
            table_sig(entry),
            table_sig(v),
            "variant `{}` repeats the entry's signature",
            v.name()
        );
        let path = dir.path().join(format!("variant-{i}.wat"));
        std::fs::write(
            &path,
            format!(
                "(module {} (memory (export \"memory\") 1) (func (export \"_start\")))",
                v.wat_import()
            ),
        )
        .expect("write module");
        if let Err(e) = rt.load(spec(path)) {
            panic!(
                "a module importing the variant `{}` does not load: {e}",
                v.wat_import()
            );
        }
    }
}

/// The Go test guest (tests/guest-go) declares Gojinn's own signatures; each
/// must be an entry or a variant, and its `host_kv_get` is the Go SDK's
/// `uint32` one, so the end-to-end tests exercise the variant.
#[test]
fn go_test_guest_imports_are_entries_or_variants() {
    let (_, text) = repo_file("tests/guest-go/sdk/sdk.go");
    let declared = parse_go_imports(&text);
    assert_eq!(
        declared
            .get("host_kv_get")
            .map(ToString::to_string)
            .as_deref(),
        Some("(i32, i32, i32, i32) -> i32"),
        "the Go guest must declare the SDK's uint32 host_kv_get"
    );
    for (name, sig) in &declared {
        let known = HOST_FUNCTIONS
            .iter()
            .chain(HOST_VARIANTS)
            .any(|f| f.name() == name && table_sig(f) == *sig);
        assert!(
            known,
            "tests/guest-go declares `{name}` as {sig}, which is neither an entry nor a variant"
        );
    }
}

/// The parsers themselves can tell a wrong declaration from a right one.
#[test]
fn the_parsers_see_a_wrong_declaration() {
    let c = parse_c_header(
        "GOJINN_IMPORT(\"host_kv_delete\")\nint64_t gojinn_kv_delete(const char *key, int32_t key_len);\n\
         GOJINN_IMPORT(\"host_teleport\")\nvoid gojinn_teleport(void);",
    );
    let problems = differences("t.h", &c, Required::Subset);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("`host_kv_delete` as (i32, i32) -> i64"),
        "{problems:?}"
    );
    assert!(problems[1].contains("`host_teleport`"), "{problems:?}");

    let rust = parse_rust_extern(
        "#[link(wasm_import_module = \"gojinn\")]\nextern \"C\" {\n fn host_unlock_v1(kp: *const u8, kl: i32) -> i32;\n}",
    );
    let problems = differences("sys.rs", &rust, Required::EveryV1);
    assert!(
        !problems.iter().any(|p| p.contains("host_unlock_v1")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("does not declare `host_lock_v1`")),
        "{problems:?}"
    );

    let go = parse_go_imports(
        "//go:wasmimport gojinn host_log\nfunc hostLog(level, ptr int32, n int64)\n",
    );
    assert_eq!(go["host_log"].params, ["i32", "i32", "i64"]);
    assert_eq!(differences("go", &go, Required::Subset).len(), 1);
}

const BEGIN: &str = "<!-- BEGIN host-functions";
const END: &str = "<!-- END host-functions -->";

/// The generated table in `docs/abi.md`: (text before, table, text after).
fn docs_table(text: &str) -> (&str, &str, &str) {
    let start = text
        .find(BEGIN)
        .expect("docs/abi.md has a `<!-- BEGIN host-functions` marker");
    let body = start + text[start..].find('\n').expect("marker line") + 1;
    let end = text[body..]
        .find(END)
        .expect("docs/abi.md has the END marker")
        + body;
    (&text[..body], &text[body..end], &text[end..])
}

#[test]
fn docs_table_is_generated_from_the_abi() {
    let (path, text) = repo_file("docs/abi.md");
    let (before, table, after) = docs_table(&text);
    let expected = gojinn_runtime::abi_markdown_table();
    if table == expected {
        return;
    }
    if std::env::var_os("GOJINN_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{before}{expected}{after}")).expect("write docs/abi.md");
        return;
    }
    panic!(
        "the host function table in docs/abi.md is not the one the ABI declares.\n\
         Regenerate it with `GOJINN_BLESS=1 cargo test -p gojinn-runtime --test all abi`, \
         or paste this between the markers:\n\n{expected}"
    );
}

/// Every entry has its detailed row in docs/abi.md, outside the generated table.
#[test]
fn docs_detail_every_entry() {
    let (_, text) = repo_file("docs/abi.md");
    let (before, _, after) = docs_table(&text);
    let prose = format!("{before}{after}");
    let missing: Vec<_> = HOST_FUNCTIONS
        .iter()
        .map(HostFn::name)
        .filter(|n| !prose.contains(&format!("| `{n}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/abi.md has no `| `name` |` detail row for {missing:?}"
    );
}

#[test]
fn result_codes_agree() {
    let (_, host) = repo_file("crates/gojinn-host/src/lib.rs");
    let host = parse_rust_codes(&host);
    assert_eq!(
        host.get("DENIED"),
        Some(&gojinn_host::code::DENIED),
        "parser misread the host codes"
    );

    let (_, sdk) = repo_file("crates/gojinn-sdk/src/error.rs");
    let sdk = parse_rust_codes(&sdk);

    let (_, header) = repo_file("crates/gojinn-sdk/c/gojinn.h");
    let c: BTreeMap<String, i64> = header
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#define GOJINN_"))
        .filter_map(|l| {
            let (name, value) = l.split_once(char::is_whitespace)?;
            let value: i64 = value.trim().trim_matches(['(', ')']).parse().ok()?;
            // Result codes are the negative ones (log levels are not).
            (value < 0).then(|| (name.to_owned(), value))
        })
        .collect();

    let (_, docs) = repo_file("docs/abi.md");
    let docs: BTreeMap<String, i64> = docs
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let value: i64 = cells.get(1)?.parse().ok()?;
            let name = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            (value < 0).then(|| (name.to_owned(), value))
        })
        .collect();

    assert!(host.len() > 1, "no codes parsed from gojinn-host");
    for (what, codes) in [
        ("the Rust SDK", &sdk),
        ("gojinn.h", &c),
        ("docs/abi.md", &docs),
    ] {
        assert_eq!(
            codes, &host,
            "the result codes of {what} differ from gojinn_host::code"
        );
    }
}
