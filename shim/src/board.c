/*
 * board.c - a device's board: every claim's live limits on the device, written by the node plugin alone
 * and mapped read-only by the shims (the directory holding it is mounted read-only into containers).
 *
 * One writer (the plugin serialises its own updates) and lock-free readers: a seqlock. The writer makes
 * `seq` odd, changes entries, bumps `generation` and makes `seq` even again; a reader copies what it needs
 * between two reads of an even, unchanged `seq`, and retries a bounded number of times. A writer killed
 * half-way leaves `seq` odd: readers then keep what they had (the limits file's values at worst) until
 * the plugin's next start rewrites the board in place. The file's size never shrinks below the board and
 * tenants cannot write it, so a mapping of it never faults.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define READ_TRIES 64

static void init_board(struct xpushare_board *b, const char *uuid, uint64_t total_bytes) {
    uint64_t seq = __atomic_load_n(&b->seq, __ATOMIC_RELAXED) | 1;
    __atomic_store_n(&b->seq, seq, __ATOMIC_RELEASE);
    uint64_t generation = b->generation;
    memset((char *)b + offsetof(struct xpushare_board, generation), 0,
           sizeof(*b) - offsetof(struct xpushare_board, generation));
    b->generation = generation + 1;
    b->version = XPUSHARE_BOARD_VERSION;
    b->board_size = sizeof(struct xpushare_board);
    b->entry_size = sizeof(struct xpushare_board_entry);
    b->max_entries = XPUSHARE_MAX_CLAIMS;
    strncpy(b->uuid, uuid != NULL ? uuid : "", sizeof(b->uuid) - 1);
    b->total_bytes = total_bytes;
    __atomic_store_n(&b->magic, (uint64_t)XPUSHARE_BOARD_MAGIC, __ATOMIC_RELEASE);
    __atomic_store_n(&b->seq, seq + 1, __ATOMIC_RELEASE);
}

/* 0 when the file holds a board of this layout, else -EPROTO (or -errno of the read). */
XPUSHARE_EXTERN int xpushare_board_check(int fd) {
    struct xpushare_board head;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0)
        return -errno;
    if (size != (off_t)sizeof(struct xpushare_board))
        return -EPROTO;
    ssize_t n = pread(fd, &head, offsetof(struct xpushare_board, seq), 0);
    if (n < 0)
        return -errno;
    if (n != (ssize_t)offsetof(struct xpushare_board, seq) || head.magic != XPUSHARE_BOARD_MAGIC ||
        head.version != XPUSHARE_BOARD_VERSION || head.board_size != sizeof(struct xpushare_board) ||
        head.entry_size != sizeof(struct xpushare_board_entry) || head.max_entries != XPUSHARE_MAX_CLAIMS)
        return -EPROTO;
    return 0;
}

