/*
 * A CUDA driver client driven by its arguments, for preloading the shim into a real process.
 *
 * usage: cuda_client MODE [DEVICE] -- COMMAND...
 *   MODE: link (calls by link-time name; build with -DLINKED and the fake library), dlsym (dlopen and
 *   dlsym), dlsym_old (dlsym@GLIBC_2.2.5), gpa (dlsym of cuGetProcAddress only, everything else from it)
 *   COMMANDS: alloc N | managed N | async N | pool N | pitch W H | vmm N | free | release | freeall |
 *   info | total | fill N | race N ITERATIONS | forkalloc N | ready | launch N | work N (kernels of 1 ms) |
 *   copy KIND (a synchronous copy: memcpy, dtoh, htod, dtod, or one of them with _ptds) |
 *   benchlaunch N BATCHES | benchalloc N BATCHES (print ns per call, per batch) |
 *   benchstep N BATCHES (steps of 8 empty launches and a context synchronize, as a decoding loop makes
 *   them: ns per step, per batch) |
 *   capture N (on a new stream: capture N kernels of 1 ms into a graph, as torch.cuda.graph does, then
 *   launch the graph and synchronize: "capture rc=R graph_ns=G" and "replay rc=R")
 * Every command prints one line, e.g. "alloc rc=2".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

struct mem_prop {
    int type, handle_types, location_type, location_id;
    void *win32;
    unsigned long long flags;
};

static struct {
    CUresult (*init)(unsigned);
    CUresult (*ctx_create)(void **, unsigned, int);
    CUresult (*alloc)(CUdeviceptr *, size_t);
    CUresult (*managed)(CUdeviceptr *, size_t, unsigned);
    CUresult (*async)(CUdeviceptr *, size_t, void *);
    CUresult (*pool)(CUdeviceptr *, size_t, void *, void *);
    CUresult (*pitch)(CUdeviceptr *, size_t *, size_t, size_t, unsigned);
    CUresult (*free)(CUdeviceptr);
    CUresult (*free_async)(CUdeviceptr, void *);
    CUresult (*create)(unsigned long long *, size_t, const struct mem_prop *, unsigned long long);
    CUresult (*release)(unsigned long long);
    CUresult (*info)(size_t *, size_t *);
    CUresult (*total)(size_t *, int);
    CUresult (*launch)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
                       void **, void **);
    CUresult (*sync)(void);
    CUresult (*stream_create)(void **, unsigned);
    CUresult (*begin_capture)(void *, int);
    CUresult (*end_capture)(void *, void **);
    CUresult (*graph_launch)(void *, void *);
    CUresult (*stream_sync)(void *);
} cu;

#ifdef LINKED
CUresult cuInit(unsigned);
CUresult cuCtxCreate_v2(void **, unsigned, int);
CUresult cuMemAlloc_v2(CUdeviceptr *, size_t);
CUresult cuMemAllocManaged(CUdeviceptr *, size_t, unsigned);
CUresult cuMemAllocAsync(CUdeviceptr *, size_t, void *);
CUresult cuMemAllocFromPoolAsync(CUdeviceptr *, size_t, void *, void *);
CUresult cuMemAllocPitch_v2(CUdeviceptr *, size_t *, size_t, size_t, unsigned);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemFreeAsync(CUdeviceptr, void *);
CUresult cuMemCreate(unsigned long long *, size_t, const struct mem_prop *, unsigned long long);
CUresult cuMemRelease(unsigned long long);
CUresult cuMemGetInfo_v2(size_t *, size_t *);
CUresult cuDeviceTotalMem_v2(size_t *, int);
CUresult cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
                        void **, void **);
CUresult cuCtxSynchronize(void);
CUresult cuStreamCreate(void **, unsigned);
CUresult cuStreamBeginCapture_v2(void *, int);
CUresult cuStreamEndCapture(void *, void **);
CUresult cuGraphLaunch(void *, void *);
CUresult cuStreamSynchronize(void *);
static void bind_linked(void) {
    cu.init = cuInit, cu.ctx_create = cuCtxCreate_v2, cu.alloc = cuMemAlloc_v2, cu.managed = cuMemAllocManaged;
    cu.async = cuMemAllocAsync, cu.pool = cuMemAllocFromPoolAsync, cu.pitch = cuMemAllocPitch_v2;
    cu.free = cuMemFree_v2, cu.free_async = cuMemFreeAsync, cu.create = cuMemCreate, cu.release = cuMemRelease;
    cu.info = cuMemGetInfo_v2, cu.total = cuDeviceTotalMem_v2, cu.launch = cuLaunchKernel;
    cu.sync = cuCtxSynchronize, cu.stream_create = cuStreamCreate, cu.begin_capture = cuStreamBeginCapture_v2;
    cu.end_capture = cuStreamEndCapture, cu.graph_launch = cuGraphLaunch, cu.stream_sync = cuStreamSynchronize;
}
#endif

#if defined(__x86_64__)
__asm__(".symver old_dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver old_dlsym,dlsym@GLIBC_2.17");
#endif
void *old_dlsym(void *, const char *);

typedef CUresult (*gpa_fn)(const char *, void **, int, unsigned long long, int *);

/* The synchronous copies, by command name, with the driver symbol each one is. */
static const char *const copy_kinds[][2] = {
    {"memcpy", "cuMemcpy"},          {"memcpy_ptds", "cuMemcpy_ptds"},
    {"dtoh", "cuMemcpyDtoH_v2"},     {"dtoh_ptds", "cuMemcpyDtoH_v2_ptds"},
    {"htod", "cuMemcpyHtoD_v2"},     {"htod_ptds", "cuMemcpyHtoD_v2_ptds"},
    {"dtod", "cuMemcpyDtoD_v2"},     {"dtod_ptds", "cuMemcpyDtoD_v2_ptds"},
};
#define COPY_KINDS (sizeof(copy_kinds) / sizeof(copy_kinds[0]))
static CUresult (*copies[COPY_KINDS])(unsigned long long, unsigned long long, size_t);

