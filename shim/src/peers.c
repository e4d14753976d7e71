/*
 * peers.c - what a process knows of the device's other claims: their board entries (priority, written by
 * the node plugin) and the heads of their ledgers (activity, written by them), refreshed at most every
 * XPUSHARE_PEERS_REFRESH_NS from the compute slow path.
 *
 * A peer's ledger is read with one pread of its head through a descriptor kept open per board entry:
 * never mapped (a truncate cannot fault this process), never locked (a held lock cannot stall it), and a
 * head of another layout, of another claim or cut short counts as an idle peer. Called with the
 * device's compute mutex held (compute.c), which serialises the refreshes of one device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct peer_cache {
    uint64_t refreshed_ns;
    struct xpushare_peers peers;
    int fds[XPUSHARE_MAX_CLAIMS];    /* open ledger of the board entry's claim, -1 none */
    char keys[XPUSHARE_MAX_CLAIMS][XPUSHARE_KEY_LEN];
    int initialised;
};

static struct peer_cache caches[XPUSHARE_MAX_DEVICES];

static void drop(struct peer_cache *cache, int i) {
    if (cache->fds[i] >= 0)
        close(cache->fds[i]);
    cache->fds[i] = -1;
    cache->keys[i][0] = '\0';
}

/* A claim UID as a file name under the peers' directory: no separators, no dot names. */
static int safe_name(const char *key) {
    return key[0] != '\0' && key[0] != '.' && strchr(key, '/') == NULL;
}

/* The ledger of the peer in board entry `i`, opened read-only once per claim. */
static int peer_fd(struct peer_cache *cache, int i, const char *dir, size_t dir_len, const char *key) {
    if (cache->fds[i] >= 0 && strncmp(cache->keys[i], key, XPUSHARE_KEY_LEN) == 0)
        return cache->fds[i];
    drop(cache, i);
    char path[sizeof(((struct xps_limit *)0)->board) + XPUSHARE_KEY_LEN + 16];
    if (!safe_name(key) || dir_len + sizeof(XPUSHARE_CLAIMS_DIR) + strlen(key) + 1 >= sizeof(path))
        return -1;
    snprintf(path, sizeof(path), "%.*s" XPUSHARE_CLAIMS_DIR "/%s", (int)dir_len, dir, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0) {
        cache->fds[i] = fd;
        snprintf(cache->keys[i], XPUSHARE_KEY_LEN, "%s", key);
    }
    return fd;
}

static void refresh(struct peer_cache *cache, const struct xpushare_board *board, const struct xps_limit *limit,
                    const char *own_key, uint64_t now) {
    struct xpushare_peers peers;
    memset(&peers, 0, sizeof(peers));
    const char *slash = strrchr(limit->board, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - limit->board) + 1 : 0;
    for (int i = 0; i < XPUSHARE_MAX_CLAIMS; i++) {
        struct xpushare_board_entry entry;
        int rc = xpushare_board_read(board, i, &entry, NULL);
        if (rc != 1 || strncmp(entry.key, own_key, XPUSHARE_KEY_LEN) == 0) {
            if (rc != -EAGAIN)
                drop(cache, i);
            continue;
        }
        int fd = peer_fd(cache, i, limit->board, dir_len, entry.key);
        struct xpushare_ledger_head head;
        if (fd >= 0 && xpushare_ledger_read_head(fd, &head) == 0 &&
            strncmp(head.key, entry.key, XPUSHARE_KEY_LEN) == 0)
            xpushare_peers_add(&peers, &head, entry.priority % 3, now);
        else
            peers.count++; /* there, but nothing usable published: an idle peer */
    }
    cache->peers = peers;
}

const struct xpushare_peers *xps__peers(int dev, uint64_t now) {
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES)
        return NULL;
    int own = -1;
    const struct xpushare_board *board = xps__device_board(dev, &own);
    if (board == NULL)
        return NULL; /* no board: the claim acts as if alone on the device */
    struct peer_cache *cache = &caches[dev];
    if (!cache->initialised) {
        for (int i = 0; i < XPUSHARE_MAX_CLAIMS; i++)
            cache->fds[i] = -1;
        cache->initialised = 1;
    }
    if (cache->refreshed_ns == 0 || now - cache->refreshed_ns >= XPUSHARE_PEERS_REFRESH_NS || now < cache->refreshed_ns) {
        int proc = -1;
        const struct xps_limit *limit = NULL;
        if (xps__device_ledger(dev, &proc, &limit) == NULL)
            return NULL;
        int saved = errno;
        refresh(cache, board, limit, xps__claim_key(), now);
        errno = saved;
        cache->refreshed_ns = now;
    }
    return &cache->peers;
}

/* In a forked child: the descriptors are the parent's copies; read again from scratch. */
void xps__peers_reset(void) {
    for (int d = 0; d < XPUSHARE_MAX_DEVICES; d++) {
        struct peer_cache *cache = &caches[d];
        if (cache->initialised)
            for (int i = 0; i < XPUSHARE_MAX_CLAIMS; i++)
                drop(cache, i);
        cache->refreshed_ns = 0;
        memset(&cache->peers, 0, sizeof(cache->peers));
    }
}
