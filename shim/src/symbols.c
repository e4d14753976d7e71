/*
 * symbols.c - the table of vendor symbols the shim knows, their real addresses and their hooks.
 *
 * Real addresses are found once: by RTLD_NEXT on first use, or, when the application opened the vendor
 * library itself (PyTorch dlopens libcuda with RTLD_LOCAL, out of RTLD_NEXT's reach), from that library's
 * handle, a whole family at once. Knowing every real address lets cuGetProcAddress and dlsym map a
 * returned pointer back to its hook, whatever name or version it was asked for.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "internal.h"

/* The hooks are defined in cuda.c, nvml.c, ascend.c and dlsym.c; only their addresses are needed here. */
#define XPS_DECLARE(fam, name, hooked) extern void name(void);
XPS_SYMBOLS(XPS_DECLARE)
#undef XPS_DECLARE

struct sym_info {
    const char *name;
    void *hook;
    unsigned char family;
};

#define XPS_INFO(fam, name, hooked) {#name, (hooked) ? (void *)name : NULL, XPS_FAM_##fam},
static const struct sym_info symbols[XPS_SYM_COUNT] = {XPS_SYMBOLS(XPS_INFO)};
#undef XPS_INFO

void *xps__real[XPS_SYM_COUNT];
static int family_bound[XPS_FAM_COUNT];

typedef void *(*dlsym_fn)(void *, const char *);
typedef void *(*dlvsym_fn)(void *, const char *, const char *);
static dlsym_fn real_dlsym_ptr;
static dlvsym_fn real_dlvsym_ptr;

/* glibc's dlvsym: the shim's own references to dlvsym bind to its hook, so it is read from libc's table. */
static dlvsym_fn real_dlvsym(void) {
    dlvsym_fn fn = __atomic_load_n(&real_dlvsym_ptr, __ATOMIC_ACQUIRE);
    if (XPS_UNLIKELY(fn == NULL)) {
        fn = (dlvsym_fn)xps__libc_function("dlvsym", (void *)dlvsym);
        __atomic_store_n(&real_dlvsym_ptr, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

void *xps__real_dlvsym(void *handle, const char *name, const char *version) {
    dlvsym_fn fn = real_dlvsym();
    return fn != NULL ? fn(handle, name, version) : NULL;
}

/* glibc exports dlsym under two versions; ask for the newest first, then the original one. */
static dlsym_fn find_real_dlsym(void) {
    static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0"};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        void *p = xps__real_dlvsym(RTLD_NEXT, "dlsym", versions[i]);
        if (p != NULL)
            return (dlsym_fn)p;
    }
    return NULL;
}

void *xps__real_dlsym(void *handle, const char *name) {
    dlsym_fn fn = __atomic_load_n(&real_dlsym_ptr, __ATOMIC_ACQUIRE);
    if (XPS_UNLIKELY(fn == NULL)) {
        fn = find_real_dlsym();
        if (fn == NULL)
            return NULL;
        __atomic_store_n(&real_dlsym_ptr, fn, __ATOMIC_RELEASE);
    }
    return fn(handle, name);
}

static void set_real(int sym, void *p) {
    void *expected = NULL;
    if (p != NULL && p != symbols[sym].hook)
        __atomic_compare_exchange_n(&xps__real[sym], &expected, p, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* The libraries that hold each family, by the names they are loaded under. */
static const char *const family_libraries[XPS_FAM_COUNT][3] = {
    [XPS_FAM_CUDA] = {"libcuda.so.1", "libcuda.so", NULL},
    [XPS_FAM_NVML] = {"libnvidia-ml.so.1", "libnvidia-ml.so", NULL},
    [XPS_FAM_RT] = {"libruntime.so", NULL, NULL},
    [XPS_FAM_ACL] = {"libascendcl.so", "libacl_rt.so", NULL},
};

/*
 * A vendor library loaded as the dependency of one opened with RTLD_LOCAL (a Python extension module,
 * ctypes, torch_npu's libraries) is out of RTLD_NEXT's reach, yet its neighbours call the hooked
 * functions by name (libascendcl's aclrtMalloc calls rtMalloc): find it by name among the loaded ones.
 */
static void bind_family_from_loaded(int sym) {
    unsigned char family = symbols[sym].family;
    for (int i = 0; i < 3 && family_libraries[family][i] != NULL; i++) {
        void *handle = dlopen(family_libraries[family][i], RTLD_LAZY | RTLD_NOLOAD);
        if (handle != NULL) {
            xps__bind_family_from_handle(sym, handle);
            dlclose(handle);
            return;
        }
    }
}

void *xps__resolve(enum xps_sym sym) {
    xps__guard++;
    set_real(sym, xps__real_dlsym(RTLD_NEXT, symbols[sym].name));
    if (__atomic_load_n(&xps__real[sym], __ATOMIC_ACQUIRE) == NULL)
        bind_family_from_loaded(sym);
    xps__guard--;
    return __atomic_load_n(&xps__real[sym], __ATOMIC_ACQUIRE);
}

int xps__sym_by_name(const char *name) {
    if (name == NULL || (name[0] != 'c' && name[0] != 'n' && name[0] != 'r' && name[0] != 'a'))
        return -1;
    for (int i = 0; i < XPS_SYM_COUNT; i++)
        if (strcmp(symbols[i].name, name) == 0)
            return i;
    return -1;
}

void *xps__hook_of(int sym) {
    return sym >= 0 && sym < XPS_SYM_COUNT ? symbols[sym].hook : NULL;
}

void *xps__hook_for_pointer(void *real) {
    if (real == NULL)
        return NULL;
    for (int i = 0; i < XPS_SYM_COUNT; i++) {
        if (symbols[i].hook == real)
            return real; /* already ours */
        if (symbols[i].hook != NULL && __atomic_load_n(&xps__real[i], __ATOMIC_ACQUIRE) == real)
            return symbols[i].hook;
    }
    return NULL;
}

void xps__bind_family_from_handle(int sym, void *handle) {
    unsigned char family = symbols[sym].family;
    xps__guard++;
    for (int i = 0; i < XPS_SYM_COUNT; i++)
        if (symbols[i].family == family && __atomic_load_n(&xps__real[i], __ATOMIC_ACQUIRE) == NULL)
            set_real(i, xps__real_dlsym(handle, symbols[i].name));
    xps__guard--;
    __atomic_store_n(&family_bound[family], 1, __ATOMIC_RELEASE);
}

/* Bind a family from the library that holds `real` (found with dladdr), once. */
void xps__bind_family_from_pointer(int sym, void *real) {
    if (__atomic_load_n(&family_bound[symbols[sym].family], __ATOMIC_ACQUIRE))
        return;
    Dl_info info;
    xps__guard++;
    if (dladdr(real, &info) != 0 && info.dli_fname != NULL) {
        void *handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        if (handle != NULL) {
            xps__bind_family_from_handle(sym, handle);
            dlclose(handle);
        }
    }
    xps__guard--;
}
