/*
 * limits.c - parse the read-only limits files the node plugin writes (format in xpushare.h), one per
 * claim of the container, and merge them into one set of devices.
 *
 * Read once at start-up; a malformed line, a file cut short (no newline at its end, or no device) or a
 * read error rejects the set as a whole, so a half-read file never enforces wrong limits: the shim then
 * refuses device allocations (memory.c). Claims on the same physical device (same UUID) become one
 * device whose limits are their sum, as two requests of one claim on a device are.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

#define LIMITS_MAX_BYTES 65536

static int parse_u64(const char *text, uint64_t max, uint64_t *out) {
    char *end = NULL;
    if (text[0] < '0' || text[0] > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int copy_text(char *dest, size_t size, const char *value) {
    if (strlen(value) >= size)
        return -EINVAL;
    strcpy(dest, value);
    return 0;
}

/* The keys of a device line: what each holds and where it goes in struct xps_limit. */
enum field_kind { FIELD_NUMBER, FIELD_WORD, FIELD_TEXT };
struct field {
    const char *key;
    enum field_kind kind;
    size_t offset, size;       /* the member */
    uint64_t max;              /* FIELD_NUMBER: the largest value */
    const char *const *words;  /* FIELD_WORD: the values, stored as their index */
    size_t given;              /* offset of a uint32_t set to 1 when the key is present; 0: none */
};

static const char *const priorities[] = {"low", "normal", "high", NULL};
static const char *const policies[] = {"guaranteed", "fixed", NULL};
/* Indexed by XPUSHARE_SCHED_*: how the device shares its time between contexts. */
static const char *const schedulings[] = {"serial", "time-sliced", NULL};

#define MEMBER(name) offsetof(struct xps_limit, name), sizeof(((struct xps_limit *)0)->name)
static const struct field fields[] = {
    {"index", FIELD_NUMBER, MEMBER(index), XPUSHARE_MAX_DEVICES - 1, NULL, 0},
    {"uuid", FIELD_TEXT, MEMBER(uuid), 0, NULL, 0},
    {"physical", FIELD_NUMBER, MEMBER(physical), 1u << 20, NULL, 0},
    {"memory", FIELD_NUMBER, MEMBER(memory_bytes), UINT64_MAX, NULL, 0},
    {"cores", FIELD_NUMBER, MEMBER(core_percent), 100, NULL, 0},
    {"priority", FIELD_WORD, MEMBER(priority), 0, priorities, 0},
    {"policy", FIELD_WORD, MEMBER(policy), 0, policies, 0},
    {"ledger", FIELD_TEXT, MEMBER(ledger), 0, NULL, 0},
    {"board", FIELD_TEXT, MEMBER(board), 0, NULL, 0},
    {"memory-max", FIELD_NUMBER, MEMBER(memory_max), UINT64_MAX, NULL, 0},
    {"cores-max", FIELD_NUMBER, MEMBER(cores_max), 100, NULL, offsetof(struct xps_limit, has_cores_max)},
    {"scheduling", FIELD_WORD, MEMBER(scheduling), 0, schedulings, 0},
};
#undef MEMBER
_Static_assert(offsetof(struct xps_limit, has_cores_max) != 0, "offset 0 means no presence flag");
_Static_assert(sizeof(((struct xps_limit *)0)->has_cores_max) == sizeof(uint32_t), "flags are 32 bits");
_Static_assert(sizeof(((struct xps_limit *)0)->index) == sizeof(uint32_t), "index is stored as 32 bits");
_Static_assert(sizeof(((struct xps_limit *)0)->physical) == sizeof(uint32_t), "physical is 32 bits");

static int parse_word(const char *value, const char *const *words, uint64_t *out) {
    for (int i = 0; words[i] != NULL; i++)
        if (strcmp(value, words[i]) == 0) {
            *out = (uint64_t)i;
            return 0;
        }
    return -EINVAL;
}

/* Store a parsed number into a 32- or 64-bit member (the table's max keeps 32-bit ones in range). */
static void store_number(char *member, size_t size, uint64_t v) {
    if (size == sizeof(uint32_t)) {
        uint32_t narrow = (uint32_t)v;
        memcpy(member, &narrow, sizeof(narrow));
    } else {
        memcpy(member, &v, sizeof(v));
    }
}

static int device_field(struct xps_limit *d, const char *key, const char *value) {
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const struct field *f = &fields[i];
        if (strcmp(key, f->key) != 0)
            continue;
        char *member = (char *)d + f->offset;
        if (f->given != 0)
            store_number((char *)d + f->given, sizeof(uint32_t), 1);
        if (f->kind == FIELD_TEXT)
            return copy_text(member, f->size, value);
        uint64_t v = 0;
        int rc = f->kind == FIELD_WORD ? parse_word(value, f->words, &v) : parse_u64(value, f->max, &v);
        if (rc == 0)
            store_number(member, f->size, v);
        return rc;
    }
    return 0; /* unknown keys are ignored: newer writers stay readable */
}

