/*
 * init.c - one-time set-up: read the container's limits files (XPUSHARE_LIMITS_DIR, else the single
 * XPUSHARE_LIMITS_PATH) and prepare the devices.
 *
 * The paths are fixed at build time: an environment variable cannot point the shim at a file the tenant
 * wrote. Only a test or simulation build (-DXPUSHARE_TEST_HOOKS, see shim/buildinfo.py) takes the path
 * (a file or a directory) from XPUSHARE_LIMITS_FILE. Without a usable file the shim fails closed: every device allocation is
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
#include <stdio.h>
#include <stdlib.h>
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

/* A test build reads the file or directory XPUSHARE_LIMITS_FILE names, where it names one. */
static const char *test_limits_path(void) {
#ifdef XPUSHARE_TEST_HOOKS
    const char *path = getenv("XPUSHARE_LIMITS_FILE");
    if (path != NULL && path[0] != '\0')
        return path;
#endif
    return NULL;
}

static void init_once(void) {
    int saved = errno;
    static struct xps_limits limits;
    char bad[512];
    const char *path = test_limits_path();
    int rc;
    if (path != NULL) {
        rc = xps__limits_load_set(path, &limits, bad, sizeof(bad));
    } else {
        rc = xps__limits_load_set(XPUSHARE_LIMITS_DIR, &limits, bad, sizeof(bad));
        if (rc == -ENOENT) /* no claim files: a spec of an earlier release mounts the one file */
            rc = xps__limits_load_set(XPUSHARE_LIMITS_PATH, &limits, bad, sizeof(bad));
        if (rc == -ENOENT) /* neither: name where this release looks */
            snprintf(bad, sizeof(bad), "%s", XPUSHARE_LIMITS_DIR);
    }
    if (rc == 0)
        xps__memory_init(&limits);
    else
        xps__memory_refuse(bad, rc, limits.error_line);
    pthread_atfork(NULL, NULL, after_fork_child);
    errno = saved;
}

void xps__ensure_init(void) {
    pthread_once(&once, init_once);
}

__attribute__((constructor)) static void xps_constructor(void) {
    xps__ensure_init();
}
