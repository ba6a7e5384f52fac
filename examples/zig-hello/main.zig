//! zig-hello: a Gojinn function in Zig, a hello/echo JSON API (`gojinn new --lang zig`
//! starts new projects from this file). It talks to WASI directly through `std.os.wasi` (fd_read on
//! stdin, fd_write on stdout and stderr), uses `std.json` for the contract, and logs
//! one line through Gojinn's `host_log` import as well.
//!
//! Build (Zig 0.14): zig build-exe main.zig -target wasm32-wasi -O ReleaseSmall
//!                   -fstrip --stack 65536 -femit-bin=zig-hello.wasm

const std = @import("std");
const wasi = std.os.wasi;

/// Largest request read from stdin. The server's max_body_size is the real limit;
/// this keeps the function bounded when it is run by hand on a large input.
const max_request_bytes = 64 << 20;

/// The request as the server sends it (unknown fields are ignored).
const Request = struct {
    method: []const u8,
    uri: []const u8,
    headers: std.json.ArrayHashMap([]const []const u8) = .{},
    body: []const u8 = "",
    body_base64: ?[]const u8 = null,
    trace_id: []const u8 = "",

    /// The first value of a header; `name` in canonical form (User-Agent).
    fn header(self: Request, name: []const u8) ?[]const u8 {
        const values = self.headers.map.get(name) orelse return null;
        return if (values.len > 0) values[0] else null;
    }

    fn path(self: Request) []const u8 {
        const q = std.mem.indexOfScalar(u8, self.uri, '?') orelse return self.uri;
        return self.uri[0..q];
    }

    fn query(self: Request) []const u8 {
        const q = std.mem.indexOfScalar(u8, self.uri, '?') orelse return "";
        return self.uri[q + 1 ..];
    }
};

/// The JSON document this endpoint answers with.
const Reply = struct {
    message: []const u8,
    method: []const u8,
    path: []const u8,
    query: []const u8,
    user_agent: ?[]const u8,
    body_bytes: usize,
    echo: ?std.json.Value,
};

/// The response in the contract's shape.
const Response = struct {
    status: u16,
    headers: struct { @"Content-Type": []const []const u8 },
    body: []const u8,
};

const WasiError = error{ ReadFailed, WriteFailed, RequestTooLarge };

fn readAll(alloc: std.mem.Allocator, fd: wasi.fd_t) ![]u8 {
    var buf = std.ArrayList(u8).init(alloc);
    while (true) {
        if (buf.items.len >= max_request_bytes) return WasiError.RequestTooLarge;
        try buf.ensureUnusedCapacity(16 * 1024);
        const spare = buf.unusedCapacitySlice();
        const iov = [_]wasi.iovec_t{.{ .base = spare.ptr, .len = spare.len }};
        var n: usize = 0;
        if (wasi.fd_read(fd, &iov, iov.len, &n) != .SUCCESS) return WasiError.ReadFailed;
        if (n == 0) return buf.items;
        buf.items.len += n;
    }
}

fn writeAll(fd: wasi.fd_t, bytes: []const u8) !void {
    var rest = bytes;
    while (rest.len > 0) {
        const iov = [_]wasi.ciovec_t{.{ .base = rest.ptr, .len = rest.len }};
        var n: usize = 0;
        if (wasi.fd_write(fd, &iov, iov.len, &n) != .SUCCESS or n == 0) return WasiError.WriteFailed;
        rest = rest[n..];
    }
}

/// The host ABI's logger (module `gojinn`, always granted; see docs/abi.md):
/// level 0 debug, 1 info, 2 warn, 3 error.
extern "gojinn" fn host_log(level: i32, ptr: [*]const u8, len: usize) void;

/// One line on stderr: the server forwards it to its log with the trace id.
fn log(alloc: std.mem.Allocator, comptime fmt: []const u8, args: anytype) void {
    const line = std.fmt.allocPrint(alloc, fmt ++ "\n", args) catch return;
    writeAll(2, line) catch {};
}

pub fn main() !void {
    // One request per instance and the instance is dropped afterwards, so an arena
    // that is never freed piece by piece is the simplest correct allocator.
    var arena = std.heap.ArenaAllocator.init(std.heap.page_allocator);
    const alloc = arena.allocator();

    const input = try readAll(alloc, 0);
    const req = std.json.parseFromSliceLeaky(Request, alloc, input, .{
        .ignore_unknown_fields = true,
    }) catch |err| {
        log(alloc, "zig-hello: request is not the JSON contract: {s}", .{@errorName(err)});
        return err;
    };

    var body: []const u8 = req.body;
    if (req.body_base64) |b64| {
        const decoder = std.base64.standard.Decoder;
        const out = try alloc.alloc(u8, try decoder.calcSizeForSlice(b64));
        try decoder.decode(out, b64);
        body = out;
    }
    // A body that is not JSON (or is empty) is echoed as null rather than rejected:
    // this endpoint accepts anything.
    const echo = std.json.parseFromSliceLeaky(std.json.Value, alloc, body, .{}) catch null;

    const reply = try std.json.stringifyAlloc(alloc, Reply{
        .message = "hello from zig",
        .method = req.method,
        .path = req.path(),
        .query = req.query(),
        .user_agent = req.header("User-Agent"),
        .body_bytes = body.len,
        .echo = echo,
    }, .{});
    const out = try std.json.stringifyAlloc(alloc, Response{
        .status = 200,
        .headers = .{ .@"Content-Type" = &.{"application/json"} },
        .body = reply,
    }, .{});
    try writeAll(1, out);
    log(alloc, "zig-hello: handled {s} {s}", .{ req.method, req.path() });
    const note = "zig-hello: answered through host_log";
    host_log(1, note.ptr, note.len);
}
