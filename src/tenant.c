/* tenant.c — tenant-scoped statements and transactions: the tenant id is
 * validated before anything is sent, set transaction-locally, and pipelined
 * with BEGIN and the first statement; helpers put tenant_id in the SQL. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "growplate/tenant.h"
#include "copy_internal.h"
#include "query_internal.h"
#include "tenant_internal.h"

struct gp_tenant_tx {
    gp_conn_t *conn;
    gp_tx_opts_t opts;
    bool started; /* BEGIN and the setting were sent */
    bool ended;   /* a statement of the caller's committed or rolled back: the scope is gone */
    bool owns_lease; /* gp_tenant_run's: the lease ends with the transaction (the sweep rides on COMMIT) */
    char tenant[GP_TENANT_ID_LEN + 1];
    int nhooks;      /* after-commit hooks (gp__tenant_tx_after_commit) */
    gp__tenant_hook_t hooks[GP__TENANT_HOOKS_MAX];
};

gp_status_t gp__tenant_tx_after_commit(gp_tenant_tx_t *tx, const gp__tenant_hook_t *hook, gp_error_t *err)
{
    if (!tx || !hook || !hook->run)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction or hook given");
    if (tx->nhooks == GP__TENANT_HOOKS_MAX)
        return gp__client_error(err, GP_ERR_RANGE, "a tenant-scoped transaction takes at most %d after-commit "
                                "actions (invalidate several keys in one call)", GP__TENANT_HOOKS_MAX);
    tx->hooks[tx->nhooks++] = *hook;
    return GP_OK;
}

/* The transaction ended: run the hooks when it committed, then free them. */
static void end_hooks(gp_tenant_tx_t *tx, bool committed)
{
    for (int i = 0; i < tx->nhooks; i++) {
        if (committed)
            tx->hooks[i].run(tx->hooks[i].userdata, tx->tenant);
        if (tx->hooks[i].drop)
            tx->hooks[i].drop(tx->hooks[i].userdata);
    }
    tx->nhooks = 0;
}

static gp_status_t check_tenant(const char *tenant_id, gp_error_t *err)
{
    char why[200];
    if (gp_tenant_id_valid(tenant_id, why, sizeof why))
        return GP_OK;
    gp__client_error(err, GP_ERR_TENANT, "%s", why);
    return GP_ERR_TENANT;
}

/* ---- the verified tenant context ------------------------------------------------------------
 *
 * The library never sets a tenant id the database would take on trust. For
 * a tenant T it sets growplate.tenant_token to the tenant secret
 *     S = hex(HMAC-SHA-256(key, "v1.<kid>.<T>.<E>"))
 * for an expiry E at the end of the window after the current one (windows
 * of DATABASE_TENANT_TOKEN_TTL), and the policies accept it only once it is
 * published: growplate.tenant_publish() recomputes the HMAC as the owner and
 * records an anchor (migration 0004). An anchor serves every connection:
 * the pool's tenant cache (pool_internal.h) remembers what was published,
 * so each secret is published about once per pool and window. */

static const char SET_TOKEN[] = "SELECT pg_catalog.set_config('" GP_TENANT_TOKEN_SETTING "', $1, true)";
static const char SET_TOKEN_TIMEOUT[] = "SELECT pg_catalog.set_config('" GP_TENANT_TOKEN_SETTING "', $1, true), "
                                        "pg_catalog.set_config('statement_timeout', $2, true)";
static const char PUBLISH[] = "SELECT growplate.tenant_publish($1, $2::pg_catalog.uuid, $3::pg_catalog.int8, $4)";

typedef struct secret {
    char hex[65];
    char expires[24];
    char tenant[GP_TENANT_ID_LEN + 1];
    int64_t exp;
    bool publish;    /* not yet published (as far as the pool's tenant cache knows) */
    size_t set;      /* its set in the cache */
    uint64_t epoch;  /* the cache's epoch when it was looked up */
} secret_t;

/* The set of a tenant in the pool's tenant cache. */
static size_t set_of(const char *tenant)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = tenant; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % (GP__PUBLISHED_SLOTS / 4);
}

