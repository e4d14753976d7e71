/*
 * An Ascend ACL client driven by its arguments (dlopens libascendcl.so and libruntime.so).
 *
 * usage: acl_client DEVICE COMMAND...
 *   alloc N | free | phys N | freephys | rtalloc N | info | rtinfo | fill N | launch N | ready |
 *   work N (N kernels of 1 ms) | sync NAME (call the synchronize or synchronous copy NAME: an acl* name
 *   from libascendcl.so, an rt* one from libruntime.so; a copy reads 64 bytes of the first allocation
 *   back to the host, a stream synchronize takes the default stream, a _WithTimeout one 10 s)
 * Every command prints one line, e.g. "alloc rc=207001".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    int (*set_device)(int32_t);
    int (*malloc)(void **, size_t, int);
    int (*free)(void *);
    int (*malloc_phys)(void **, size_t, const void *, uint64_t);
    int (*free_phys)(void *);
    int (*mem_info)(uint32_t, size_t *, size_t *);
    int (*launch)(const void *, uint32_t, void *, uint32_t, void *);
    int (*rt_malloc)(void **, uint64_t, uint32_t, uint16_t);
    int (*rt_mem_info)(uint32_t, size_t *, size_t *);
} acl;

static void *ptrs[100000], *handles[1000];
static int nptrs, nhandles;

static void *lib, *rt;

static void bind(void) {
    lib = dlopen("libascendcl.so", RTLD_NOW | RTLD_LOCAL);
    rt = dlopen("libruntime.so", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL || rt == NULL) {
        printf("dlopen failed: %s\n", dlerror());
        exit(3);
    }
    *(void **)&acl.set_device = dlsym(lib, "aclrtSetDevice");
    *(void **)&acl.malloc = dlsym(lib, "aclrtMalloc");
    *(void **)&acl.free = dlsym(lib, "aclrtFree");
    *(void **)&acl.malloc_phys = dlsym(lib, "aclrtMallocPhysical");
    *(void **)&acl.free_phys = dlsym(lib, "aclrtFreePhysical");
    *(void **)&acl.mem_info = dlsym(lib, "aclrtGetMemInfo");
    *(void **)&acl.launch = dlsym(lib, "aclrtLaunchKernel");
    *(void **)&acl.rt_malloc = dlsym(rt, "rtMalloc");
    *(void **)&acl.rt_mem_info = dlsym(rt, "rtMemGetInfoEx");
}

/* A synchronize or synchronous copy by name, called with arguments of its kind. */
static int sync_call(const char *name) {
    static char host[64];
    void *fn = dlsym(name[0] == 'a' ? lib : rt, name);
    int timeout = strstr(name, "WithTimeout") != NULL;
    if (fn == NULL)
        return -1;
    if (strstr(name, "Memcpy") != NULL)
        return nptrs ? ((int (*)(void *, size_t, const void *, size_t, int))fn)(host, sizeof(host), ptrs[0],
                                                                               sizeof(host), 2)
                     : -1;
    if (strstr(name, "Stream") != NULL)
        return timeout ? ((int (*)(void *, int32_t))fn)(NULL, 10000) : ((int (*)(void *))fn)(NULL);
    return timeout ? ((int (*)(int32_t))fn)(10000) : ((int (*)(void))fn)();
}

static int run(char **argv, int i) {
    const char *cmd = argv[i];
    size_t n = argv[i + 1] ? strtoull(argv[i + 1], NULL, 10) : 0;
    void *p = NULL;
    int rc;
    if (strcmp(cmd, "alloc") == 0 || strcmp(cmd, "rtalloc") == 0) {
        rc = cmd[0] == 'a' ? acl.malloc(&p, n, 0) : acl.rt_malloc(&p, n, 2, 0);
        if (rc == 0)
            ptrs[nptrs++] = p;
        printf("%s rc=%d\n", cmd, rc);
        return 2;
    } else if (strcmp(cmd, "phys") == 0) {
        rc = acl.malloc_phys(&p, n, NULL, 0);
        if (rc == 0)
            handles[nhandles++] = p;
        printf("phys rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "fill") == 0) {
        int count = 0;
        while ((rc = acl.malloc(&p, n, 0)) == 0 && nptrs < 100000)
            ptrs[nptrs++] = p, count++;
        printf("fill count=%d rc=%d\n", count, rc);
        return 2;
    } else if (strcmp(cmd, "launch") == 0) {
        for (size_t k = 0; k < n; k++)
            acl.launch(NULL, 1, NULL, 0, NULL);
        printf("launch done=%zu\n", n);
        return 2;
    } else if (strcmp(cmd, "work") == 0) {
        for (size_t k = 0; k < n; k++)
            acl.launch(NULL, 1000000, NULL, 0, NULL);
        printf("work done=%zu\n", n);
        return 2;
    } else if (strcmp(cmd, "sync") == 0) {
        printf("sync rc=%d\n", argv[i + 1] ? sync_call(argv[i + 1]) : -1);
        return 2;
    } else if (strcmp(cmd, "free") == 0) {
        printf("free rc=%d\n", nptrs ? acl.free(ptrs[--nptrs]) : -1);
    } else if (strcmp(cmd, "freephys") == 0) {
        printf("freephys rc=%d\n", nhandles ? acl.free_phys(handles[--nhandles]) : -1);
    } else if (strcmp(cmd, "info") == 0 || strcmp(cmd, "rtinfo") == 0) {
        size_t f = 0, t = 0;
        rc = cmd[0] == 'i' ? acl.mem_info(1, &f, &t) : acl.rt_mem_info(1, &f, &t);
        printf("%s rc=%d free=%zu total=%zu\n", cmd, rc, f, t);
    } else if (strcmp(cmd, "ready") == 0) {
        printf("ready\n");
        fflush(stdout);
        char buf[16];
        while (read(0, buf, sizeof(buf)) > 0)
            ;
    } else {
        printf("unknown command %s\n", cmd);
        exit(2);
    }
    return 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    bind();
    if (acl.set_device(atoi(argv[1])) != 0) {
        printf("set device failed\n");
        return 3;
    }
    for (int i = 2; i < argc;)
        i += run(argv, i);
    return 0;
}
