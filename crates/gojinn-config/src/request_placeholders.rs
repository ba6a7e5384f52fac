//! Request placeholders by name: Caddy's long names
//! (`{http.request.uri.path}`, `{http.request.header.X}`, …) and its
//! shorthands (`{path}`, `{header.X}`, …). The site's directives and the
//! proxy's header rules both read names here; each evaluates them against
//! what it has of the request.

/// What a placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{method}`.
    Method,
    /// `{uri}`: path and query.
    Uri,
    /// `{path}`.
    Path,
    /// `{path.N}`: the Nth segment of the path, from 0.
    PathSegment(usize),
    /// `{dir}`: the path up to its last `/`.
    Dir,
    /// `{file}`: the path after its last `/`.
    File,
    /// `{query}`, without `?`.
    Query,
    /// `{query.KEY}`: one query parameter, decoded.
    QueryParam(String),
    /// `{host}`, without the port.
    Host,
    /// `{hostport}`: the `Host` field as sent.
    HostPort,
    /// `{port}`.
    Port,
    /// `{scheme}`: `http` or `https`.
    Scheme,
    /// `{http.request.proto}`: `HTTP/1.1`, `HTTP/2.0` …
    Proto,
    /// `{remote}`: the client's `ip:port`.
    Remote,
    /// `{remote_host}`: the client's IP address.
    RemoteHost,
    /// `{remote_port}`: the client's port.
    RemotePort,
    /// `{header.X}`: the request header's values.
    Header(String),
    /// `{re.NAME.GROUP}`: a capture of a regexp matcher.
    Regexp {
        /// The matcher's regexp name.
        name: String,
        /// The group's number or name.
        group: String,
    },
    /// `{http.auth.user.id}`: the user `basic_auth` let in.
    AuthUser,
    /// `{err.*}` in `handle_errors`.
    Error(ErrorField),
    /// `{upstream_hostport}`: the upstream a proxied request goes to.
    UpstreamHostPort,
    /// `{http.reverse_proxy.upstream.host}`.
    UpstreamHost,
    /// `{http.reverse_proxy.upstream.port}`.
    UpstreamPort,
}

/// The fields of `{err.*}` (`{http.error.*}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorField {
    /// `{err.status_code}`.
    StatusCode,
    /// `{err.status_text}`.
    StatusText,
    /// `{err.message}`.
    Message,
}

/// The placeholder named `name` (without braces), if it is a known one.
pub fn parse(name: &str) -> Option<Placeholder> {
    use Placeholder as P;
    let short = |s: &str| match s {
        "method" => Some(P::Method),
        "uri" => Some(P::Uri),
        "path" => Some(P::Path),
        "dir" => Some(P::Dir),
        "file" => Some(P::File),
        "query" => Some(P::Query),
        "host" => Some(P::Host),
        "hostport" => Some(P::HostPort),
        "port" => Some(P::Port),
        "scheme" => Some(P::Scheme),
        "remote" => Some(P::Remote),
        "remote_host" => Some(P::RemoteHost),
        "remote_port" => Some(P::RemotePort),
        "upstream_hostport" => Some(P::UpstreamHostPort),
        _ => None,
    };
    if let Some(l) = name.strip_prefix("http.request.") {
        return match l {
            "method" | "host" | "hostport" | "port" | "scheme" | "remote" | "uri" => short(l),
            "proto" => Some(P::Proto),
            "uri.path" => Some(P::Path),
            "uri.path.dir" => Some(P::Dir),
            "uri.path.file" => Some(P::File),
            "uri.query" => Some(P::Query),
            "remote.host" => Some(P::RemoteHost),
            "remote.port" => Some(P::RemotePort),
            _ => {
                if let Some(h) = l.strip_prefix("header.").filter(|h| !h.is_empty()) {
                    Some(P::Header(h.to_owned()))
                } else if let Some(k) = l.strip_prefix("uri.query.").filter(|k| !k.is_empty()) {
                    Some(P::QueryParam(k.to_owned()))
                } else {
                    l.strip_prefix("uri.path.")
                        .and_then(|n| n.parse().ok())
                        .map(P::PathSegment)
                }
            }
        };
    }
    if let Some(u) = name.strip_prefix("http.reverse_proxy.upstream.") {
        return match u {
            "hostport" => Some(P::UpstreamHostPort),
            "host" => Some(P::UpstreamHost),
            "port" => Some(P::UpstreamPort),
            _ => None,
        };
    }
    if name == "http.auth.user.id" {
        return Some(P::AuthUser);
    }
    if let Some(h) = name.strip_prefix("header.").filter(|h| !h.is_empty()) {
        return Some(P::Header(h.to_owned()));
    }
    if let Some(k) = name.strip_prefix("query.").filter(|k| !k.is_empty()) {
        return Some(P::QueryParam(k.to_owned()));
    }
    if let Some(n) = name.strip_prefix("path.") {
        return n.parse().ok().map(P::PathSegment);
    }
    if let Some(re) = name
        .strip_prefix("re.")
        .or_else(|| name.strip_prefix("http.regexp."))
    {
        let (name, group) = re.rsplit_once('.')?;
        return Some(P::Regexp {
            name: name.to_owned(),
            group: group.to_owned(),
        });
    }
    if let Some(e) = name
        .strip_prefix("err.")
        .or_else(|| name.strip_prefix("http.error."))
    {
        return match e {
            "status_code" => Some(P::Error(ErrorField::StatusCode)),
            "status_text" => Some(P::Error(ErrorField::StatusText)),
            "message" => Some(P::Error(ErrorField::Message)),
            _ => None,
        };
    }
    short(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_names_agree() {
        for (short, long) in [
            ("path", "http.request.uri.path"),
            ("remote_host", "http.request.remote.host"),
            ("header.X-Id", "http.request.header.X-Id"),
            ("query.q", "http.request.uri.query.q"),
            ("path.2", "http.request.uri.path.2"),
            ("re.api.1", "http.regexp.api.1"),
            ("err.message", "http.error.message"),
            ("upstream_hostport", "http.reverse_proxy.upstream.hostport"),
        ] {
            assert!(parse(short).is_some(), "{short}");
            assert_eq!(parse(short), parse(long), "{short} / {long}");
        }
        for unknown in [
            "",
            "nope",
            "header.",
            "path.x",
            "env.X",
            "http.request.nope",
        ] {
            assert_eq!(parse(unknown), None, "{unknown}");
        }
    }
}