static gp_status_t tenant_secret(gp_conn_t *conn, const char *tenant, secret_t *s, gp_error_t *err)
{
    const gp__tenant_key_t *k = conn->tenant_key;
    if (!k || !k->set)
        return gp__client_error(err, GP_ERR_CONFIG,
                                "DATABASE_TENANT_KEY is not set (nor a DATABASE_TENANT_KEY_FILE that exists): "
                                "tenant-scoped calls sign the tenant context with it; give this service and "
                                "`growplate migrate`, which installs it in the database, the same key (64 hex "
                                "digits, e.g. from `openssl rand -hex 32`) or the same key file (migrate creates "
                                "a missing one)");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t w = k->ttl_s > 0 ? k->ttl_s : 120;
    s->exp = ((int64_t)ts.tv_sec / w + 2) * w;
    memcpy(s->tenant, tenant, GP_TENANT_ID_LEN + 1);
    gp__tenant_cache_t *c = conn->tenant_cache;
    s->set = set_of(tenant);
    s->epoch = atomic_load(&c->epoch);
    bool known = false;
    pthread_mutex_lock(&c->mu);
    for (int way = 0; way < 4 && !known; way++) {
        const gp__published_t *e = &c->slot[s->set * 4 + (size_t)way];
        known = e->expires == s->exp && e->epoch == s->epoch && memcmp(e->tenant, tenant, GP_TENANT_ID_LEN + 1) == 0;
        if (known)
            memcpy(s->hex, e->secret, sizeof s->hex); /* published: no HMAC, nothing to format */
    }
    pthread_mutex_unlock(&c->mu);
    s->publish = !known;
    if (known)
        return GP_OK;
    snprintf(s->expires, sizeof s->expires, "%lld", (long long)s->exp);
    char msg[128];
    int n = snprintf(msg, sizeof msg, "v1.%s.%s.%s", k->kid, tenant, s->expires);
    unsigned char mac[32];
    gp__hmac_sha256(k->key, k->len, msg, (size_t)n, mac);
    gp__hex(mac, sizeof mac, s->hex);
    gp__wipe(mac, sizeof mac);
    return GP_OK;
}

/* The secret reached the database's anchors (its transaction committed). */
static void published(gp_conn_t *conn, const secret_t *s)
{
    if (!s->publish)
        return;
    gp__tenant_cache_t *c = conn->tenant_cache;
    pthread_mutex_lock(&c->mu);
    gp__published_t *e = NULL;
    for (int way = 0; way < 4 && !e; way++) { /* the tenant's own way (an older window), else a free one */
        gp__published_t *w = &c->slot[s->set * 4 + (size_t)way];
        if (memcmp(w->tenant, s->tenant, GP_TENANT_ID_LEN + 1) == 0 || w->expires < s->exp)
            e = w;
    }
    if (!e) { /* every way holds a live secret of another tenant: replace in turn */
        e = &c->slot[s->set * 4 + c->next_way[s->set]];
        c->next_way[s->set] = (uint8_t)((c->next_way[s->set] + 1) % 4);
    }
    memcpy(e->tenant, s->tenant, sizeof e->tenant);
    memcpy(e->secret, s->hex, sizeof e->secret);
    e->expires = s->exp;
    e->epoch = s->epoch;
    pthread_mutex_unlock(&c->mu);
}

/* The parameters of PUBLISH; they live in *s and *k. */
static void publish_params(const gp_conn_t *conn, const secret_t *s, gp_value_t v[4])
{
    v[0] = gp_text(conn->tenant_key->kid);
    v[1] = gp_text(s->tenant);
    v[2] = gp_text(s->expires);
    v[3] = gp_text(s->hex);
}

/* Publish a tenant secret for conn, a standby's lease, through its writer
 * (the primary pool), and wait, within the writer's acquire timeout, until
 * the standby has replayed it. */
static gp_status_t publish_via_writer(gp_conn_t *conn, const gp_value_t pub[4], gp_error_t *err)
{
    gp_result_t *r = NULL;
    gp_status_t st = gp_pool_query(conn->writer, PUBLISH, 4, pub, &r, err);
    gp_result_free(r);
    char pos[GP_WAL_POSITION_LEN];
    if (st == GP_OK)
        st = gp_pool_wal_position(conn->writer, pos, err);
    if (st != GP_OK)
        return st;
    int wait_ms = gp__pool_acquire_timeout_ms(conn->writer);
    int got = gp__wait_replayed(conn, pos, gp__now_ns() + (int64_t)wait_ms * 1000000LL);
    if (got == 1)
        return GP_OK;
    st = gp__client_error(err, got < 0 ? GP_ERR_CONNECT : GP_ERR_TIMEOUT,
                          got < 0 ? "the standby failed while waiting for the tenant's context to replicate"
                                  : "the standby had not replayed the tenant's context within %d ms (it lags); "
                                    "retry, or read from the primary",
                          wait_ms);
    if (err) {
        err->klass = got < 0 ? GP_ECLASS_CONNECTION : GP_ECLASS_TIMEOUT;
        err->retriable = 1;
    }
    return st;
}