static int parse_device(char *rest, struct xps_limits *out) {
    if (out->count >= XPUSHARE_MAX_DEVICES)
        return -E2BIG;
    struct xps_limit *d = &out->devices[out->count];
    memset(d, 0, sizeof(*d));
    d->index = -1;
    d->physical = -1;
    d->core_percent = 100;
    d->priority = XPUSHARE_PRIORITY_NORMAL;
    char *save = NULL;
    for (char *tok = strtok_r(rest, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            return -EINVAL;
        *eq = '\0';
        if (device_field(d, tok, eq + 1) != 0)
            return -EINVAL;
    }
    if (d->index < 0)
        return -EINVAL;
    for (int i = 0; i < out->count; i++)
        if (out->devices[i].index == d->index)
            return -EINVAL;
    out->count++;
    return 0;
}

static int parse_line(char *line, struct xps_limits *out) {
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n == 0 || line[0] == '#')
        return 0;
    char *rest = strpbrk(line, " \t");
    if (rest != NULL)
        *rest++ = '\0';
    else
        rest = line + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (strcmp(line, "version") == 0)
        return strcmp(rest, "1") == 0 ? (out->version = 1, 0) : -EPROTO;
    if (strcmp(line, "claim") == 0)
        return copy_text(out->claim, sizeof(out->claim), rest);
    if (strcmp(line, "device") == 0)
        return parse_device(rest, out);
    return 0;
}

/* Parse a whole limits file held in `text` ; returns 0 or -errno (error_line says where). */
int xps__limits_parse(const char *text, struct xps_limits *out) {
    memset(out, 0, sizeof(*out));
    char *copy = strdup(text);
    if (copy == NULL)
        return -ENOMEM;
    int rc = 0, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        rc = parse_line(line, out);
    }
    free(copy);
    /* The writer ends every record with a newline: a file without one at its end was cut short. */
    if (rc == 0 && (text[0] == '\0' || text[strlen(text) - 1] != '\n'))
        rc = -EINVAL;
    if (rc == 0 && out->version != 1)
        rc = -EPROTO;
    if (rc == 0 && out->claim[0] == '\0')
        rc = -EINVAL;
    if (rc == 0 && out->count == 0)
        rc = -EINVAL; /* every claim has a device: none means a file cut short at a line's end */
    out->error_line = rc == 0 ? 0 : line_no;
    for (int i = 0; rc == 0 && i < out->count; i++)
        memcpy(out->devices[i].claim, out->claim, sizeof(out->claim));
    return rc;
}

int xps__limits_load(const char *path, struct xps_limits *out) {
    out->error_line = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(LIMITS_MAX_BYTES + 1);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t len = 0;
    ssize_t n = 0;
    while (len < LIMITS_MAX_BYTES && (n = read(fd, buf + len, LIMITS_MAX_BYTES - len)) > 0)
        len += (size_t)n;
    int read_error = n < 0 ? -errno : 0;
    close(fd);
    if (read_error != 0) {
        free(buf);
        return read_error;
    }
    buf[len] = '\0';
    int rc = xps__limits_parse(buf, out);
    free(buf);
    return rc;
}

/* --- a container's claims, merged ------------------------------------------------------------------- */

#define MAX_CLAIM_FILES XPUSHARE_MAX_DEVICES

