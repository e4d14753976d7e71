/*
 * identity.c - which of the claim's devices a device ordinal of this process is (-1: none of them).
 *
 * The limits file numbers devices as the container was given them, but a process may see them in
 * another order or only some of them (CUDA_VISIBLE_DEVICES=1,0, a data-parallel worker pinned to one
 * device): the ordinal it passes to the driver is then not the file's index. So an ordinal is resolved,
 * once, to the device's identity (its UUID through cuDeviceGet and cuDeviceGetUuid_v2) and from that to
 * the file's device of the same UUID. Where the runtime cannot say (no such call, an error, or a runtime
 * that numbers devices as the file does: Ascend here), the ordinal is taken as the file's index. A device
 * the runtime names but the file does not is none of the claim's (not limited; see docs/shim.md).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define UNRESOLVED 0
#define IDENTITY (-1)  /* the runtime could not name the device: the ordinal is the index */
#define UNCLAIMED (-2) /* named, but not a device of the file: no limits of another device apply */

/* Per CUDA ordinal: UNRESOLVED, IDENTITY, UNCLAIMED or the file's index + 1 (its slot in memory.c). */
static int resolved[XPUSHARE_MAX_DEVICES];

typedef int (*device_get_fn)(int *, int);
typedef int (*device_uuid_fn)(unsigned char *, int);

/* The NVIDIA form of a device's UUID: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx; 0 when it has none. */
static int cuda_uuid(int ordinal, char *out, size_t size) {
    device_get_fn get = (device_get_fn)xps__real_fn(XPS_SYM_cuDeviceGet);
    device_uuid_fn uuid = (device_uuid_fn)xps__real_fn(XPS_SYM_cuDeviceGetUuid_v2);
    if (uuid == NULL)
        uuid = (device_uuid_fn)xps__real_fn(XPS_SYM_cuDeviceGetUuid);
    int device = -1;
    unsigned char b[16];
    if (get == NULL || uuid == NULL || XPS_GUARDED(get(&device, ordinal)) != 0 ||
        XPS_GUARDED(uuid(b, device)) != 0)
        return 0;
    snprintf(out, size,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 1;
}

static int resolve(int ordinal) {
    char uuid[64];
    if (!cuda_uuid(ordinal, uuid, sizeof(uuid)))
        return IDENTITY;
    int index = xps__device_by_uuid(uuid);
    return index >= 0 ? index + 1 : UNCLAIMED;
}

int xps__device_slot(enum xps_vendor vendor, int ordinal) {
    if (vendor != XPS_VENDOR_CUDA || ordinal < 0 || ordinal >= XPUSHARE_MAX_DEVICES)
        return ordinal;
    int slot = __atomic_load_n(&resolved[ordinal], __ATOMIC_ACQUIRE);
    if (XPS_UNLIKELY(slot == UNRESOLVED)) {
        slot = resolve(ordinal);
        __atomic_store_n(&resolved[ordinal], slot, __ATOMIC_RELEASE);
    }
    return slot == IDENTITY ? ordinal : (slot == UNCLAIMED ? -1 : slot - 1);
}