/* The tenant-scoped statements, the caller's SQL in the middle:
 *  - a transaction's first round trip: [BEGIN; set tenant; sql], after a
 *    round trip of its own that publishes the secret when this connection
 *    has not yet (so no caller's transaction ever holds an anchor's row
 *    lock, which a concurrent publish of the same secret would wait for);
 *  - a one-shot call (gp_tenant_query/exec), which is a whole lease:
 *    [publish if needed; set tenant; sql; sweep...] in one implicit
 *    transaction (the extended protocol commits at the Sync; an error
 *    rolls everything back, the sweep and the anchor included, and then
 *    the pool sweeps on release). The sweep (pool_internal.h) undoes
 *    whatever session state the caller's statement left through the
 *    functions it called, in the same round trip; what it cannot undo, the
 *    tag of the caller's command reveals (gp__tag_effects) and the pool
 *    resets fully on release.
 * On success the statement's result is stored in *res (if res is not
 * NULL). Nothing is copied: the statements and parameters live for the
 * call. */
static gp_status_t scoped_pipeline(gp_conn_t *conn, const char *tenant, const gp_tx_opts_t *opts, const char *sql,
                                   int nparams, const gp_value_t *params, bool one_shot, gp_result_t **res,
                                   gp_error_t *err)
{
    char begin[160], timeout[16];
    gp_status_t st;
    gp_tx_opts_t ro;
    if (conn->read_lease && !one_shot) { /* a read lease reads, wherever it was routed */
        ro = opts ? *opts : (gp_tx_opts_t){0};
        ro.read_only = true;
        opts = &ro;
    }
    if (!one_shot && (st = gp__tx_begin_text(opts, begin, sizeof begin, err)) != GP_OK)
        return st; /* (a one-shot call has no BEGIN to format: no snprintf on its path) */
    secret_t sec;
    if ((st = tenant_secret(conn, tenant, &sec, err)) != GP_OK)
        return st;
    gp_value_t pub[4];
    if (sec.publish)
        publish_params(conn, &sec, pub);
    if (!one_shot && opts) /* the transaction's own deadline, from its first round trip on */
        conn->tx_query_timeout_ms = opts->query_timeout_ms;
    if (sec.publish && conn->writer) {
        /* A standby cannot write: publish through the primary, then wait
         * until this standby has replayed the anchor. */
        if ((st = publish_via_writer(conn, pub, err)) != GP_OK) {
            gp__wipe(sec.hex, sizeof sec.hex);
            return st;
        }
        published(conn, &sec);
        sec.publish = false;
    }
    if (sec.publish && !one_shot) {
        gp__pipeline_item_t item = {PUBLISH, 4, pub, 0, NULL};
        if ((st = gp__pipeline_run_items(conn, 1, &item, err)) != GP_OK) {
            if (err)
                err->statement_index = -1;
            return st;
        }
        published(conn, &sec);
        sec.publish = false;
    }
    gp_value_t set[2] = {gp_text(sec.hex), gp_null()};
    /* Through a transaction pooler DATABASE_STATEMENT_TIMEOUT is set per
     * transaction (a one-shot's wrapper sets it itself). */
    int tmo = opts && opts->statement_timeout_ms > 0 ? opts->statement_timeout_ms
              : one_shot                               ? 0
                                                       : gp__txp_timeout_ms(conn);
    bool with_timeout = tmo > 0;
    if (with_timeout) {
        snprintf(timeout, sizeof timeout, "%d", tmo);
        set[1] = gp_text(timeout);
    }
    /* Our own statements are known: BEGIN, the publication and the
     * transaction-local set_config change no session state; only the
     * caller's statement is judged. Only its result (and the sweep's
     * verdict) is built. */
    gp__pipeline_item_t items[4];
    int n = 0;
    if (!one_shot)
        items[n++] = (gp__pipeline_item_t){begin, 0, NULL, 0, NULL};
    if (sec.publish)
        items[n++] = (gp__pipeline_item_t){PUBLISH, 4, pub, 0, NULL};
    items[n++] = (gp__pipeline_item_t){with_timeout ? SET_TOKEN_TIMEOUT : SET_TOKEN, with_timeout ? 2 : 1, set, 0,
                                       NULL};
    items[n++] = (gp__pipeline_item_t){sql, nparams, params, GP__EFFECT_UNKNOWN, res};
    st = one_shot ? gp__one_shot_swept(conn, items, n, err) : gp__pipeline_run_items(conn, n, items, err);
    /* A caller's COMMIT or ROLLBACK in a one-shot call may have ended the
     * transaction that published: then publish again next time. */
    if (st == GP_OK) {
        if (!(one_shot && sec.publish && res && *res &&
              (gp__tag_effects(PQcmdStatus((*res)->pg)) & GP__EFFECT_ENDS_TX)))
            published(conn, &sec);
    } else if (err && err->statement_index >= 0) {
        err->statement_index = -1; /* the caller's statement is the only one they know of */
    }
    gp__wipe(sec.hex, sizeof sec.hex);
    return st;
}

