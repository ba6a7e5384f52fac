//! No input makes the parsers panic: every prefix of every golden file, and
//! deterministic mutations of them, go through both loaders. (The fuzz targets
//! search further; this keeps the basic promise in `cargo test`.)

use std::fs;
use std::path::Path;

use gojinn_config::{parse_caddyfile, parse_json};

/// Characters that matter to the lexer, the parser and the JSON walker.
const INTERESTING: &[char] = &[
    '{', '}', '"', '`', '\\', '#', '\n', '*', '/', '@', ':', ',', '$', '.', '[', ']', 'é', '\0',
];

fn fixtures() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut out = Vec::new();
    for dir in ["ok", "err"] {
        let mut entries: Vec<_> = fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "Caddyfile" || e == "json")
            })
            .collect();
        entries.sort();
        out.extend(entries.iter().filter_map(|p| fs::read_to_string(p).ok()));
    }
    assert!(out.len() > 20, "fixtures not found");
    out
}

fn both(src: &str) {
    let file = Path::new("fuzz/Caddyfile");
    let env = |k: &str| k.len().is_multiple_of(2).then(|| format!("{{${k}}}"));
    let _ = parse_caddyfile(src, file, &env);
    let _ = parse_json(src, Path::new("fuzz/config.json"));
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

#[test]
fn every_prefix_parses_without_panic() {
    for src in fixtures() {
        for (i, _) in src.char_indices() {
            both(src.get(..i).unwrap_or(""));
        }
        both(&src);
    }
}

#[test]
fn mutations_parse_without_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for src in fixtures() {
        for _ in 0..150 {
            let mut chars: Vec<char> = src.chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(chars.len() + 1);
                match rng.below(4) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
                    2 if at < chars.len() => {
                        let end = (at + rng.below(40)).min(chars.len());
                        let copy: Vec<char> = chars[at..end].to_vec();
                        let to = rng.below(chars.len() + 1);
                        chars.splice(to..to, copy);
                    }
                    _ => chars.insert(at, char::from(b' ' + (rng.below(95) as u8))),
                }
            }
            both(&chars.into_iter().collect::<String>());
        }
    }
}

#[test]
fn pathological_inputs() {
    both(&"{".repeat(50_000));
    both(&"}".repeat(1_000));
    both(&"[".repeat(50_000));
    both(&format!(":8080 {{\n{}}}", "handle /a* {\n".repeat(40)));
    both(&format!(
        ":8080 {{\n respond \"{}\"\n}}",
        "{env.X}".repeat(20_000)
    ));
    both(&format!(
        ":8080 {{\n gojinn ./a.wasm {{\n{}}}\n}}",
        "env A 1\n".repeat(5_000)
    ));
    both("\\");
    both("\"");
    both("`");
    both(":8080 { respond 99999999999999999999 }");
    both(":8080 { gojinn ./a.wasm { timeout 99999999999999999999999999999999999999h } }");
    both(":8080 { gojinn ./a.wasm { memory_limit 1.99999999999999999999999999999GiB } }");
}
