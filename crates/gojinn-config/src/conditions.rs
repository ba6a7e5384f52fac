//! The model of named matchers (`@name { … }`): one matcher set, Caddy's
//! semantics. Every kind present must match (AND); the values of one kind are
//! alternatives (OR), except that `header`, `header_regexp` and `query` AND
//! their fields (keys) and OR the values of one field (key). Each `not` entry
//! must fail to match.

use serde::{Deserialize, Serialize};

/// One matcher set: what a named matcher defines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherSet {
    /// The name as written (`@api`); empty inside `not`. A label for logs and
    /// metrics, never part of matching.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `path`: Caddy path patterns (`/exact`, `/prefix*`, `*suffix`),
    /// case-insensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// `path_regexp [<name>] <regexp>`: a regular expression on the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regexp: Option<Regexp>,
    /// `method`: upper-case methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub method: Vec<String>,
    /// `header <field> [<value>…]`, one entry per field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<HeaderMatch>,
    /// `header_regexp [<name>] <field> <regexp>`, one entry per field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_regexp: Vec<HeaderRegexp>,
    /// `query <key>=<value>…`, one entry per key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<QueryMatch>,
    /// `host`: lower-case host names; `*` stands for one label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
    /// `protocol`: `http`, `https`, `grpc`, `http/1.0`, `http/1.1`, `http/2`,
    /// `http/3`, or `http/N+` (that version or later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `remote_ip`: IP addresses and CIDR ranges of the connection's peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_ip: Vec<String>,
    /// `client_ip`: the same ranges, for the client's address. Gojinn trusts no
    /// proxy headers, so the client is the connection's peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_ip: Vec<String>,
    /// `not`: sets that must each fail to match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not: Vec<MatcherSet>,
}

impl MatcherSet {
    /// The first `path` pattern, which orders routes as an inline path does.
    pub fn first_path(&self) -> Option<&str> {
        self.path.first().map(String::as_str)
    }
}

/// A named regular expression; its captures become `{re.<name>.<n>}`
/// placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regexp {
    /// The name of the captures (the matcher's name when not written).
    pub name: String,
    /// The expression, `regex` crate syntax (RE2-like, as Go's).
    pub pattern: String,
}

/// `header <field> [<value>…]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// The field name, as written.
    pub field: String,
    /// Accepted values: exact, or with a leading and/or trailing `*`. Empty:
    /// the field must be present (or, with `absent`, must not be).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// `header !Field`: the field must be absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

/// `header_regexp [<name>] <field> <regexp>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRegexp {
    /// The field name, as written.
    pub field: String,
    /// The expression and the name of its captures.
    pub regexp: Regexp,
}

/// `query <key>=<value>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    /// The parameter name (decoded).
    pub key: String,
    /// Accepted values (decoded); `*` accepts any value.
    pub values: Vec<String>,
}
