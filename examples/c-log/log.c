/*
 * Gojinn example function in C: logs through the host (gojinn_log, Gojinn's
 * host_log) at each level, then answers with a small JSON object. The log lines
 * reach the server's structured log with the route and the request's trace id.
 */
#include <stdio.h>
#include <string.h>

#include "gojinn.h"

static void say(int32_t level, const char *msg) {
    gojinn_log(level, msg, (int32_t)strlen(msg));
}

int main(void) {
    /* The request is not needed; read and drop it so the host's pipe drains. */
    char buf[4096];
    size_t total = 0, n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        total += n;
    }

    say(GOJINN_LOG_DEBUG, "c-log: debug line (shown when the server logs debug)");
    say(GOJINN_LOG_INFO, "c-log: handling a request");
    say(GOJINN_LOG_WARN, "c-log: a warning, with \"quotes\" kept intact");

    printf("{\"status\":200,\"headers\":{\"Content-Type\":[\"application/json\"]},"
           "\"body\":\"{\\\"logged\\\":3,\\\"request_bytes\\\":%zu,\\\"abi\\\":%d}\"}",
           total, (int)gojinn_abi_version());
    return 0;
}
