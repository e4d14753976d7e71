/*
 * limits.c - parse the read-only limits file the node plugin writes (format in xpushare.h).
 *
 * Read once at start-up; a malformed line is reported and the file rejected as a whole, so a half-read
 * file never enforces wrong limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
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

static int parse_word(const char *value, const char *const *words, int count, uint32_t *out) {
    for (int i = 0; i < count; i++)
        if (strcmp(value, words[i]) == 0) {
            *out = (uint32_t)i;
            return 0;
        }
    return -EINVAL;
}

static int copy_text(char *dest, size_t size, const char *value) {
    if (strlen(value) >= size)
        return -EINVAL;
    strcpy(dest, value);
    return 0;
}

static int device_field(struct xps_limit *d, const char *key, const char *value) {
    static const char *const priorities[] = {"low", "normal", "high"};
    static const char *const policies[] = {"guaranteed", "fixed"};
    uint64_t v = 0;
    int rc = 0;
    if (strcmp(key, "index") == 0) {
        rc = parse_u64(value, XPUSHARE_MAX_DEVICES - 1, &v);
        d->index = (int)v;
    } else if (strcmp(key, "uuid") == 0) {
        rc = copy_text(d->uuid, sizeof(d->uuid), value);
    } else if (strcmp(key, "memory") == 0) {
        rc = parse_u64(value, UINT64_MAX, &d->memory_bytes);
    } else if (strcmp(key, "cores") == 0) {
        rc = parse_u64(value, 100, &v);
        d->core_percent = (uint32_t)v;
    } else if (strcmp(key, "priority") == 0) {
        rc = parse_word(value, priorities, 3, &d->priority);
    } else if (strcmp(key, "policy") == 0) {
        rc = parse_word(value, policies, 2, &d->policy);
    } else if (strcmp(key, "ledger") == 0) {
        rc = copy_text(d->ledger, sizeof(d->ledger), value);
    } else if (strcmp(key, "memory-max") == 0) {
        rc = parse_u64(value, UINT64_MAX, &d->memory_max);
    } else if (strcmp(key, "cores-max") == 0) {
        rc = parse_u64(value, 100, &v);
        d->cores_max = (uint32_t)v;
        d->has_cores_max = 1;
    }
    return rc; /* unknown keys are ignored: newer writers stay readable */
}

static int parse_device(char *rest, struct xps_limits *out) {
    if (out->count >= XPUSHARE_MAX_DEVICES)
        return -E2BIG;
    struct xps_limit *d = &out->devices[out->count];
    memset(d, 0, sizeof(*d));
    d->index = -1;
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
    if (rc == 0 && out->version != 1)
        rc = -EPROTO;
    if (rc == 0 && out->claim[0] == '\0')
        rc = -EINVAL;
    out->error_line = rc == 0 ? 0 : line_no;
    return rc;
}

int xps__limits_load(const char *path, struct xps_limits *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(LIMITS_MAX_BYTES + 1);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t len = 0;
    ssize_t n;
    while (len < LIMITS_MAX_BYTES && (n = read(fd, buf + len, LIMITS_MAX_BYTES - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    int rc = xps__limits_parse(buf, out);
    free(buf);
    return rc;
}
