;; {{name}}: a Gojinn function in hand-written WebAssembly text (made by `gojinn new`).
;;
;; The smallest useful function: a WASI preview-1 command whose `_start` writes one
;; fixed response object to stdout (fd 1) and one log line to stderr (fd 2). It never
;; reads stdin; the request is simply ignored. The server compiles `.wat` files
;; itself, so no build step is needed.
;;
;; Memory layout (one 64 KiB page, the unit wasm memory comes in):
;;   0..8    iovec {ptr, len} handed to fd_write
;;   8..12   fd_write's out-parameter: bytes written
;;   64..169  the response JSON (105 bytes, newline included)
;;   169..206 the log line (37 bytes)
;; The lengths below must match the data segments byte for byte.

(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param $fd i32) (param $iovs i32) (param $iovs_len i32) (param $nwritten i32) (result i32)))

  (memory (export "memory") 1)

  (data (i32.const 64) "{\"status\":200,\"headers\":{\"Content-Type\":[\"application/json\"]},\"body\":\"{\\\"message\\\":\\\"hello from wat\\\"}\"}\n")
  (data (i32.const 169) "answered without reading the request\n")

  ;; Writes `len` bytes at `ptr` to `fd`, looping over short writes as fd_write allows.
  ;; Returns the WASI errno (0 on success).
  (func $write_all (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (local $errno i32)
    (local $done i32)
    (block $exit
      (loop $more
        (br_if $exit (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (local.set $errno
          (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $exit (local.get $errno))
        (local.set $done (i32.load (i32.const 8)))
        ;; A write of zero bytes without an error would loop forever; give up instead.
        (if (i32.eqz (local.get $done))
          (then (local.set $errno (i32.const 29)) (br $exit))) ;; 29 = EIO
        (local.set $ptr (i32.add (local.get $ptr) (local.get $done)))
        (local.set $len (i32.sub (local.get $len) (local.get $done)))
        (br $more)))
    (local.get $errno))

  (func (export "_start")
    ;; The response matters; the log line is best effort, so its errno is dropped.
    (if (call $write_all (i32.const 1) (i32.const 64) (i32.const 105))
      (then unreachable)) ;; trap: the server then answers 502 instead of a partial body
    (drop (call $write_all (i32.const 2) (i32.const 169) (i32.const 37)))))
