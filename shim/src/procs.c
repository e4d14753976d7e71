/*
 * procs.c - process slots of a claim ledger: joining, leaving, and returning the bytes of processes that
 * died.
 *
 * A process holds an OFD lock on byte (XPUSHARE_LIVENESS_BASE + slot) of the ledger file for as long as
 * it lives; the kernel drops it when the process dies, however it dies. Testing that lock works from
 * any pid namespace (the claim's containers do not see each other's pids) and cannot be fooled by pid
 * reuse. The slot also records pid and start time (/proc/<pid>/stat field 22) for people and metrics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static uint64_t process_start_time(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces; fields restart after ')' */
    if (p == NULL)
        return 0;
    /* p+2 is field 3 (state); field 22 (starttime) is 19 fields further. */
    p += 2;
    for (int field = 3; field < 22 && p != NULL; field++) {
        p = strchr(p, ' ');
        if (p != NULL)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

static int liveness_lock(int fd, int proc, short type, int cmd, struct flock *out) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
                       .l_start = (off_t)XPUSHARE_LIVENESS_BASE + proc, .l_len = 1};
    int rc = fcntl(fd, cmd, &fl); /* OFD locks: bound to the open file, not dropped by other close() */
    if (out != NULL)
        *out = fl;
    return rc == 0 ? 0 : -errno;
}

XPUSHARE_EXTERN int xpushare_proc_alive(int fd, int proc) {
    if (proc < 0 || proc >= XPUSHARE_MAX_PROCS)
        return -EINVAL;
    struct flock fl;
    int rc = liveness_lock(fd, proc, F_WRLCK, F_OFD_GETLK, &fl);
    if (rc != 0)
        return rc;
    return fl.l_type != F_UNLCK;
}

/* Take a free process slot whose liveness byte nobody holds (called with the lock held). */
static int claim_proc(struct xpushare_ledger *ledger, int fd) {
    for (int i = 0; i < XPUSHARE_MAX_PROCS; i++) {
        struct xpushare_proc *p = &ledger->procs[i];
        if (p->state != XPUSHARE_SLOT_FREE || liveness_lock(fd, i, F_WRLCK, F_OFD_SETLK, NULL) != 0)
            continue;
        xps__journal_begin(ledger, (uint32_t)i);
        memset(p, 0, sizeof(*p));
        p->pid = getpid();
        p->start_time = process_start_time(p->pid);
        ledger->head.claim.nprocs++;
        if (ledger->head.proc_hwm <= (uint32_t)i)
            __atomic_store_n(&ledger->head.proc_hwm, (uint32_t)i + 1, __ATOMIC_RELEASE);
        __atomic_store_n(&p->state, XPUSHARE_SLOT_ACTIVE, __ATOMIC_RELEASE);
        xps__journal_end(ledger);
        return i;
    }
    return -ENOSPC;
}

/* Join the claim: a process slot, or -ENOSPC when every slot is held by a live process. */
XPUSHARE_EXTERN int xpushare_ledger_attach(struct xpushare_ledger *ledger, int fd) {
    if (ledger == NULL || fd < 0)
        return -EINVAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = xps__ledger_lock(ledger);
        if (rc != 0)
            return rc;
        rc = claim_proc(ledger, fd);
        xps__ledger_unlock(ledger);
        if (rc != -ENOSPC)
            return rc;
        xpushare_ledger_reclaim(ledger, fd); /* slots of dead processes may be free after this */
    }
    return -ENOSPC;
}

/* Return a process's bytes and free its slot (called with the lock held); adds the bytes to `*reclaimed`
 * when given, once the update is complete. */
static void retire_proc(struct xpushare_ledger *ledger, int proc, uint64_t *reclaimed) {
    struct xpushare_proc *p = &ledger->procs[proc];
    struct xpushare_claim *c = &ledger->head.claim;
    xps__journal_begin(ledger, (uint32_t)proc);
    uint64_t bytes = p->used_bytes;
    xps__uncount_bytes(c, bytes);
    if (c->nprocs > 0)
        c->nprocs--;
    if (p->pending && c->npending > 0) /* its work is gone with it */
        __atomic_sub_fetch(&c->npending, 1, __ATOMIC_ACQ_REL);
    memset(p, 0, sizeof(*p));
    xps__journal_end(ledger);
    if (reclaimed != NULL)
        *reclaimed += bytes;
}

XPUSHARE_EXTERN int xpushare_ledger_detach(struct xpushare_ledger *ledger, int fd, int proc) {
    int rc = xps__lock_proc(ledger, proc);
    if (rc != 0)
        return rc;
    if (ledger->procs[proc].state == XPUSHARE_SLOT_ACTIVE)
        retire_proc(ledger, proc, NULL);
    xps__ledger_unlock(ledger);
    if (fd >= 0)
        liveness_lock(fd, proc, F_UNLCK, F_OFD_SETLK, NULL);
    return 0;
}

uint64_t xps__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Free the slots of processes whose liveness lock is gone; returns how many were reclaimed. */
XPUSHARE_EXTERN int xpushare_ledger_reclaim(struct xpushare_ledger *ledger, int fd) {
    if (ledger == NULL || fd < 0)
        return -EINVAL;
    __atomic_store_n(&ledger->head.last_reclaim_ns, xps__now_ns(), __ATOMIC_RELAXED);
    int reclaimed = 0;
    pid_t self = getpid();
    uint64_t self_start = process_start_time(self);
    for (int i = 0; i < xps__proc_hwm(ledger); i++) {
        struct xpushare_proc *p = &ledger->procs[i];
        if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != XPUSHARE_SLOT_ACTIVE)
            continue;
        if (xpushare_proc_alive(fd, i) != 0)
            continue; /* alive, or unknown: never reclaim on doubt */
        if (xps__ledger_lock(ledger) != 0)
            return -EIO;
        /* Re-check under the lock: a slot is claimed (liveness lock taken) under this same lock. */
        if (p->state == XPUSHARE_SLOT_ACTIVE && !(p->pid == self && p->start_time == self_start) &&
            xpushare_proc_alive(fd, i) == 0) {
            retire_proc(ledger, i, &ledger->head.reclaimed_bytes);
            reclaimed++;
        }
        xps__ledger_unlock(ledger);
    }
    if (reclaimed > 0)
        xps__compute_recount(ledger);
    return reclaimed;
}
