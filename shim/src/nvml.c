/*
 * nvml.c - NVML memory-info hooks, so nvidia-smi and monitoring inside the container show the claim's
 * limit as the device's memory and the claim's usage as used.
 */
#define _GNU_SOURCE
#include "internal.h"

typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define UUID_LEN 96

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef nvmlReturn_t (*nvmlDeviceGetUUID_fn)(nvmlDevice_t, char *, unsigned int);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_fn)(nvmlDevice_t, nvmlMemory_t *);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_v2_fn)(nvmlDevice_t, nvmlMemory_v2_t *);

/* NVML numbers devices on the host; the limits file names them by UUID. */
static int device_of(nvmlDevice_t device) {
    if (!__atomic_load_n(&xps__enforcing, __ATOMIC_ACQUIRE))
        return -1;
    nvmlDeviceGetUUID_fn get = (nvmlDeviceGetUUID_fn)xps__real_fn(XPS_SYM_nvmlDeviceGetUUID);
    char uuid[UUID_LEN];
    if (get == NULL || XPS_GUARDED(get(device, uuid, sizeof(uuid))) != NVML_SUCCESS)
        return -1;
    return xps__device_by_uuid(uuid);
}

static int adjust(nvmlDevice_t device, unsigned long long *total, unsigned long long *free_bytes,
                  unsigned long long *used) {
    uint64_t f, t;
    if (!xps__mem_info(device_of(device), *free_bytes, *total, &f, &t))
        return 0;
    *total = t;
    *free_bytes = f;
    *used = t - f;
    return 1;
}

XPUSHARE_EXTERN nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    nvmlDeviceGetMemoryInfo_fn real = (nvmlDeviceGetMemoryInfo_fn)xps__real_fn(XPS_SYM_nvmlDeviceGetMemoryInfo);
    if (XPS_UNLIKELY(real == NULL))
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    nvmlReturn_t rc = real(device, memory);
    if (rc == NVML_SUCCESS && memory != NULL && !xps__guard)
        adjust(device, &memory->total, &memory->free, &memory->used);
    return rc;
}

XPUSHARE_EXTERN nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    nvmlDeviceGetMemoryInfo_v2_fn real =
        (nvmlDeviceGetMemoryInfo_v2_fn)xps__real_fn(XPS_SYM_nvmlDeviceGetMemoryInfo_v2);
    if (XPS_UNLIKELY(real == NULL))
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    nvmlReturn_t rc = real(device, memory);
    if (rc == NVML_SUCCESS && memory != NULL && !xps__guard &&
        adjust(device, &memory->total, &memory->free, &memory->used))
        memory->used = memory->used > memory->reserved ? memory->used - memory->reserved : 0;
    return rc;
}