/* On success, give the caller the result (or only its row count). */
static gp_status_t hand_out(gp_status_t st, gp_result_t *r, gp_result_t **out, int64_t *affected)
{
    if (st == GP_OK) {
        if (affected)
            *affected = gp_result_affected(r);
        if (out) {
            *out = r;
            return st;
        }
    }
    gp_result_free(r);
    return st;
}

/* A one-shot that the pool may pipeline with other callers'
 * (query_batch.c): its head, [publish if needed; set tenant (and the
 * unit's statement timeout)], is built by the leader for the connection
 * it holds; the secret is recorded as published once the unit committed,
 * and wiped in any case. */
typedef struct piped {
    const char *tenant;
    secret_t sec;
    gp_value_t pub[4], set[2];
    char timeout[16];
} piped_t;

static gp_status_t piped_head(gp__oneshot_t *u, gp_conn_t *conn, int timeout_ms, gp__pipeline_item_t *items, int *n,
                              gp_error_t *err)
{
    piped_t *c = u->ctx;
    *n = 0;
    gp_status_t st = tenant_secret(conn, c->tenant, &c->sec, err);
    if (st != GP_OK) {
        c->sec.publish = false;
        return st;
    }
    if (c->sec.publish) {
        publish_params(conn, &c->sec, c->pub);
        items[(*n)++] = (gp__pipeline_item_t){PUBLISH, 4, c->pub, 0, NULL};
    }
    c->set[0] = gp_text(c->sec.hex);
    if (timeout_ms > 0) {
        snprintf(c->timeout, sizeof c->timeout, "%d", timeout_ms);
        c->set[1] = gp_text(c->timeout);
        items[(*n)++] = (gp__pipeline_item_t){SET_TOKEN_TIMEOUT, 2, c->set, 0, NULL};
    } else {
        items[(*n)++] = (gp__pipeline_item_t){SET_TOKEN, 1, c->set, 0, NULL};
    }
    return GP_OK;
}

static void piped_done(gp__oneshot_t *u, gp_conn_t *conn, gp_status_t status)
{
    piped_t *c = u->ctx;
    if (status == GP_OK) /* (an eligible statement cannot end the transaction that published) */
        published(conn, &c->sec);
    gp__wipe(c->sec.hex, sizeof c->sec.hex);
}

static gp_status_t one_shot(gp_pool_t *pool, const char *tenant_id, const char *sql, int nparams,
                            const gp_value_t *params, gp_result_t **out, int64_t *affected, gp_error_t *err)
{
    gp_status_t st = check_tenant(tenant_id, err);
    if (st != GP_OK)
        return st;
    if (!pool || !sql)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or SQL given");
    if (gp__oneshot_eligible(pool, sql)) {
        piped_t c;
        c.tenant = tenant_id;
        c.sec.publish = false;
        gp__oneshot_t u;
        gp__oneshot_init(&u, tenant_id, "gp_tenant_query/exec", sql, nparams, params, out != NULL, err);
        u.head = piped_head;
        u.done = piped_done;
        u.ctx = &c;
        st = gp__oneshot_run(pool, &u);
        gp__wipe(&c.sec, sizeof c.sec);
        if (st == GP_OK && affected)
            *affected = u.affected;
        return hand_out(st, u.result, out, NULL);
    }
    gp_conn_t *conn;
    st = gp_pool_acquire_at(pool, tenant_id, "gp_tenant_query/exec", -1, &conn, err);
    if (st != GP_OK)
        return st;
    gp_result_t *r = NULL;
    st = gp__oneshot_unanswered(conn, scoped_pipeline(conn, tenant_id, NULL, sql, nparams, params, true, &r, err),
                                err);
    gp_pool_release(conn);
    return hand_out(st, r, out, affected);
}