#ifndef LINKED
/* cuGetProcAddress takes the base name; per-thread variants are asked for with the per-thread flag. */
static void bind_copies(void *lib, void *(*look)(void *, const char *), gpa_fn gpa) {
    for (size_t k = 0; k < COPY_KINDS; k++) {
        const char *name = copy_kinds[k][1];
        void *p = NULL;
        if (gpa != NULL) {
            char base[64];
            size_t len = strcspn(name, "_");
            snprintf(base, sizeof(base), "%.*s", (int)len, name);
            gpa(base, &p, 12040, strstr(name, "_ptds") ? 2 : 0, NULL);
        } else {
            p = look(lib, name);
        }
        *(void **)&copies[k] = p;
    }
}
#endif

static void bind(const char *mode) {
#ifdef LINKED
    (void)mode;
    bind_linked();
#else
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        printf("dlopen failed: %s\n", dlerror());
        exit(3);
    }
    void *(*look)(void *, const char *) = strcmp(mode, "dlsym_old") == 0 ? old_dlsym : dlsym;
    gpa_fn gpa = strcmp(mode, "gpa") == 0 ? (gpa_fn)look(lib, "cuGetProcAddress_v2") : NULL;
#define GET(field, name)                                                                                 \
    do {                                                                                                 \
        void *p = NULL;                                                                                  \
        if (gpa != NULL)                                                                                 \
            gpa(name, &p, 12040, 0, NULL);                                                               \
        else                                                                                             \
            p = look(lib, name "_v2") ? look(lib, name "_v2") : look(lib, name);                         \
        *(void **)&cu.field = p;                                                                         \
    } while (0)
    GET(init, "cuInit");
    GET(ctx_create, "cuCtxCreate");
    GET(alloc, "cuMemAlloc");
    GET(managed, "cuMemAllocManaged");
    GET(async, "cuMemAllocAsync");
    GET(pool, "cuMemAllocFromPoolAsync");
    GET(pitch, "cuMemAllocPitch");
    GET(free, "cuMemFree");
    GET(free_async, "cuMemFreeAsync");
    GET(create, "cuMemCreate");
    GET(release, "cuMemRelease");
    GET(info, "cuMemGetInfo");
    GET(total, "cuDeviceTotalMem");
    GET(launch, "cuLaunchKernel");
    GET(sync, "cuCtxSynchronize");
    GET(stream_create, "cuStreamCreate");
    GET(begin_capture, "cuStreamBeginCapture");
    GET(end_capture, "cuStreamEndCapture");
    GET(graph_launch, "cuGraphLaunch");
    GET(stream_sync, "cuStreamSynchronize");
    bind_copies(lib, look, gpa);
