/*
 * seg_auth: the token, the loopback rule, constant-time comparison.
 */
#include "io/seg_auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/seg_http.h"

bool seg_auth_listen_is_loopback(const char *listen)
{
    char host[256], err[256];
    uint16_t port;
    if (seg_http_parse_listen(listen, host, sizeof host, &port, err, sizeof err) != 0)
        return false;
    if (strcasecmp(host, "localhost") == 0) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

int seg_auth_load_token(const char *path, char *token, size_t token_size, bool *world_readable,
                        char *errstr, size_t errstr_size)
{
    *world_readable = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "metrics.token_file '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(errstr, errstr_size, "metrics.token_file '%s' is not a regular file", path);
        close(fd);
        return -1;
    }
    *world_readable = (st.st_mode & S_IROTH) != 0;
    char buf[SEG_AUTH_TOKEN_MAX + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        snprintf(errstr, errstr_size, "metrics.token_file '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0;
    while (len < (size_t)n && buf[len] != '\n' && buf[len] != '\r') len++;
    if (len > SEG_AUTH_TOKEN_MAX || len + 1 > token_size) {
        snprintf(errstr, errstr_size, "metrics.token_file '%s': the token is longer than %d "
                 "bytes", path, SEG_AUTH_TOKEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c == 0x7f) {
            snprintf(errstr, errstr_size, "metrics.token_file '%s': the token holds a space or "
                     "control byte (one line of printable characters is expected)", path);
            return -1;
        }
    }
    if (len < SEG_AUTH_TOKEN_MIN) {
        snprintf(errstr, errstr_size, "metrics.token_file '%s': the token is %s; use at least "
                 "%d characters (e.g. `openssl rand -hex 32`)", path,
                 len ? "too short" : "empty", SEG_AUTH_TOKEN_MIN);
        return -1;
    }
    memcpy(token, buf, len);
    token[len] = '\0';
    return 0;
}

int seg_auth_from_config(const seg_cfg_t *cfg, char *token, size_t token_size, char *warn,
                         size_t warn_size, char *errstr, size_t errstr_size)
{
    token[0] = '\0';
    warn[0] = '\0';
    if (!cfg->metrics.api || strcmp(cfg->metrics.listen, "off") == 0) return 0;
    if (!cfg->metrics.token_file[0]) {
        if (seg_auth_listen_is_loopback(cfg->metrics.listen)) return 0;
        snprintf(errstr, errstr_size, "metrics.listen '%s' is not a loopback address, so the "
                 "customer API and the page (metrics.api) need a bearer token: set "
                 "metrics.token_file, or metrics.api: false (/metrics, /healthz and /readyz "
                 "stay open either way)", cfg->metrics.listen);
        return -1;
    }
    bool wr;
    if (seg_auth_load_token(cfg->metrics.token_file, token, token_size, &wr, errstr,
                            errstr_size) != 0)
        return -1;
    if (wr)
        snprintf(warn, warn_size, "metrics.token_file '%s' is readable by every user of this "
                 "machine; chmod o-r it", cfg->metrics.token_file);
    return 0;
}

bool seg_auth_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Runs over b (the secret's length) whatever a holds. */
    volatile unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

static int b64(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 (with or without padding) into out; returns the length,
 * or -1 when malformed or too long. */
static long b64_decode(const char *in, char *out, size_t out_size)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        int v = b64((unsigned char)*in);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == out_size) return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    while (*in == '=') in++;
    return *in ? -1 : (long)n;
}

bool seg_auth_check(const char *token, const char *authorization)
{
    if (!authorization) return false;
    size_t tlen = strlen(token);
    const char *p = authorization;
    while (*p == ' ') p++;
    if (strncasecmp(p, "Bearer ", 7) == 0) {
        p += 7;
        while (*p == ' ') p++;
        size_t n = strlen(p);
        while (n && p[n - 1] == ' ') n--;
        return seg_auth_equal(p, n, token, tlen);
    }
    if (strncasecmp(p, "Basic ", 6) == 0) {
        p += 6;
        while (*p == ' ') p++;
        char dec[SEG_AUTH_TOKEN_MAX + 256];
        long n = b64_decode(p, dec, sizeof dec);
        if (n < 0) return false;
        const char *colon = memchr(dec, ':', (size_t)n);
        if (!colon) return false;
        const char *pw = colon + 1;
        return seg_auth_equal(pw, (size_t)(dec + n - pw), token, tlen);
    }
    return false;
}
