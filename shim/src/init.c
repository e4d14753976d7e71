/*
 * init.c - one-time set-up: read the limits file at XPUSHARE_LIMITS_PATH and prepare the devices.
 *
 * The path is fixed at build time: an environment variable cannot point the shim at a file the tenant
 * wrote. Only a test or simulation build (-DXPUSHARE_TEST_HOOKS, see shim/buildinfo.py) takes the path
 * from XPUSHARE_LIMITS_FILE. Without a usable file the shim fails closed: every device allocation is
 * refused (memory.c says why, once, at the first one); nothing is printed here, so a process that loads
 * the library and never allocates (the node plugin reading ledgers through cffi) sees nothing.
 *
 * Runs from a constructor and, for allocations made before constructors (another library's constructor
 * may allocate), from pthread_once at first use. Nothing here touches the device: ledgers are attached at
 * a process's first allocation, so a process that never uses the accelerator pays only this read.
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
    xps__peers_reset();
    xps__memory_after_fork();
    xps__map_reset();
}

/* The limits file: the fixed path, or in a test build the one XPUSHARE_LIMITS_FILE names. */
static const char *limits_path(void) {
#ifdef XPUSHARE_TEST_HOOKS
    const char *path = getenv("XPUSHARE_LIMITS_FILE");
    if (path != NULL && path[0] != '\0')
        return path;
#endif
    return XPUSHARE_LIMITS_PATH;
}

static void init_once(void) {
    int saved = errno;
    static struct xps_limits limits;
    const char *path = limits_path();
    int rc = xps__limits_load(path, &limits);
    if (rc == 0)
        xps__memory_init(&limits);
    else
        xps__memory_refuse(path, rc, limits.error_line);
    pthread_atfork(NULL, NULL, after_fork_child);
    errno = saved;
}

void xps__ensure_init(void) {
    pthread_once(&once, init_once);
}

__attribute__((constructor)) static void xps_constructor(void) {
    xps__ensure_init();
}
