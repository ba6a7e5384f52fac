/*
 * gojinn.h: the `gojinn` host functions for C guests (wasm32-wasi, clang).
 *
 * Same functions as the Rust SDK; see docs/abi.md for every result code and limit.
 * Pointers and lengths are offsets into the module's own linear memory.
 *
 * Conventions of the ABI v1 functions (the *_v1, kv_delete/list, db_exec,
 * http_request, last_error and result_take ones):
 *   >= 0  success: bytes written, a count, or 0/1;
 *   a byte count larger than out_max: the result did not fit; nothing was
 *         written; fetch it with gojinn_result_take into a buffer that large;
 *   < 0   an error code below; gojinn_last_error() copies the message.
 * The first six functions keep Gojinn's original signatures and results.
 */
#ifndef GOJINN_H
#define GOJINN_H

#include <stdint.h>

#define GOJINN_IMPORT(name) __attribute__((import_module("gojinn"), import_name(name)))

/* ABI v1 result codes. */
#define GOJINN_NOT_FOUND   (-1)
#define GOJINN_DENIED      (-2)
#define GOJINN_INVALID     (-3)
#define GOJINN_TOO_LARGE   (-4)
#define GOJINN_BACKEND     (-5)
#define GOJINN_UNAVAILABLE (-6)
#define GOJINN_TIMEOUT     (-7)

/* Log levels of gojinn_log. */
#define GOJINN_LOG_DEBUG 0
#define GOJINN_LOG_INFO  1
#define GOJINN_LOG_WARN  2
#define GOJINN_LOG_ERROR 3

/* --- Gojinn's original functions ------------------------------------------ */

/* A structured log line with the route and trace id; always allowed. */
GOJINN_IMPORT("host_log")
void gojinn_log(int32_t level, const char *msg, int32_t len);

/* Sets a key (kv_write). A failure (denied, too large, store error) traps: the
 * request ends with 502 and the reason in the server log. gojinn_kv_set_v1
 * returns an error code instead. */
GOJINN_IMPORT("host_kv_set")
void gojinn_kv_set(const char *key, int32_t key_len, const void *value, int32_t value_len);

/* The value cut to out_max bytes: bytes written, or -1 on a miss or denial. */
GOJINN_IMPORT("host_kv_get")
int64_t gojinn_kv_get(const char *key, int32_t key_len, void *out, int32_t out_max);

/* GET url (needs the route's http grant): the body cut to out_max bytes, bytes
 * written; 0 on a denial or failure. */
GOJINN_IMPORT("host_http_get")
int64_t gojinn_http_get(const char *url, int32_t url_len, void *out, int32_t out_max);

/* Rows as a JSON array of objects, or [{"error":"..."}]; 0 on a memory fault. */
GOJINN_IMPORT("host_db_query")
int32_t gojinn_db_query(const char *sql, int32_t sql_len, char *out, int32_t out_max);

/* 1 taken, 0 not (held elsewhere, or denied); the TTL is honoured. */
GOJINN_IMPORT("host_mutex_lock")
int32_t gojinn_mutex_lock(const char *key, int32_t key_len, int32_t ttl_seconds);

/* 1 released, 0 not held by this request. */
GOJINN_IMPORT("host_mutex_unlock")
int32_t gojinn_mutex_unlock(const char *key, int32_t key_len);

/* Queues a run of a module the route's `enqueue` permission names (its path,
   or the end of it such as "worker.wasm"), with the payload as its stdin:
   0 queued, 1 not (denied, payload too large, queue full, store down). */
GOJINN_IMPORT("host_enqueue")
int32_t gojinn_enqueue(const char *module, int32_t module_len, const char *payload, int32_t payload_len);

/* --- ABI v1 ----------------------------------------------------------------- */

GOJINN_IMPORT("host_abi_version")
int32_t gojinn_abi_version(void);

GOJINN_IMPORT("host_last_error")
int64_t gojinn_last_error(char *out, int32_t out_max);

GOJINN_IMPORT("host_result_take")
int64_t gojinn_result_take(void *out, int32_t out_max);

GOJINN_IMPORT("host_kv_get_v1")
int64_t gojinn_kv_get_v1(const char *key, int32_t key_len, void *out, int32_t out_max);

GOJINN_IMPORT("host_kv_set_v1")
int32_t gojinn_kv_set_v1(const char *key, int32_t key_len, const void *value, int32_t value_len);

GOJINN_IMPORT("host_kv_delete")
int32_t gojinn_kv_delete(const char *key, int32_t key_len);

/* {"keys": [...], "more": bool} */
GOJINN_IMPORT("host_kv_list")
int64_t gojinn_kv_list(const char *prefix, int32_t prefix_len, char *out, int32_t out_max);

GOJINN_IMPORT("host_lock_v1")
int32_t gojinn_lock_v1(const char *key, int32_t key_len, int64_t ttl_ms);

GOJINN_IMPORT("host_unlock_v1")
int32_t gojinn_unlock_v1(const char *key, int32_t key_len);

/* params: a JSON array ("[1, \"x\"]"), or empty for none. */
GOJINN_IMPORT("host_db_query_v1")
int64_t gojinn_db_query_v1(const char *sql, int32_t sql_len, const char *params, int32_t params_len,
                           char *out, int32_t out_max);

GOJINN_IMPORT("host_db_exec")
int64_t gojinn_db_exec(const char *sql, int32_t sql_len, const char *params, int32_t params_len);

/* request: {"method","url","headers":{name:[values]},"body"|"body_base64"} */
GOJINN_IMPORT("host_http_request")
int64_t gojinn_http_request(const char *request, int32_t request_len, char *out, int32_t out_max);

#endif /* GOJINN_H */