gp_status_t gp_tenant_read_query(gp_pool_t *pool, const char *tenant_id, const gp_read_opts_t *ropts,
                                 const char *sql, int nparams, const gp_value_t *params, gp_result_t **out,
                                 gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given");
    *out = NULL;
    gp_status_t st = check_tenant(tenant_id, err);
    if (st != GP_OK)
        return st;
    if (!pool || !sql)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or SQL given");
    gp_conn_t *conn;
    if ((st = gp_pool_acquire_read(pool, ropts, tenant_id, -1, &conn, err)) != GP_OK)
        return st;
    /* [BEGIN READ ONLY; set tenant; sql], then COMMIT with the sweep. */
    gp_result_t *r = NULL;
    const gp_tx_opts_t ro = {.read_only = true};
    conn->tx_read_only = true;
    st = scoped_pipeline(conn, tenant_id, &ro, sql, nparams, params, false, &r, err);
    if (st == GP_OK)
        st = gp__tx_commit_swept(conn, err);
    else
        gp_tx_rollback(conn, NULL);
    gp_pool_release(conn);
    return hand_out(st, r, out, NULL);
}

gp_status_t gp_tenant_query(gp_pool_t *pool, const char *tenant_id, const char *sql, int nparams,
                            const gp_value_t *params, gp_result_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given (use gp_tenant_exec to discard rows)");
    *out = NULL;
    return one_shot(pool, tenant_id, sql, nparams, params, out, NULL, err);
}

gp_status_t gp_tenant_exec(gp_pool_t *pool, const char *tenant_id, const char *sql, int nparams,
                           const gp_value_t *params, int64_t *affected, gp_error_t *err)
{
    if (affected)
        *affected = 0;
    return one_shot(pool, tenant_id, sql, nparams, params, NULL, affected, err);
}

/* ---- transactions ------------------------------------------------------------------ */

gp_status_t gp_tenant_begin(gp_conn_t *conn, const char *tenant_id, const gp_tx_opts_t *opts, gp_tenant_tx_t **out,
                            gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction pointer given");
    *out = NULL;
    gp_status_t st = check_tenant(tenant_id, err);
    if (st != GP_OK)
        return st;
    if (!conn || !conn->pg)
        return gp__client_error(err, GP_ERR_INVALID, "no connection given");
    char begin[160];
    if ((st = gp__tx_begin_text(opts, begin, sizeof begin, err)) != GP_OK)
        return st;
    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
        return gp__client_error(err, GP_ERR_INVALID, "a transaction is already open on this connection; "
                                "a tenant-scoped transaction must start its own");
    gp_tenant_tx_t *tx = calloc(1, sizeof *tx);
    if (!tx)
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    tx->conn = conn;
    if (opts)
        tx->opts = *opts;
    conn->tx_read_only = (opts && opts->read_only) || conn->read_lease; /* 25006 in it is the caller's */
    memcpy(tx->tenant, tenant_id, GP_TENANT_ID_LEN + 1);
    *out = tx;
    if (err)
        gp_error_clear(err);
    return GP_OK;
}

const char *gp_tenant_tx_tenant(const gp_tenant_tx_t *tx) { return tx ? tx->tenant : NULL; }

/* Whether the caller's statement ended the transaction (COMMIT, ROLLBACK,
 * also AND CHAIN, which opens a new transaction without the tenant
 * setting, and ROLLBACK TO SAVEPOINT, whose tag is the same: use
 * gp_tx_savepoint/gp_tx_rollback_to in a tenant-scoped transaction). */
static void note_end(gp_tenant_tx_t *tx, const gp_result_t *r)
{
    if (r && (gp__tag_effects(PQcmdStatus(r->pg)) & GP__EFFECT_ENDS_TX))
        tx->ended = true;
}

