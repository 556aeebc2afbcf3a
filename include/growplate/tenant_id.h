/* growplate/tenant_id.h — the one rule for tenant ids, shared by the cache's
 * keyspace and the SQL tenancy layer.
 *
 * A tenant id is a canonical lowercase UUID: exactly 36 bytes, 8-4-4-4-12
 * lowercase hexadecimal digits separated by '-', e.g.
 * "123e4567-e89b-12d3-a456-426614174000". Nothing else is accepted: no
 * uppercase, no braces, no surrounding spaces, no "urn:uuid:" prefix. Because
 * the form is fixed-length and uses only [0-9a-f-], a tenant id can never
 * contain a Redis hash-tag brace, a key separator, a glob character, a quote
 * or a control byte.
 *
 * Thread-safety: safe from any thread; no state.
 */
#ifndef GROWPLATE_TENANT_ID_H
#define GROWPLATE_TENANT_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "growplate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The transaction-local setting that carries the tenant context: the
 * library sets a tenant secret there, never a bare id, and the row-level
 * security policies accept only a secret published with the tenant key
 * (tenant.h, "The verified tenant context"). */
#define GP_TENANT_TOKEN_SETTING "growplate.tenant_token"

/* The view that the policies compare tenant_id with: the verified tenant of
 * the current transaction (one row, or none). */
#define GP_TENANT_CONTEXT_VIEW "growplate.tenant_context"

/* The plain setting that schemas before migration 0004 compared tenant_id
 * with. Any SQL on the connection can set it: `growplate audit` reports a
 * policy or a SECURITY DEFINER function that trusts it. */
#define GP_TENANT_SETTING "app.tenant_id"

/* The length of a tenant id, without the terminating NUL. */
#define GP_TENANT_ID_LEN 36

/* True when `id` (NUL-terminated; NULL accepted and rejected) is a canonical
 * lowercase UUID. When it is not and `why` is not NULL, `why` receives one
 * line (NUL-terminated, truncated to whylen) naming the problem, e.g.
 * "tenant id has 35 bytes; expected 36 (a lowercase UUID such as
 * 123e4567-e89b-12d3-a456-426614174000)" or "tenant id has 'A' at position
 * 1; expected a lowercase hex digit". The offending text is never echoed
 * whole, so a hostile id cannot inject into logs. */
GP_EXPORT bool gp_tenant_id_valid(const char *id, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
