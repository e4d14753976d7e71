/*
 * init.c - one-time set-up: read the limits file named by XPUSHARE_LIMITS_FILE and prepare the devices.
 *
 * Runs from a constructor and, for hooks called before constructors (another library's constructor may
 * allocate), from pthread_once at first use. Nothing here touches the device: ledgers are attached at a
 * process's first allocation, so a process that never uses the accelerator pays only this read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

__thread int xps__guard __attribute__((tls_model("initial-exec")));
static pthread_once_t once = PTHREAD_ONCE_INIT;

void xps__warn(const char *fmt, ...) {
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "xpushare: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    int saved = errno;
    ssize_t ignored = write(STDERR_FILENO, buf, (size_t)n);
    (void)ignored;
    errno = saved;
}

static void after_fork_child(void) {
    xps__compute_after_fork();
    xps__memory_after_fork();
    xps__map_reset();
}

static void init_once(void) {
    int saved = errno;
    static struct xps_limits limits;
    const char *path = getenv("XPUSHARE_LIMITS_FILE");
    int rc = -ENOENT;
    if (path != NULL && path[0] != '\0') {
        rc = xps__limits_load(path, &limits);
        if (rc != 0)
            xps__warn("limits file %s unusable (%s, line %d): not enforcing", path, strerror(-rc),
                      limits.error_line);
    }
    if (rc == 0)
        xps__memory_init(&limits);
    pthread_atfork(NULL, NULL, after_fork_child);
    errno = saved;
}

void xps__ensure_init(void) {
    pthread_once(&once, init_once);
}

__attribute__((constructor)) static void xps_constructor(void) {
    xps__ensure_init();
}