static gp_status_t tx_run(gp_tenant_tx_t *tx, const char *sql, int nparams, const gp_value_t *params,
                          gp_result_t **res, gp_error_t *err)
{
    if (!tx)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction given");
    if (!sql)
        return gp__client_error(err, GP_ERR_INVALID, "no SQL given");
    if (!res)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given");
    gp_status_t st;
    if (!tx->started) {
        tx->started = true; /* whatever happens now, something may have reached the server */
        st = scoped_pipeline(tx->conn, tx->tenant, &tx->opts, sql, nparams, params, false, res, err);
    } else {
        if (tx->ended || PQtransactionStatus(tx->conn->pg) == PQTRANS_IDLE)
            return gp__client_error(err, GP_ERR_INVALID, "the tenant-scoped transaction has ended (a statement "
                                    "committed or rolled it back); start a new one");
        st = gp_query(tx->conn, sql, nparams, params, res, err);
    }
    if (st == GP_OK)
        note_end(tx, *res);
    return st;
}

gp_status_t gp__tenant_tx_scope(gp_tenant_tx_t *tx, gp_conn_t **conn, gp_error_t *err)
{
    *conn = NULL;
    if (!tx)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction given");
    gp_status_t st = GP_OK;
    if (!tx->started) { /* BEGIN and the setting, with a statement that does nothing */
        gp_result_t *r = NULL;
        st = tx_run(tx, "SELECT", 0, NULL, &r, err);
        gp_result_free(r);
    } else if (tx->ended || PQtransactionStatus(tx->conn->pg) == PQTRANS_IDLE) {
        st = gp__client_error(err, GP_ERR_INVALID, "the tenant-scoped transaction has ended (a statement "
                              "committed or rolled it back); start a new one");
    }
    if (st == GP_OK)
        *conn = tx->conn;
    return st;
}

gp_status_t gp_tenant_tx_query(gp_tenant_tx_t *tx, const char *sql, int nparams, const gp_value_t *params,
                               gp_result_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given (use gp_tenant_tx_exec)");
    *out = NULL;
    return tx_run(tx, sql, nparams, params, out, err);
}

gp_status_t gp_tenant_tx_exec(gp_tenant_tx_t *tx, const char *sql, int nparams, const gp_value_t *params,
                              int64_t *affected, gp_error_t *err)
{
    if (affected)
        *affected = 0;
    gp_result_t *r = NULL;
    gp_status_t st = tx_run(tx, sql, nparams, params, &r, err);
    return hand_out(st, r, NULL, affected);
}

gp_status_t gp_tenant_commit(gp_tenant_tx_t *tx, gp_error_t *err)
{
    if (!tx)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction given");
    gp_status_t st = GP_OK;
    if (tx->started)
        st = tx->owns_lease ? gp__tx_commit_swept(tx->conn, err) : gp_tx_commit(tx->conn, err);
    else if (err)
        gp_error_clear(err);
    end_hooks(tx, st == GP_OK);
    free(tx);
    return st;
}

gp_status_t gp_tenant_commit_position(gp_tenant_tx_t *tx, char position[GP_WAL_POSITION_LEN], gp_error_t *err)
{
    if (!position || !tx) {
        gp_tenant_rollback(tx, NULL);
        return gp__client_error(err, GP_ERR_INVALID, "a transaction and a position buffer are required");
    }
    position[0] = 0;
    gp_conn_t *conn = tx->conn;
    gp_status_t st = gp_tenant_commit(tx, err);
    if (st != GP_OK)
        return st;
    return gp__wal_position_of(conn, position, err);
}

gp_status_t gp_tenant_rollback(gp_tenant_tx_t *tx, gp_error_t *err)
{
    if (!tx)
        return GP_OK;
    gp_status_t st = GP_OK;
    if (tx->started)
        st = gp_tx_rollback(tx->conn, err);
    else if (err)
        gp_error_clear(err);
    end_hooks(tx, false);
    free(tx);
    return st;
}

typedef struct scoped_run {
    gp_conn_t *conn;
    const char *tenant;
    const gp_tx_opts_t *opts;
    gp_tenant_fn fn;
    void *userdata;
    gp_tenant_tx_t *tx; /* the attempt's transaction */
} scoped_run_t;

static gp_status_t scoped_begin(void *ctx, gp_error_t *e)
{
    scoped_run_t *r = ctx;
    gp_status_t st = gp_tenant_begin(r->conn, r->tenant, r->opts, &r->tx, e);
    if (st == GP_OK)
        r->tx->owns_lease = true;
    return st;
}
static gp_status_t scoped_body(void *ctx, gp_error_t *e)
{
    scoped_run_t *r = ctx;
    return r->fn(r->tx, r->userdata, e);
}
static gp_status_t scoped_commit(void *ctx, gp_error_t *e)
{
    scoped_run_t *r = ctx;
    gp_tenant_tx_t *tx = r->tx;
    r->tx = NULL;
    return gp_tenant_commit(tx, e);
}
static gp_status_t scoped_rollback(void *ctx, gp_error_t *e)
{
    scoped_run_t *r = ctx;
    gp_tenant_tx_t *tx = r->tx;
    r->tx = NULL;
    return gp_tenant_rollback(tx, e);
}

