/*
 * The board's seqlock under load: a writer and a reader in two processes, each in a tight loop through
 * the shim library's own board functions (loaded with dlopen, as the node plugin's binding loads them).
 *
 * usage: board_hammer LIBRARY BOARD write SECONDS    set entry "claim-a" to n MiB, n %, priority n % 3,
 *                                                    policy n % 2 for n = 0..100, over and over
 *        board_hammer LIBRARY BOARD read SECONDS     read entry 0 over and over; every copy returned as
 *                                                    valid must hold the fields of one single write
 * Output: "write ok=<writes>" / "read ok=<whole copies> torn=<mixed copies> again=<EAGAIN> distinct=<n>".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../../../shim/include/xpushare.h"

#define MIB (1ull << 20)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define LOAD(lib, name) ((__typeof__(&name))dlsym(lib, #name))

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: board_hammer LIBRARY BOARD write|read SECONDS\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "board_hammer: %s\n", dlerror());
        return 2;
    }
    uint64_t end = now_ns() + (uint64_t)(atof(argv[4]) * 1e9);
    if (strcmp(argv[3], "write") == 0) {
        int fd = LOAD(lib, xpushare_board_open)(argv[2], "GPU-1", 0);
        struct xpushare_board *board = fd >= 0 ? LOAD(lib, xpushare_board_map)(fd, 1) : NULL;
        if (board == NULL)
            return 3;
        __typeof__(&xpushare_board_set) set = LOAD(lib, xpushare_board_set);
        unsigned long writes = 0;
        for (uint32_t n = 0; now_ns() < end; n = (n + 1) % 101, writes++)
            if (set(board, "claim-a", n * MIB, n, n % 3, n % 2) != 0)
                return 4;
        printf("write ok=%lu\n", writes);
        return 0;
    }
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    const struct xpushare_board *board = fd >= 0 ? LOAD(lib, xpushare_board_map)(fd, 0) : NULL;
    if (board == NULL)
        return 3;
    __typeof__(&xpushare_board_read) read_entry = LOAD(lib, xpushare_board_read);
    unsigned long ok = 0, torn = 0, again = 0, distinct = 0;
    int seen[101] = {0};
    while (now_ns() < end) {
        struct xpushare_board_entry e;
        uint64_t generation = 0;
        int rc = read_entry(board, 0, &e, &generation);
        if (rc == -EAGAIN) {
            again++;
            continue;
        }
        if (rc != 1 || e.core_percent > 100 || e.limit_bytes != e.core_percent * MIB ||
            e.priority != e.core_percent % 3 || e.policy != e.core_percent % 2 || strcmp(e.key, "claim-a") != 0) {
            torn++;
            continue;
        }
        ok++;
        if (!seen[e.core_percent]++)
            distinct++;
    }
    printf("read ok=%lu torn=%lu again=%lu distinct=%lu\n", ok, torn, again, distinct);
    return 0;
}
