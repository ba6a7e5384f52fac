//! `handle_errors [<status>…] { … }`: a site-level block of routes run when a
//! request failed, with `{err.status_code}`, `{err.status_text}` and
//! `{err.message}` placeholders.

use std::path::Path;

use crate::caddyfile::Ctx;
use crate::directives::{self, split, Mode};
use crate::error::{PResult, PosError};
use crate::handlers::ErrorRoutes;
use crate::tree::Node;

/// Parses one `handle_errors` block.
pub(crate) fn parse(cx: &mut Ctx<'_>, node: &Node, root: &Path) -> PResult<ErrorRoutes> {
    let (name, args) = split(node)?;
    let mut status = Vec::new();
    for a in args {
        check_status(&a.text).map_err(|e| PosError::new(a.pos, e))?;
        status.push(a.text.to_ascii_lowercase());
    }
    let Some(body) = &node.block else {
        return Err(PosError::new(
            name.pos,
            "`handle_errors` needs a block, e.g. `handle_errors { respond \"{err.status_code} {err.status_text}\" }`",
        ));
    };
    let outer = std::mem::replace(&mut cx.in_errors, true);
    let routes = directives::block(cx, &body.nodes, root, Mode::Sorted);
    cx.in_errors = outer;
    Ok(ErrorRoutes {
        status,
        routes: routes?,
    })
}

/// A status filter: a code from 400 to 599, or `4xx` / `5xx`.
pub(crate) fn check_status(s: &str) -> Result<(), String> {
    let lower = s.to_ascii_lowercase();
    let ok = matches!(lower.as_str(), "4xx" | "5xx")
        || (s.len() == 3 && s.parse::<u16>().is_ok_and(|n| (400..=599).contains(&n)));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid error status `{s}`: use a status from 400 to 599, `4xx` or `5xx`"
        ))
    }
}
