//! The model of the site handlers around the functions: `header`,
//! `request_header`, `redir`, `rewrite` and `uri`. Values may hold request
//! placeholders (`{path}`, `{http.request.header.X}`, …), which the server
//! evaluates per request.

use serde::{Deserialize, Serialize};

/// `header` and `request_header`: operations on header fields, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderOps {
    /// The operations, applied in written order.
    pub ops: Vec<HeaderOp>,
    /// Apply them to the response as it is written, after the handler that
    /// answers has set its own fields (`>`, `-`, `?`, a replacement, or
    /// `defer`). Always false for `request_header`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

/// One header operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum HeaderOp {
    /// `Field value`: replace every value of the field.
    Set {
        /// The field name.
        field: String,
        /// The value.
        value: String,
    },
    /// `+Field value`: add a value.
    Add {
        /// The field name.
        field: String,
        /// The value.
        value: String,
    },
    /// `-Field`: remove the field; a trailing `*` removes every field with
    /// that prefix (`-X-Debug-*`).
    Delete {
        /// The field name or prefix.
        field: String,
    },
    /// `?Field value`: set the field only if it is absent.
    Default {
        /// The field name.
        field: String,
        /// The value.
        value: String,
    },
    /// `Field <find> <replace>`: replace what the regular expression `find`
    /// matches in each value (`$1` refers to a capture group).
    Replace {
        /// The field name.
        field: String,
        /// The regular expression.
        find: String,
        /// The replacement.
        replace: String,
    },
}

/// `redir [<matcher>] <to> [<code>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// The target (`Location`), with placeholders.
    pub to: String,
    /// The status: 3xx, or 200 for `html`.
    pub status: u16,
    /// `html`: answer 200 with an HTML page that redirects the browser.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub html: bool,
}

/// `rewrite` and `uri`: a change to the request's path and query, after
/// which the following routes match against the new values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rewrite {
    /// `rewrite <to>`: the new URI. A `?` in `to` replaces the query; without
    /// one the query is kept.
    Uri {
        /// The new path and optional query, with placeholders.
        to: String,
    },
    /// `uri strip_prefix <prefix>`.
    StripPrefix {
        /// The prefix.
        prefix: String,
    },
    /// `uri strip_suffix <suffix>`.
    StripSuffix {
        /// The suffix.
        suffix: String,
    },
    /// `uri replace <find> <replace> [<limit>]`: substrings of the path.
    Replace {
        /// The substring.
        find: String,
        /// Its replacement.
        replace: String,
        /// At most this many replacements; `None` for all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// `uri path_regexp <find> <replace>`: a regular expression on the path.
    PathRegexp {
        /// The regular expression.
        find: String,
        /// The replacement (`$1` refers to a capture group).
        replace: String,
    },
}

/// `handle_errors [<status>…] { … }`: the routes that answer when the
/// request failed (no route, a file not found, a function's fault).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRoutes {
    /// The statuses these routes handle (`404`, `4xx`, `5xx`); empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// The routes, sorted as a site's are.
    pub routes: Vec<crate::model::Route>,
}

/// `basic_auth [<matcher>] [bcrypt [<realm>]] { <user> <hash> … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The realm sent in `WWW-Authenticate`.
    pub realm: String,
    /// The accounts, in written order.
    pub accounts: Vec<Account>,
}

/// One `basic_auth` account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The user name, compared exactly.
    pub username: String,
    /// The bcrypt hash (`$2a$…`, `$2b$…`, `$2y$…`); the Caddyfile also takes it
    /// base64-encoded, as older Caddy versions wrote it.
    pub hash: String,
}