static struct xpushare_board *map_board(int fd, int prot) {
    void *p = mmap(NULL, sizeof(struct xpushare_board), prot, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : (struct xpushare_board *)p;
}

/*
 * The node plugin's open: create the board, or rebuild in place (same inode, entries cleared) one of
 * another layout or size; mode 0644, whatever the umask. The caller then re-adds the prepared claims.
 * No lock is taken on the file: containers can open it read-only, and a lock they could hold would
 * stall the plugin. The plugin serialises its writers with a lock file no container sees.
 */
XPUSHARE_EXTERN int xpushare_board_open(const char *path, const char *uuid, uint64_t total_bytes) {
    if (path == NULL || path[0] == '\0' || (uuid != NULL && strlen(uuid) >= XPUSHARE_KEY_LEN))
        return -EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0)
        return -errno;
    fchmod(fd, 0644);
    int rc = 0;
    if (xpushare_board_check(fd) != 0) {
        /* Grow first (a shorter file cannot be mapped whole), then cut what is beyond the board. */
        if (ftruncate(fd, (off_t)sizeof(struct xpushare_board)) != 0) {
            rc = -errno;
        } else {
            struct xpushare_board *b = map_board(fd, PROT_READ | PROT_WRITE);
            if (b == NULL) {
                rc = -errno;
            } else {
                init_board(b, uuid, total_bytes);
                xpushare_board_unmap(b);
            }
        }
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

XPUSHARE_EXTERN struct xpushare_board *xpushare_board_map(int fd, int writable) {
    if (xpushare_board_check(fd) != 0) {
        errno = EPROTO;
        return NULL;
    }
    return map_board(fd, writable ? PROT_READ | PROT_WRITE : PROT_READ);
}

XPUSHARE_EXTERN int xpushare_board_unmap(struct xpushare_board *board) {
    return munmap(board, sizeof(*board)) == 0 ? 0 : -errno;
}

static void write_begin(struct xpushare_board *b) {
    __atomic_store_n(&b->seq, __atomic_load_n(&b->seq, __ATOMIC_RELAXED) | 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void write_end(struct xpushare_board *b) {
    __atomic_add_fetch(&b->generation, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&b->seq, __atomic_load_n(&b->seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
}

static int find_key(const struct xpushare_board *b, const char *key) {
    for (int i = 0; i < XPUSHARE_MAX_CLAIMS; i++)
        if (b->entries[i].state == XPUSHARE_SLOT_ACTIVE && strncmp(b->entries[i].key, key, XPUSHARE_KEY_LEN) == 0)
            return i;
    return -ENOENT;
}

/* Add or update a claim's entry (the plugin's writer only); its index, or -ENOSPC when the board is full. */
XPUSHARE_EXTERN int xpushare_board_set(struct xpushare_board *board, const char *key, uint64_t limit_bytes,
                                       uint32_t core_percent, uint32_t priority, uint32_t policy) {
    if (board == NULL || key == NULL || key[0] == '\0' || strlen(key) >= XPUSHARE_KEY_LEN || core_percent > 100 ||
        priority > XPUSHARE_PRIORITY_HIGH || policy > XPUSHARE_POLICY_FIXED)
        return -EINVAL;
    int i = find_key(board, key);
    for (int j = 0; i < 0 && j < XPUSHARE_MAX_CLAIMS; j++)
        if (board->entries[j].state != XPUSHARE_SLOT_ACTIVE)
            i = j;
    if (i < 0)
        return -ENOSPC;
    struct xpushare_board_entry *e = &board->entries[i];
    if (e->state == XPUSHARE_SLOT_ACTIVE && e->limit_bytes == limit_bytes && e->core_percent == core_percent &&
        e->priority == priority && e->policy == policy)
        return i; /* unchanged: running shims need not look again */
    write_begin(board);
    if (e->state != XPUSHARE_SLOT_ACTIVE) {
        memset(e, 0, sizeof(*e));
        strncpy(e->key, key, sizeof(e->key) - 1);
    }
    e->limit_bytes = limit_bytes;
    e->core_percent = core_percent;
    e->priority = priority;
    e->policy = policy;
    e->state = XPUSHARE_SLOT_ACTIVE;
    write_end(board);
    return i;
}

XPUSHARE_EXTERN int xpushare_board_remove(struct xpushare_board *board, const char *key) {
    if (board == NULL || key == NULL || key[0] == '\0')
        return -EINVAL;
    int i = find_key(board, key);
    if (i < 0)
        return i;
    write_begin(board);
    memset(&board->entries[i], 0, sizeof(board->entries[i]));
    write_end(board);
    return 0;
}

/*
 * A consistent copy of entry `index` and the generation it belongs to: 1 active, 0 free, -EAGAIN when a
 * write kept it changing (or a writer died half-way), -EINVAL for a bad index.
 */
XPUSHARE_EXTERN int xpushare_board_read(const struct xpushare_board *board, int index,
                                        struct xpushare_board_entry *out, uint64_t *generation) {
    if (board == NULL || out == NULL || index < 0 || index >= XPUSHARE_MAX_CLAIMS)
        return -EINVAL;
    for (int attempt = 0; attempt < READ_TRIES; attempt++) {
        uint64_t seq = __atomic_load_n(&board->seq, __ATOMIC_ACQUIRE);
        if (seq & 1)
            continue;
        uint64_t gen = __atomic_load_n(&board->generation, __ATOMIC_RELAXED);
        memcpy(out, (const void *)&board->entries[index], sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&board->seq, __ATOMIC_RELAXED) != seq)
            continue;
        out->key[XPUSHARE_KEY_LEN - 1] = '\0';
        if (generation != NULL)
            *generation = gen;
        return out->state == XPUSHARE_SLOT_ACTIVE;
    }
    return -EAGAIN;
}

/* The entry of claim `key`: its index, -ENOENT if absent, -EAGAIN if the board kept changing. */
XPUSHARE_EXTERN int xpushare_board_find(const struct xpushare_board *board, const char *key,
                                        struct xpushare_board_entry *out, uint64_t *generation) {
    if (board == NULL || key == NULL || out == NULL)
        return -EINVAL;
    int busy = 0;
    for (int i = 0; i < XPUSHARE_MAX_CLAIMS; i++) {
        int rc = xpushare_board_read(board, i, out, generation);
        if (rc == -EAGAIN)
            busy = 1;
        if (rc == 1 && strncmp(out->key, key, XPUSHARE_KEY_LEN) == 0)
            return i;
    }
    return busy ? -EAGAIN : -ENOENT;
}