gp_status_t gp_tenant_run(gp_pool_t *pool, const char *tenant_id, const gp_tx_opts_t *opts, gp_tenant_fn fn,
                          void *userdata, int *attempts, gp_error_t *err)
{
    if (attempts)
        *attempts = 0;
    gp_status_t st = check_tenant(tenant_id, err);
    if (st != GP_OK)
        return st;
    if (!pool || !fn)
        return gp__client_error(err, GP_ERR_INVALID, "no pool or transaction function given");
    gp_conn_t *conn;
    st = opts && opts->read_only ? gp_pool_acquire_read(pool, NULL, tenant_id, -1, &conn, err)
                                 : gp_pool_acquire_at(pool, tenant_id, "gp_tenant_run", -1, &conn, err);
    if (st != GP_OK)
        return st;
    static const gp__tx_steps_t steps = {scoped_begin, scoped_body, scoped_commit, scoped_rollback};
    scoped_run_t r = {conn, tenant_id, opts, fn, userdata, NULL};
    st = gp__tx_retry(conn, opts, &steps, &r, attempts, err);
    gp_pool_release(conn);
    return st;
}

/* ---- helpers --------------------------------------------------------------------------- */

#define MAX_COLS 64

static bool ident_ok(const char *s) { return gp__plain_ident(s); }

static gp_status_t bad_ident(gp_error_t *err, const char *what, const char *s)
{
    char shown[80];
    size_t n = 0;
    for (const char *p = s ? s : "(null)"; *p && n < 64; p++)
        shown[n++] = (*p >= 32 && *p < 127) ? *p : '?';
    shown[n] = 0;
    return gp__client_error(err, GP_ERR_INVALID, "%s '%s' is not a plain identifier; expected [a-z_][a-z0-9_]*, "
                            "at most 63 bytes", what, shown);
}

/* Append a "*" or a validated, quoted column list. */
static gp_status_t add_columns(gp__sbuf_t *b, const char *list, gp_error_t *err)
{
    if (strcmp(list, "*") == 0) {
        gp__sbuf_add(b, "*");
        return GP_OK;
    }
    char col[64];
    const char *p = list;
    for (int i = 0;; i++) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0 || n >= sizeof col)
            return bad_ident(err, "column list", list);
        memcpy(col, p, n);
        col[n] = 0;
        if (!ident_ok(col))
            return bad_ident(err, "column", col);
        gp__sbuf_add(b, "%s\"%s\"", i ? ", " : "", col);
        p += n;
        while (*p == ' ')
            p++;
        if (!*p)
            return GP_OK;
        if (*p++ != ',')
            return bad_ident(err, "column list", list);
    }
}

/* The transaction, table and (when key_col is not NULL) key column a helper
 * works on: present and plain identifiers. */
static gp_status_t check_target(const gp_tenant_tx_t *tx, const char *table, const char *key_col, gp_error_t *err)
{
    if (!tx)
        return gp__client_error(err, GP_ERR_INVALID, "no transaction given");
    if (!ident_ok(table))
        return bad_ident(err, "table", table);
    if (key_col && !ident_ok(key_col))
        return bad_ident(err, "key column", key_col);
    return GP_OK;
}

static gp_status_t check_cols(int ncols, const char *const *cols, const gp_value_t *vals, bool allow_none,
                              gp_error_t *err)
{
    if (ncols < (allow_none ? 0 : 1) || ncols > MAX_COLS || (ncols && (!cols || !vals)))
        return gp__client_error(err, GP_ERR_INVALID, "between %d and %d columns with values are required",
                                allow_none ? 0 : 1, MAX_COLS);
    for (int i = 0; i < ncols; i++) {
        if (!ident_ok(cols[i]))
            return bad_ident(err, "column", cols[i]);
        if (strcmp(cols[i], "tenant_id") == 0)
            return gp__client_error(err, GP_ERR_INVALID, "column tenant_id is set by the tenant-scoped helper "
                                    "from the transaction's tenant; do not pass it");
    }
    return GP_OK;
}