static uint64_t add_saturating(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void xps__quota_add(uint64_t *limit_bytes, uint32_t *core_percent, uint32_t *priority, uint32_t *policy,
                    uint64_t add_bytes, uint32_t add_percent, uint32_t add_priority, uint32_t add_policy) {
    /* memory 0 is no limit: with it on one side, there is none on the sum either */
    *limit_bytes = (*limit_bytes == 0 || add_bytes == 0) ? 0 : add_saturating(*limit_bytes, add_bytes);
    *core_percent = *core_percent + add_percent > 100 ? 100 : *core_percent + add_percent;
    if (add_priority > *priority)
        *priority = add_priority;                  /* the higher of the two: low < normal < high */
    if (add_policy == XPUSHARE_POLICY_FIXED)
        *policy = XPUSHARE_POLICY_FIXED;           /* a hard cap asked by any claim holds */
}

/* Another claim of the container on `into`'s device: add its limits and ceilings. */
static int merge_same_device(struct xps_limit *into, const struct xps_limit *add) {
    if (strncmp(into->claim, add->claim, XPUSHARE_KEY_LEN) == 0 || into->nalso >= XPUSHARE_MAX_SAME_DEVICE - 1)
        return -EINVAL;
    for (int i = 0; i < into->nalso; i++)
        if (strncmp(into->also[i], add->claim, XPUSHARE_KEY_LEN) == 0)
            return -EINVAL;
    uint64_t ceiling = add_saturating(xps__memory_ceiling(into), xps__memory_ceiling(add));
    uint32_t cores_ceiling = xps__cores_ceiling(into) + xps__cores_ceiling(add);
    xps__quota_add(&into->memory_bytes, &into->core_percent, &into->priority, &into->policy, add->memory_bytes,
                   add->core_percent, add->priority, add->policy);
    into->memory_max = into->memory_bytes == 0 ? 0 : ceiling;
    into->cores_max = cores_ceiling > 100 ? 100 : cores_ceiling;
    into->has_cores_max = 1;
    memcpy(into->also[into->nalso++], add->claim, XPUSHARE_KEY_LEN);
    return 0;
}

static int merge_file(struct xps_limits *out, const struct xps_limits *file) {
    for (int i = 0; i < file->count; i++) {
        const struct xps_limit *d = &file->devices[i];
        struct xps_limit *same = NULL;
        for (int j = 0; d->uuid[0] != '\0' && j < out->count; j++)
            if (strcasecmp(out->devices[j].uuid, d->uuid) == 0)
                same = &out->devices[j];
        if (same != NULL) {
            int rc = merge_same_device(same, d);
            if (rc != 0)
                return rc;
            continue;
        }
        if (out->count >= XPUSHARE_MAX_DEVICES)
            return -E2BIG;
        out->devices[out->count++] = *d;
    }
    return 0;
}

/* Order of the fallback ordinals: by physical number where given, then as the files list them. */
struct order_key {
    int has_physical, key, position;
};

static int compare_order(const void *a, const void *b) {
    const struct order_key *x = a, *y = b;
    if (x->has_physical != y->has_physical)
        return y->has_physical - x->has_physical;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->position - y->position;
}

/* Number the devices 0..count-1 in fallback order. A single file without physical numbers keeps its
 * indexes, which were the ordinals before there were several files. */
static void assign_slots(struct xps_limits *out, int single_file) {
    int any_physical = 0;
    for (int i = 0; i < out->count; i++)
        any_physical |= out->devices[i].physical >= 0;
    if (single_file && !any_physical)
        return;
    struct order_key keys[XPUSHARE_MAX_DEVICES];
    struct xps_limit *sorted = malloc(sizeof(out->devices));
    if (sorted == NULL)
        return; /* the indexes as read: only the fallback ordinals differ */
    for (int i = 0; i < out->count; i++) {
        keys[i].has_physical = out->devices[i].physical >= 0;
        keys[i].key = out->devices[i].physical;
        keys[i].position = i;
    }
    qsort(keys, (size_t)out->count, sizeof(keys[0]), compare_order);
    for (int i = 0; i < out->count; i++) {
        sorted[i] = out->devices[keys[i].position];
        sorted[i].index = i;
    }
    memcpy(out->devices, sorted, sizeof(sorted[0]) * (size_t)out->count);
    free(sorted);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The claim files of an open directory: regular files (bind mounts of them too) and links, hidden
 * names left out, sorted. No stat: its symbol needs a newer glibc than the images the shim loads in. */
static int list_claim_files(DIR *d, char **names, int *count) {
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (e->d_type != DT_REG && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN))
            continue;
        if (n >= MAX_CLAIM_FILES) {
            rc = -E2BIG;
            break;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    qsort(names, (size_t)n, sizeof(names[0]), compare_names);
    *count = n;
    return rc;
}

int xps__limits_load_set(const char *path, struct xps_limits *out, char *bad, size_t bad_size) {
    memset(out, 0, sizeof(*out));
    out->version = 1;
    if (bad_size > 0)
        snprintf(bad, bad_size, "%s", path);
    char *names[MAX_CLAIM_FILES];
    int n = 0, rc = 0;
    DIR *dir = opendir(path);
    if (dir != NULL) {
        rc = list_claim_files(dir, names, &n);
        closedir(dir);
    } else if (errno != ENOTDIR) {
        rc = -errno;
    } else if ((names[0] = strdup("")) == NULL) {
        rc = -ENOMEM;
    } else {
        n = 1; /* the path is the one file */
    }
    struct xps_limits *file = rc == 0 ? malloc(sizeof(*file)) : NULL;
    if (rc == 0 && file == NULL)
        rc = -ENOMEM;
    if (rc == 0 && n == 0)
        rc = -ENOENT;
    for (int i = 0; rc == 0 && i < n; i++) {
        char full[1024];
        snprintf(full, sizeof(full), names[i][0] ? "%s/%s" : "%s", path, names[i]);
        rc = xps__limits_load(full, file);
        if (rc == 0)
            rc = merge_file(out, file);
        if (rc != 0) {
            out->error_line = file->error_line;
            if (bad_size > 0)
                snprintf(bad, bad_size, "%s", full);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(file);
    if (rc == 0)
        assign_slots(out, n == 1); /* each device carries its claim: the set has none of its own */
    return rc;
}
