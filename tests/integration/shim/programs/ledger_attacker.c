/*
 * A hostile tenant: does to the ledger files it can reach what the tenant-isolation tests need, with
 * plain file operations (no root, no shim). Every command prints one line: "<command> ok [detail]" or
 * "<command> error <errno name>".
 *
 * usage: ledger_attacker COMMAND...
 *   truncate PATH BYTES      cut (or grow) the file
 *   garbage PATH             overwrite every byte with 0xa5
 *   magic PATH               zero the first 8 bytes (a ledger's or board's magic)
 *   set PATH FIELD VALUE     write one field of a claim ledger's head; VALUE is a number, or now+N / now-N
 *                            (CLOCK_MONOTONIC ns), or max; FIELD: limit_bytes used_bytes peak_bytes nprocs
 *                            core_percent priority policy npending tokens_ns refill_ns launch_ns
 *                            attributed_ns unpublished_ns proc_hwm
 *   lock PATH                take the ledger's robust mutex and keep it (until the process ends)
 *   computelock PATH         likewise its compute mutex
 *   fill PATH                mark every process slot taken and hold every slot's liveness lock
 *   writable PATH            try to write the file's first byte back unchanged: "ok" or the errno
 *   hold SECONDS             sleep (keeps what the commands before took)
 *   ready                    print "ready" (a test waits for it)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../../../shim/include/xpushare.h"

static void report(const char *command, int rc, const char *detail) {
    if (rc == 0)
        printf("%s ok%s%s\n", command, detail ? " " : "", detail ? detail : "");
    else
        printf("%s error %s\n", command, strerrorname_np(rc) ? strerrorname_np(rc) : "unknown");
    fflush(stdout);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t value_of(const char *text) {
    if (strcmp(text, "max") == 0)
        return UINT64_MAX;
    if (strncmp(text, "now+", 4) == 0)
        return now_ns() + strtoull(text + 4, NULL, 10);
    if (strncmp(text, "now-", 4) == 0)
        return now_ns() - strtoull(text + 4, NULL, 10);
    return (uint64_t)strtoll(text, NULL, 10);
}

#define CLAIM(field) {#field, offsetof(struct xpushare_ledger_head, claim) + offsetof(struct xpushare_claim, field), \
                      sizeof(((struct xpushare_claim *)0)->field)}
static const struct {
    const char *name;
    size_t offset, size;
} fields[] = {
    CLAIM(limit_bytes), CLAIM(used_bytes), CLAIM(peak_bytes), CLAIM(nprocs), CLAIM(core_percent),
    CLAIM(priority), CLAIM(policy), CLAIM(npending), CLAIM(tokens_ns), CLAIM(refill_ns), CLAIM(launch_ns),
    CLAIM(attributed_ns), CLAIM(unpublished_ns),
    {"proc_hwm", offsetof(struct xpushare_ledger_head, proc_hwm), sizeof(uint32_t)},
};

static int set_field(const char *path, const char *name, const char *text) {
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(fields[i].name, name) != 0)
            continue;
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return errno;
        uint64_t v = value_of(text);
        uint32_t v32 = (uint32_t)v;
        const void *src = fields[i].size == 8 ? (const void *)&v : (const void *)&v32;
        ssize_t n = pwrite(fd, src, fields[i].size, (off_t)fields[i].offset);
        int rc = n == (ssize_t)fields[i].size ? 0 : (n < 0 ? errno : EIO);
        close(fd);
        return rc;
    }
    return EINVAL;
}

static int overwrite(const char *path, size_t limit) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno;
    off_t size = lseek(fd, 0, SEEK_END);
    char buf[4096];
    memset(buf, limit == 8 ? 0 : 0xa5, sizeof(buf));
    int rc = 0;
    for (off_t at = 0; at < size && (size_t)at < limit && rc == 0; at += (off_t)sizeof(buf)) {
        size_t n = (size_t)(size - at) < sizeof(buf) ? (size_t)(size - at) : sizeof(buf);
        if (n > limit - (size_t)at)
            n = limit - (size_t)at;
        if (pwrite(fd, buf, n, at) != (ssize_t)n)
            rc = errno ? errno : EIO;
    }
    close(fd);
    return rc;
}

static struct xpushare_ledger *map_ledger(const char *path, int *fd_out) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *p = mmap(NULL, sizeof(struct xpushare_ledger), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    *fd_out = fd; /* kept open: the liveness locks live on it */
    return p;
}

static int lock_mutex(const char *path, size_t offset) {
    int fd;
    struct xpushare_ledger *ledger = map_ledger(path, &fd);
    if (ledger == NULL)
        return errno;
    int rc = pthread_mutex_lock((pthread_mutex_t *)(void *)((char *)ledger + offset));
    return rc == EOWNERDEAD ? 0 : rc;
}

static int fill_slots(const char *path, int *taken) {
    int fd;
    struct xpushare_ledger *ledger = map_ledger(path, &fd);
    if (ledger == NULL)
        return errno;
    *taken = 0;
    for (int i = 0; i < XPUSHARE_MAX_PROCS; i++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                           .l_start = (off_t)XPUSHARE_LIVENESS_BASE + i, .l_len = 1};
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
            (*taken)++;
        ledger->procs[i].state = XPUSHARE_SLOT_ACTIVE;
        ledger->procs[i].pid = getpid();
    }
    ledger->head.proc_hwm = XPUSHARE_MAX_PROCS;
    return 0;
}

static int try_write(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char byte = 0;
    int rc = 0;
    if (pread(fd, &byte, 1, 0) != 1 || pwrite(fd, &byte, 1, 0) != 1)
        rc = errno ? errno : EIO;
    close(fd);
    return rc;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *cmd = argv[i];
        char detail[64] = "";
        int rc;
        if (strcmp(cmd, "truncate") == 0 && i + 2 < argc) {
            rc = truncate(argv[i + 1], (off_t)strtoll(argv[i + 2], NULL, 10)) == 0 ? 0 : errno;
            i += 2;
        } else if (strcmp(cmd, "garbage") == 0 && i + 1 < argc) {
            rc = overwrite(argv[++i], SIZE_MAX);
        } else if (strcmp(cmd, "magic") == 0 && i + 1 < argc) {
            rc = overwrite(argv[++i], 8);
        } else if (strcmp(cmd, "set") == 0 && i + 3 < argc) {
            rc = set_field(argv[i + 1], argv[i + 2], argv[i + 3]);
            i += 3;
        } else if (strcmp(cmd, "lock") == 0 && i + 1 < argc) {
            rc = lock_mutex(argv[++i], offsetof(struct xpushare_ledger, lock));
        } else if (strcmp(cmd, "computelock") == 0 && i + 1 < argc) {
            rc = lock_mutex(argv[++i], offsetof(struct xpushare_ledger, compute_lock));
        } else if (strcmp(cmd, "fill") == 0 && i + 1 < argc) {
            int taken = 0;
            rc = fill_slots(argv[++i], &taken);
            snprintf(detail, sizeof(detail), "%d", taken);
        } else if (strcmp(cmd, "writable") == 0 && i + 1 < argc) {
            rc = try_write(argv[++i]);
        } else if (strcmp(cmd, "hold") == 0 && i + 1 < argc) {
            sleep((unsigned)atoi(argv[++i]));
            rc = 0;
        } else if (strcmp(cmd, "ready") == 0) {
            rc = 0;
        } else {
            fprintf(stderr, "ledger_attacker: bad command %s\n", cmd);
            return 2;
        }
        report(cmd, rc, detail[0] ? detail : NULL);
    }
    return 0;
}