/* Run helper SQL with [tenant, extra...] parameters. */
static gp_status_t run_helper(gp_tenant_tx_t *tx, gp__sbuf_t *b, int nextra, const gp_value_t *extra,
                              gp_result_t **out, int64_t *affected, gp_error_t *err)
{
    if (b->oom) {
        free(b->s);
        return gp__client_error(err, GP_ERR_NOMEM, "out of memory");
    }
    gp_value_t params[MAX_COLS + 2];
    params[0] = gp_uuid_str(tx->tenant);
    for (int i = 0; i < nextra; i++)
        params[i + 1] = extra[i];
    gp_result_t *r = NULL;
    gp_status_t st = tx_run(tx, b->s, nextra + 1, params, &r, err);
    free(b->s);
    return hand_out(st, r, out, affected);
}

gp_status_t gp_tenant_insert(gp_tenant_tx_t *tx, const char *table, int ncols, const char *const *cols,
                             const gp_value_t *vals, const char *returning, gp_result_t **out, gp_error_t *err)
{
    if (out)
        *out = NULL;
    gp_status_t st = check_target(tx, table, NULL, err);
    if (st == GP_OK)
        st = check_cols(ncols, cols, vals, true, err);
    if (st != GP_OK)
        return st;
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "INSERT INTO public.\"%s\" (\"tenant_id\"", table);
    for (int i = 0; i < ncols; i++)
        gp__sbuf_add(&b, ", \"%s\"", cols[i]);
    gp__sbuf_add(&b, ") VALUES ($1");
    for (int i = 0; i < ncols; i++)
        gp__sbuf_add(&b, ", $%d", i + 2);
    gp__sbuf_add(&b, ")");
    if (returning) {
        gp__sbuf_add(&b, " RETURNING ");
        if ((st = add_columns(&b, returning, err)) != GP_OK) {
            free(b.s);
            return st;
        }
    }
    return run_helper(tx, &b, ncols, vals, out, NULL, err);
}

gp_status_t gp_tenant_get(gp_tenant_tx_t *tx, const char *table, const char *columns, const char *key_col,
                          gp_value_t key, gp_result_t **out, gp_error_t *err)
{
    if (!out)
        return gp__client_error(err, GP_ERR_INVALID, "no result pointer given");
    *out = NULL;
    gp_status_t st = check_target(tx, table, key_col, err);
    if (st != GP_OK)
        return st;
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "SELECT ");
    st = add_columns(&b, columns ? columns : "*", err);
    if (st != GP_OK) {
        free(b.s);
        return st;
    }
    gp__sbuf_add(&b, " FROM public.\"%s\" WHERE \"tenant_id\" = $1 AND \"%s\" = $2", table, key_col);
    return run_helper(tx, &b, 1, &key, out, NULL, err);
}

gp_status_t gp_tenant_update(gp_tenant_tx_t *tx, const char *table, const char *key_col, gp_value_t key, int ncols,
                             const char *const *cols, const gp_value_t *vals, int64_t *affected, gp_error_t *err)
{
    if (affected)
        *affected = 0;
    gp_status_t st = check_target(tx, table, key_col, err);
    if (st != GP_OK)
        return st;
    st = check_cols(ncols, cols, vals, false, err);
    if (st != GP_OK)
        return st;
    gp_value_t extra[MAX_COLS + 1];
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "UPDATE public.\"%s\" SET ", table);
    for (int i = 0; i < ncols; i++) {
        gp__sbuf_add(&b, "%s\"%s\" = $%d", i ? ", " : "", cols[i], i + 2);
        extra[i] = vals[i];
    }
    extra[ncols] = key;
    gp__sbuf_add(&b, " WHERE \"tenant_id\" = $1 AND \"%s\" = $%d", key_col, ncols + 2);
    return run_helper(tx, &b, ncols + 1, extra, NULL, affected, err);
}

gp_status_t gp_tenant_delete(gp_tenant_tx_t *tx, const char *table, const char *key_col, gp_value_t key,
                             int64_t *affected, gp_error_t *err)
{
    if (affected)
        *affected = 0;
    gp_status_t st = check_target(tx, table, key_col, err);
    if (st != GP_OK)
        return st;
    gp__sbuf_t b = {0};
    gp__sbuf_add(&b, "DELETE FROM public.\"%s\" WHERE \"tenant_id\" = $1 AND \"%s\" = $2", table, key_col);
    return run_helper(tx, &b, 1, &key, NULL, affected, err);
}
