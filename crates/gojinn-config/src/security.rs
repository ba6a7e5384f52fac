//! The `security` block, global or inside a `gojinn` block:
//!
//! ```text
//! security {
//!     policy strict|audit
//!     trusted_key <64 hex digits> [<more keys>…]
//! }
//! ```

use crate::caddyfile::unexpected;
use crate::directives::{no_block, only_block, split};
use crate::error::{PResult, Pos, PosError};
use crate::model::{Security, SignaturePolicy};
use crate::names::hint;
use crate::tree::Node;
use crate::validate;

const SUBDIRECTIVES: &[&str] = &["policy", "trusted_key"];

/// Parses a `security` node (its name, no arguments, a block).
pub(crate) fn parse(node: &Node) -> PResult<Security> {
    let name = node.pos();
    let block = only_block(
        node,
        "`security` takes a block, e.g. `security { policy strict … }`",
        "security {\n    policy strict\n    trusted_key <hex>\n}",
    )?;
    let mut policy: Option<(SignaturePolicy, Pos)> = None;
    let mut keys: Vec<String> = Vec::new();
    for sub in &block.nodes {
        let (sub_name, sub_args) = split(sub)?;
        no_block(sub, &sub_name.text)?;
        match sub_name.text.as_str() {
            "policy" => {
                if let Some((_, first)) = policy {
                    return Err(PosError::new(
                        sub_name.pos,
                        format!(
                            "duplicate `policy` (first set at line {}, column {})",
                            first.line, first.col
                        ),
                    ));
                }
                let v = match sub_args {
                    [v] => v,
                    [] => {
                        return Err(PosError::new(
                            sub_name.pos,
                            "`policy` needs a value: `strict` or `audit`",
                        ))
                    }
                    [_, extra, ..] => return Err(unexpected(extra, "`policy` takes one value")),
                };
                let p = match v.text.as_str() {
                    "strict" => SignaturePolicy::Strict,
                    "audit" => SignaturePolicy::Audit,
                    other => {
                        return Err(PosError::new(
                            v.pos,
                            format!("invalid policy `{other}`: use `strict` or `audit`"),
                        ))
                    }
                };
                policy = Some((p, sub_name.pos));
            }
            "trusted_key" => {
                if sub_args.is_empty() {
                    return Err(PosError::new(
                        sub_name.pos,
                        "`trusted_key` needs a public key as 64 hex digits",
                    ));
                }
                for k in sub_args {
                    validate::trusted_key(&k.text).map_err(|e| PosError::new(k.pos, e))?;
                    keys.push(k.text.to_ascii_lowercase());
                }
            }
            other => {
                return Err(PosError::new(
                    sub_name.pos,
                    format!(
                        "unknown security sub-directive `{other}`{}",
                        hint(other, &[SUBDIRECTIVES])
                    ),
                ))
            }
        }
    }
    validate::has_trusted_keys(keys.len()).map_err(|e| PosError::new(name, e))?;
    Ok(Security {
        // Asking for signatures without saying how strictly means strictly.
        policy: policy.map_or(SignaturePolicy::Strict, |(p, _)| p),
        trusted_keys: keys,
    })
}
