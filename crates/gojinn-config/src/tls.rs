//! The `tls <cert.pem> <key.pem>` site directive. Gojinn serves certificates it
//! is given; it does not obtain them (no ACME, no internal CA).

use std::path::Path;

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::split;
use crate::error::{PResult, PosError};
use crate::model::Tls;
use crate::tree::Node;
use crate::{paths, validate};

/// The hint every refused automatic form ends with.
const GIVE_FILES: &str = "automatic certificate issuance is not supported by gojinn; \
     give a certificate and its key as PEM files, e.g. `tls cert.pem key.pem` \
     (from certbot or your own CA)";

/// Parses one `tls` directive; paths resolve against the config file's directory.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Tls> {
    let (name, args) = split(node)?;
    if let Some(b) = &node.block {
        return Err(PosError::new(
            b.open,
            "`tls` options blocks are not supported by gojinn: give a certificate and its key as PEM files, e.g. `tls cert.pem key.pem`",
        ));
    }
    let (cert, key) = match args {
        [] => {
            return Err(PosError::new(
                name.pos,
                format!("`tls` without files: {GIVE_FILES}"),
            ))
        }
        [one] if one.text == "internal" => {
            return Err(PosError::new(
                one.pos,
                format!("`tls internal` (a locally issued certificate): {GIVE_FILES}"),
            ))
        }
        [one] if one.text.contains('@') => {
            return Err(PosError::new(
                one.pos,
                format!("`tls {}` (an ACME account email): {GIVE_FILES}", one.text),
            ))
        }
        [one] => {
            return Err(PosError::new(
                one.pos,
                format!(
                    "`tls {}` has no key file: write `tls cert.pem key.pem`",
                    one.text
                ),
            ))
        }
        [cert, key] => (cert, key),
        [_, _, extra, ..] => {
            return Err(unexpected(
                extra,
                "`tls` takes a certificate file and a key file",
            ))
        }
    };
    for t in [cert, key] {
        if t.text.is_empty() {
            return Err(PosError::new(t.pos, "`tls` file path is empty"));
        }
        validate::no_nul("a `tls` file path", &t.text).map_err(|e| PosError::new(t.pos, e))?;
    }
    Ok(Tls {
        cert: paths::resolve(&cx.base, Path::new(&cert.text)),
        key: paths::resolve(&cx.base, Path::new(&key.text)),
        origin: Some(cx.sources.place(name.pos)),
    })
}
