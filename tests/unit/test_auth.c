/*
 * seg_auth: the loopback rule, token files, and what an Authorization
 * header must carry. Cases written from docs/configuration.md
 * (metrics.api, metrics.token_file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/seg_cfg.h"
#include "io/seg_auth.h"

#define TOKEN "0123456789abcdef-token"

static void loopback(void **st)
{
    (void)st;
    assert_true(seg_auth_listen_is_loopback("127.0.0.1:9464"));
    assert_true(seg_auth_listen_is_loopback("127.1.2.3:1"));
    assert_true(seg_auth_listen_is_loopback("[::1]:9464"));
    assert_true(seg_auth_listen_is_loopback("localhost:9464"));
    assert_true(seg_auth_listen_is_loopback("LOCALHOST:9464"));
    assert_false(seg_auth_listen_is_loopback(":9464"));
    assert_false(seg_auth_listen_is_loopback("0.0.0.0:9464"));
    assert_false(seg_auth_listen_is_loopback("[::]:9464"));
    assert_false(seg_auth_listen_is_loopback("10.0.0.5:9464"));
    assert_false(seg_auth_listen_is_loopback("128.0.0.1:9464"));
    assert_false(seg_auth_listen_is_loopback("metrics.example:9464"));
    assert_false(seg_auth_listen_is_loopback("[::ffff:127.0.0.1]:9464"));
    assert_false(seg_auth_listen_is_loopback("garbage"));
}

static char *write_file(const char *text, mode_t mode)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/segd-test-auth.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
    return path;
}

static void token_files(void **st)
{
    (void)st;
    char tok[SEG_AUTH_TOKEN_MAX + 1], err[512];
    bool wr;
    char *p = write_file(TOKEN "\n", 0600);
    assert_int_equal(seg_auth_load_token(p, tok, sizeof tok, &wr, err, sizeof err), 0);
    assert_string_equal(tok, TOKEN);
    assert_false(wr);
    chmod(p, 0644);
    assert_int_equal(seg_auth_load_token(p, tok, sizeof tok, &wr, err, sizeof err), 0);
    assert_true(wr);
    unlink(p);
    p = write_file(TOKEN "\r\nsecond line\n", 0600);
    assert_int_equal(seg_auth_load_token(p, tok, sizeof tok, &wr, err, sizeof err), 0);
    assert_string_equal(tok, TOKEN);
    unlink(p);
    p = write_file("short\n", 0600);
    assert_int_equal(seg_auth_load_token(p, tok, sizeof tok, &wr, err, sizeof err), -1);
    assert_non_null(strstr(err, "too short"));
    unlink(p);
    p = write_file("", 0600);
    assert_int_equal(seg_auth_load_token(p, tok, sizeof tok, &wr, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty"));
    unlink(p);
    p = write_file("has a space in the token\n", 0600);
    assert_int_equal(seg_auth_load_token(p, tok, sizeof tok, &wr, err, sizeof err), -1);
    unlink(p);
    assert_int_equal(seg_auth_load_token("/nonexistent/segd-token", tok, sizeof tok, &wr, err,
                                         sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/segd-token"));
}

static void config_rule(void **st)
{
    (void)st;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    char tok[SEG_AUTH_TOKEN_MAX + 1], warn[512], err[512];
    /* loopback default: no token needed */
    assert_int_equal(seg_auth_from_config(&cfg, tok, sizeof tok, warn, sizeof warn, err,
                                          sizeof err), 0);
    assert_string_equal(tok, "");
    snprintf(cfg.metrics.listen, sizeof cfg.metrics.listen, ":9464");
    assert_int_equal(seg_auth_from_config(&cfg, tok, sizeof tok, warn, sizeof warn, err,
                                          sizeof err), -1);
    assert_non_null(strstr(err, "metrics.token_file"));
    cfg.metrics.api = false;
    assert_int_equal(seg_auth_from_config(&cfg, tok, sizeof tok, warn, sizeof warn, err,
                                          sizeof err), 0);
    cfg.metrics.api = true;
    char *p = write_file(TOKEN "\n", 0604);
    snprintf(cfg.metrics.token_file, sizeof cfg.metrics.token_file, "%s", p);
    assert_int_equal(seg_auth_from_config(&cfg, tok, sizeof tok, warn, sizeof warn, err,
                                          sizeof err), 0);
    assert_string_equal(tok, TOKEN);
    assert_non_null(strstr(warn, "readable by every user"));
    unlink(p);
}

static void headers(void **st)
{
    (void)st;
    assert_true(seg_auth_check(TOKEN, "Bearer " TOKEN));
    assert_true(seg_auth_check(TOKEN, "bearer  " TOKEN " "));
    assert_false(seg_auth_check(TOKEN, NULL));
    assert_false(seg_auth_check(TOKEN, ""));
    assert_false(seg_auth_check(TOKEN, "Bearer"));
    assert_false(seg_auth_check(TOKEN, "Bearer "));
    assert_false(seg_auth_check(TOKEN, "Bearer " TOKEN "x"));
    assert_false(seg_auth_check(TOKEN, "Bearer 0123456789abcdef-tokeN"));
    assert_false(seg_auth_check(TOKEN, "Bearer 0123456789abcdef"));
    assert_false(seg_auth_check(TOKEN, TOKEN));
    assert_false(seg_auth_check(TOKEN, "Token " TOKEN));
    /* Basic: base64("ops:0123456789abcdef-token"), any user name */
    assert_true(seg_auth_check(TOKEN, "Basic b3BzOjAxMjM0NTY3ODlhYmNkZWYtdG9rZW4="));
    assert_true(seg_auth_check(TOKEN, "Basic OjAxMjM0NTY3ODlhYmNkZWYtdG9rZW4="));  /* ":token" */
    assert_false(seg_auth_check(TOKEN, "Basic b3BzOm5vcGU="));                     /* ops:nope */
    assert_false(seg_auth_check(TOKEN, "Basic MDEyMzQ1Njc4OWFiY2RlZi10b2tlbg=="));  /* no colon */
    assert_false(seg_auth_check(TOKEN, "Basic !!!"));
    assert_true(seg_auth_equal("abc", 3, "abc", 3));
    assert_false(seg_auth_equal("abc", 3, "abd", 3));
    assert_false(seg_auth_equal("ab", 2, "abc", 3));
    assert_false(seg_auth_equal("abcd", 4, "abc", 3));
    assert_false(seg_auth_equal("", 0, "abc", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loopback),
        cmocka_unit_test(token_files),
        cmocka_unit_test(config_rule),
        cmocka_unit_test(headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
