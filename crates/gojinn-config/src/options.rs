//! The lines of a directive's options block (`encode { … }`, `transport http
//! { … }`): each a known option, given once, with no block of its own.

use crate::directives::{first_time, no_block, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::Token;
use crate::names::hint;
use crate::tree::Node;

/// The name and arguments of `line`, an option of the `what` block. An option
/// in `unsupported` (Caddy has it, gojinn does not) is refused by name; any
/// other unknown one gets a hint. `seen` holds the options read so far.
pub(crate) fn option<'n>(
    line: &'n Node,
    what: &str,
    known: &[&'static str],
    unsupported: &[&'static str],
    seen: &mut Vec<(&'n str, Pos)>,
) -> PResult<(&'n Token, &'n [Token])> {
    let (key, args) = split(line)?;
    let k = key.text.as_str();
    if !known.contains(&k) {
        let message = if unsupported.contains(&k) {
            format!("{what} sub-directive `{k}` is not supported by gojinn")
        } else {
            format!(
                "unknown {what} sub-directive `{k}`{}",
                hint(k, &[known, unsupported])
            )
        };
        return Err(PosError::new(key.pos, message));
    }
    first_time(seen, k, key.pos, |first| {
        format!(
            "duplicate `{k}` (first set at line {}, column {})",
            first.line, first.col
        )
    })?;
    no_block(line, k)?;
    Ok((key, args))
}
