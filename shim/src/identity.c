/*
 * identity.c - which of the container's devices a device ordinal of this process is.
 *
 * The limits files name each device by its identity, not by the number a process uses for it: a process
 * may see its devices in another order or only some of them (CUDA_VISIBLE_DEVICES=1,0, a data-parallel
 * worker pinned to one device, ASCEND_RT_VISIBLE_DEVICES), and a container with several claims numbers
 * all their devices together. So an ordinal is resolved, once, through the runtime's own query to the
 * device's identity: its UUID (cuDeviceGet, cuDeviceGetUuid_v2) on CUDA, its physical chip id
 * (rtGetDevicePhyIdByIndex) on Ascend; and from that to the device of the limits that names it. Only
 * where the runtime cannot say (no such call, an error, or limits without physical ids) is the ordinal
 * taken as the device's position (limits.c orders them). A device the runtime names but no claim of the
 * container holds is unclaimed: its allocations are refused, and the first look says so on stderr.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define UNRESOLVED 0
#define POSITION (-1) /* the runtime could not name the device: the ordinal is the position */
#define NONE (-2)     /* named, but no claim of the container holds it */

/* Per vendor and ordinal: UNRESOLVED, POSITION, NONE or the slot + 1. */
static int resolved[XPS_VENDOR_COUNT][XPUSHARE_MAX_DEVICES];

typedef int (*device_get_fn)(int *, int);
typedef int (*device_uuid_fn)(unsigned char *, int);
typedef int (*physical_id_fn)(uint32_t, uint32_t *);

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

/* The Ascend chip id behind a logical id of this process; 0 when the runtime cannot say. */
static int ascend_physical(int ordinal, uint32_t *out) {
    physical_id_fn fn = (physical_id_fn)xps__real_fn(XPS_SYM_rtGetDevicePhyIdByIndex);
    return fn != NULL && XPS_GUARDED(fn((uint32_t)ordinal, out)) == 0;
}

static int resolve(enum xps_vendor vendor, int ordinal, char *name, size_t size) {
    if (vendor == XPS_VENDOR_CUDA) {
        if (!cuda_uuid(ordinal, name, size))
            return POSITION;
        int slot = xps__device_by_uuid(name);
        return slot >= 0 ? slot + 1 : NONE;
    }
    uint32_t physical = 0;
    if (!xps__limits_have_physical() || !ascend_physical(ordinal, &physical))
        return POSITION;
    snprintf(name, size, "physical chip %u", physical);
    int slot = xps__device_by_physical((int)physical);
    return slot >= 0 ? slot + 1 : NONE;
}

int xps__device_slot(enum xps_vendor vendor, int ordinal) {
    if (ordinal < 0 || !xps__limits_usable())
        return -1; /* without limits nothing is resolved (xps__reserve refuses on its own) */
    if (ordinal >= XPUSHARE_MAX_DEVICES)
        return XPS_UNCLAIMED;
    int *entry = &resolved[vendor == XPS_VENDOR_CUDA ? XPS_VENDOR_CUDA : XPS_VENDOR_RT][ordinal];
    int slot = __atomic_load_n(entry, __ATOMIC_ACQUIRE);
    if (XPS_UNLIKELY(slot == UNRESOLVED)) {
        char name[64] = "";
        slot = resolve(vendor, ordinal, name, sizeof(name));
        if (slot == POSITION && !xps__device_configured(ordinal)) {
            snprintf(name, sizeof(name), "number %d", ordinal);
            slot = NONE;
        }
        if (slot == NONE && __atomic_exchange_n(entry, NONE, __ATOMIC_ACQ_REL) != NONE)
            xps__warn("device %d (%s) is held by no claim of this container: its allocations are refused",
                      ordinal, name);
        __atomic_store_n(entry, slot, __ATOMIC_RELEASE);
    }
    return slot == POSITION ? ordinal : (slot == NONE ? XPS_UNCLAIMED : slot - 1);
}