#endif
}

static CUdeviceptr ptrs[100000];
static int nptrs;
static unsigned long long handles[10000];
static int nhandles;
static int device;

static void push(CUresult rc, CUdeviceptr p) {
    if (rc == 0 && nptrs < 100000)
        ptrs[nptrs++] = p;
}

static CUresult do_free(void) { return nptrs ? cu.free(ptrs[--nptrs]) : -1; }

static int run(char **argv, int i) {
    const char *cmd = argv[i];
    CUdeviceptr p = 0;
    CUresult rc;
    size_t n = argv[i + 1] ? strtoull(argv[i + 1], NULL, 10) : 0;
    if (strcmp(cmd, "alloc") == 0) {
        rc = cu.alloc(&p, n);
        push(rc, p);
        printf("alloc rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "managed") == 0) {
        rc = cu.managed(&p, n, 1);
        push(rc, p);
        printf("managed rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "async") == 0) {
        rc = cu.async(&p, n, NULL);
        push(rc, p);
        printf("async rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "pool") == 0) {
        rc = cu.pool(&p, n, NULL, NULL);
        push(rc, p);
        printf("pool rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "pitch") == 0) {
        size_t pitch = 0, h = strtoull(argv[i + 2], NULL, 10);
        rc = cu.pitch(&p, &pitch, n, h, 4);
        push(rc, p);
        printf("pitch rc=%d pitch=%zu\n", rc, pitch);
        return 3;
    } else if (strcmp(cmd, "vmm") == 0) {
        struct mem_prop prop = {.type = 1, .location_type = 1, .location_id = device};
        unsigned long long h = 0;
        rc = cu.create(&h, n, &prop, 0);
        if (rc == 0)
            handles[nhandles++] = h;
        printf("vmm rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "release") == 0) {
        printf("release rc=%d\n", nhandles ? cu.release(handles[--nhandles]) : -1);
    } else if (strcmp(cmd, "free") == 0) {
        printf("free rc=%d\n", do_free());
    } else if (strcmp(cmd, "freeasync") == 0) {
        printf("freeasync rc=%d\n", nptrs ? cu.free_async(ptrs[--nptrs], NULL) : -1);
    } else if (strcmp(cmd, "freeall") == 0) {
        int bad = 0;
        while (nptrs)
            bad += do_free() != 0;
        printf("freeall bad=%d\n", bad);
    } else if (strcmp(cmd, "info") == 0) {
        size_t f = 0, t = 0;
        rc = cu.info(&f, &t);
        printf("info rc=%d free=%zu total=%zu\n", rc, f, t);
    } else if (strcmp(cmd, "total") == 0) {
        size_t t = 0;
        rc = cu.total(&t, device);
        printf("total rc=%d bytes=%zu\n", rc, t);
    } else if (strcmp(cmd, "fill") == 0) {
        int count = 0;
        while ((rc = cu.alloc(&p, n)) == 0) {
            push(rc, p);
            count++;
        }
        printf("fill count=%d rc=%d\n", count, rc);
        return 2;
    } else if (strcmp(cmd, "race") == 0) {
        long iterations = atol(argv[i + 2]), ok = 0, failed = 0;
        unsigned seed = (unsigned)getpid();
        for (long k = 0; k < iterations; k++) {
            if ((rc = cu.alloc(&p, n + rand_r(&seed) % 4096)) == 0) {
                push(rc, p);
                ok++;
            }
            else if (rc == 2)
                failed++, do_free();
            else
                printf("race unexpected rc=%d\n", rc);
            if (rand_r(&seed) % 3 == 0)
                do_free();
        }
        printf("race ok=%ld failed=%ld\n", ok, failed);
        return 3;
    } else if (strcmp(cmd, "forkalloc") == 0) {
        pid_t child = fork();
        if (child == 0) {
            rc = cu.alloc(&p, n);
            printf("child alloc rc=%d\n", rc);
            fflush(stdout);
            _exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        printf("forkalloc status=%d\n", status);
        return 2;
    } else if (strcmp(cmd, "launch") == 0) {
        for (size_t k = 0; k < n; k++)
            if ((rc = cu.launch(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL)) != 0)
                printf("launch rc=%d\n", rc);
        printf("launch done=%zu\n", n);
        return 2;
    } else if (strcmp(cmd, "work") == 0) {
        for (size_t k = 0; k < n; k++)
            if ((rc = cu.launch(NULL, 1000000, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL)) != 0)
                printf("work rc=%d\n", rc);
        printf("work done=%zu\n", n);
        return 2;
    } else if (strcmp(cmd, "copy") == 0) {
        static char host[64];
        rc = -1;
        for (size_t k = 0; k < COPY_KINDS; k++)
            if (strcmp(argv[i + 1], copy_kinds[k][0]) == 0 && copies[k] != NULL)
                rc = copies[k](ptrs[0], (unsigned long long)(uintptr_t)host, sizeof(host));
        printf("copy rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "capture") == 0) {
        void *stream = NULL, *graph = NULL;
        rc = cu.stream_create(&stream, 1);
        if (rc == 0)
            rc = cu.begin_capture(stream, 0); /* CU_STREAM_CAPTURE_MODE_GLOBAL, PyTorch's default */
        for (size_t k = 0; k < n && rc == 0; k++)
            rc = cu.launch(NULL, 1000000, 1, 1, 1, 1, 1, 0, stream, NULL, NULL);
        CUresult ended = cu.end_capture(stream, &graph);
        printf("capture rc=%d end=%d graph_ns=%llu\n", rc, ended, (unsigned long long)(uintptr_t)graph);
        rc = graph != NULL ? cu.graph_launch(graph, stream) : -1;
        if (rc == 0)
            rc = cu.stream_sync(stream);
        printf("replay rc=%d\n", rc);
        return 2;
    } else if (strcmp(cmd, "benchstep") == 0) {
        long batches = atol(argv[i + 2]);
        for (long b = 0; b < batches; b++) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (size_t k = 0; k < n; k++) {
                for (int l = 0; l < 8; l++)
                    cu.launch(NULL, 0, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
                cu.sync();
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
            printf("%s ns=%.3f\n", cmd, ns / (double)n);
        }
        return 3;
    } else if (strcmp(cmd, "benchlaunch") == 0 || strcmp(cmd, "benchalloc") == 0) {
        long batches = atol(argv[i + 2]);
        for (long b = 0; b < batches; b++) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (size_t k = 0; k < n; k++) {
                if (cmd[5] == 'l') {
                    cu.launch(NULL, 0, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
                } else if (cu.alloc(&p, 4096) == 0) {
                    cu.free(p);
                }
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
            printf("%s ns=%.3f\n", cmd, ns / (double)n);
        }
        return 3;
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
    if (argc < 3)
        return 2;
    bind(argv[1]);
    int i = 2;
    if (strcmp(argv[i], "--") != 0)
        device = atoi(argv[i++]);
    i++;
    void *ctx = NULL;
    if (cu.init == NULL || cu.init(0) != 0 || cu.ctx_create(&ctx, 0, device) != 0) {
        printf("init failed\n");
        return 3;
    }
    while (i < argc)
        i += run(argv, i);
    return 0;
}
