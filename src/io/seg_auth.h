/*
 * seg_auth: who may read customer data over HTTP.
 *
 * GET /v1/customers/{id} answers with a person's segments and purchase
 * figures, and the live page with the shop's segment sizes; Prometheus
 * and orchestrators, which scrape /metrics, /healthz and /readyz, carry
 * no credentials and must not need any. So the API and the page answer
 * without credentials only while the metrics address is a loopback one
 * (only this machine can reach it); on any other address they need the
 * bearer token read from metrics.token_file, and a configuration that
 * asks for one without the other is refused (docs/configuration.md).
 *
 * The token is compared in constant time (no early exit on the first
 * differing byte, so response times do not reveal how much of a guess
 * was right). A browser cannot send a bearer header when a person opens
 * the page, so HTTP Basic with the token as password (any user name) is
 * accepted too: the browser asks for it once.
 */
#ifndef SEG_AUTH_H
#define SEG_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/seg_cfg.h"

/* Longest token accepted (bytes, after trimming the final newline). */
#define SEG_AUTH_TOKEN_MAX 1024
/* Shortest: a guessable token is no protection. */
#define SEG_AUTH_TOKEN_MIN 16

/* Whether listen ("host:port", "[v6]:port", ":port") binds a loopback
 * address only: 127.0.0.0/8, ::1 or "localhost". ":port" (every
 * interface) and any other name are not. */
bool seg_auth_listen_is_loopback(const char *listen);

/* Reads a token file: its first line, without the line end. Returns 0 and
 * fills token (token_size >= SEG_AUTH_TOKEN_MAX + 1); *world_readable is
 * set when others may read the file (a warning, not an error). Returns -1
 * with errstr naming the file when it cannot be read, is empty, holds
 * control bytes or spaces, or is shorter than SEG_AUTH_TOKEN_MIN. */
int seg_auth_load_token(const char *path, char *token, size_t token_size, bool *world_readable,
                        char *errstr, size_t errstr_size);

/* What the configuration asks of the API (metrics.api, metrics.listen,
 * metrics.token_file). Returns 0 when consistent and, if a token is
 * needed, fills token (else token[0] = '\0') and warn (else warn[0] =
 * '\0': "metrics.token_file '...' is readable by every user"). Returns -1
 * with errstr when the API would be open beyond loopback without a token,
 * or the token file is unusable. */
int seg_auth_from_config(const seg_cfg_t *cfg, char *token, size_t token_size, char *warn,
                         size_t warn_size, char *errstr, size_t errstr_size);

/* Whether an Authorization header value carries token: "Bearer TOKEN", or
 * "Basic base64(user:TOKEN)". NULL header: false. Constant time in the
 * header's contents for a given token length. */
bool seg_auth_check(const char *token, const char *authorization);

/* Compares two byte strings in time that depends only on their lengths. */
bool seg_auth_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
