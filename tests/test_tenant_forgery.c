/* test_tenant_forgery.c — SQL injected into tenant A's call stays inside
 * tenant A. Each attack is one statement an attacker controls in A's call
 * (a one-shot call, and the first statement of A's transaction followed by
 * the attacker's read and write of B's rows in the same transaction): it
 * sets the tenant context in every spelling (set_config local and session,
 * SET, SET LOCAL, behind comments, in a DO block, in a temporary function,
 * in a sub-select of the statement that reads, in a data-modifying CTE),
 * to B's bare id, to a forged secret, to B's genuine secret after its
 * expiry, or tries to make the database accept one (publishing A's secret
 * as B's, a forged one, one for a tenant that does not exist, B's expired
 * one; writing an anchor; replacing the view; reading the keys). Every one
 * must see nothing of tenant B and change nothing of tenant B, which is
 * checked as the superuser (row-level security does not apply to it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gp_scratch.h"
#include "gp_test.h"
#include "gp_test_data.h"
#include "growplate/tenant.h"

static gp_scratch_t scratch;
static gp_config_t cfg;
static gp_pool_t *pool;
static PGconn *admin;
static char ta[37], tb[37];
static char kid[17], forged[65], b_expired[65], b_expired_exp[24], live_exp[24];
static const char nobody[] = "00000000-0000-4000-8000-00000000dead";
static char b_fingerprint[128]; /* B's rows as the superuser sees them */

/* How many of B's rows a statement can see, and their names (which the
 * attacks put in their results: every one starts with "tenantb-"). */
#define B_ROWS "(SELECT count(*) FROM public.menu_items WHERE name LIKE 'tenantb-%')"
#define B_NAMES "(SELECT string_agg(name, ',') FROM public.menu_items WHERE name LIKE 'tenantb-%')"

static char *expand(const char *tmpl)
{
    static const struct { const char *key; const char *val; } subst[] = {
        {"{B}", tb}, {"{FORGED}", forged}, {"{BEXPIRED}", b_expired}, {"{BEXPIRED_EXP}", b_expired_exp},
        {"{KID}", kid}, {"{EXP}", live_exp}, {"{NOBODY}", nobody}, {"{R}", B_NAMES},
    };
    size_t cap = strlen(tmpl) * 4 + 512;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        bool done = false;
        for (size_t i = 0; i < sizeof subst / sizeof *subst && !done; i++) {
            size_t n = strlen(subst[i].key);
            if (strncmp(p, subst[i].key, n) == 0) {
                o += (size_t)snprintf(out + o, cap - o, "%s", subst[i].val);
                p += n;
                done = true;
            }
        }
        if (!done)
            out[o++] = *p++;
        assert_true(o < cap - 64);
    }
    out[o] = 0;
    return out;
}

static void fingerprint(char *out, size_t len)
{
    gp_scratch_value(admin,
                     "SELECT count(*) || ':' || sum(price_cents) || ':' || string_agg(name, ',' ORDER BY name) "
                     "FROM public.menu_items WHERE tenant_id = (SELECT id FROM public.tenants WHERE slug = 'forge-b')",
                     out, len);
}

/* No cell of any row of r names one of B's rows (B's id may appear: the
 * attacker wrote it). */
static void assert_shows_nothing_of_b(const gp_result_t *r, const char *what)
{
    for (int i = 0; i < gp_result_rows(r); i++)
        for (int c = 0; c < gp_result_columns(r); c++) {
            bool null = false;
            gp_get_is_null(r, i, c, &null);
            if (null)
                continue;
            const char *s;
            size_t n;
            if (gp_get_text(r, i, c, &s, &n) != GP_OK)
                continue;
            char cell[256];
            snprintf(cell, sizeof cell, "%.*s", (int)n, s);
            if (strstr(cell, "tenantb-"))
                fprintf(stderr, "%s: the result shows '%s'\n", what, cell);
            assert_null(strstr(cell, "tenantb-"));
        }
}

/* The attacker's SQL as the whole of a one-shot call of A's. */
static void via_one_shot(const char *sql, const char *what)
{
    gp_result_t *r = NULL;
    gp_error_t e;
    gp_status_t st = gp_tenant_query(pool, ta, sql, 0, NULL, &r, &e);
    if (st == GP_OK) {
        assert_shows_nothing_of_b(r, what);
        gp_result_free(r);
    } else {
        assert_null(strstr(e.message, "tenantb-"));
        assert_null(strstr(e.message, b_expired));
    }
}

typedef struct tx_attack {
    const char *sql, *what;
    int64_t seen, changed;
} tx_attack_t;

/* The attacker's SQL as the first statement of A's transaction, then a
 * read and a write of B's rows in the same transaction. */
static gp_status_t tx_body(gp_tenant_tx_t *tx, void *ud, gp_error_t *err)
{
    tx_attack_t *a = ud;
    gp_result_t *r = NULL;
    gp_status_t st = gp_tenant_tx_query(tx, a->sql, 0, NULL, &r, err);
    if (st != GP_OK)
        return GP_OK; /* refused: nothing more to try in this transaction */
    assert_shows_nothing_of_b(r, a->what);
    gp_result_free(r);
    r = NULL;
    if ((st = gp_tenant_tx_query(tx, "SELECT " B_ROWS, 0, NULL, &r, err)) != GP_OK)
        return GP_OK; /* e.g. the attack ended the transaction */
    gp_get_int64(r, 0, 0, &a->seen);
    gp_result_free(r);
    if (gp_tenant_tx_exec(tx, "UPDATE public.menu_items SET price_cents = 1 WHERE name LIKE 'tenantb-%'", 0, NULL,
                          &a->changed, err) != GP_OK)
        return GP_OK;
    return GP_OK;
}

static void via_transaction(const char *sql, const char *what)
{
    tx_attack_t a = {sql, what, 0, 0};
    gp_error_t e;
    gp_tenant_run(pool, ta, NULL, tx_body, &a, NULL, &e);
    if (a.seen || a.changed)
        fprintf(stderr, "%s: in the transaction, saw %lld and changed %lld of B's rows\n", what, (long long)a.seen,
                (long long)a.changed);
    assert_int_equal(a.seen, 0);
    assert_int_equal(a.changed, 0);
}

static void try_attack(const char *tmpl)
{
    char *sql = expand(tmpl);
    via_one_shot(sql, tmpl);
    via_transaction(sql, tmpl);
    char now[128];
    fingerprint(now, sizeof now);
    if (strcmp(now, b_fingerprint) != 0)
        fprintf(stderr, "%s: B's rows changed: %s -> %s\n", tmpl, b_fingerprint, now);
    assert_string_equal(now, b_fingerprint);
    /* A's own calls still work, and B still sees its rows. */
    assert_int_equal(gp_test_data_scalar(pool, ta, "SELECT count(*) FROM public.menu_items", NULL), 2);
    assert_int_equal(gp_test_data_scalar(pool, tb, "SELECT " B_ROWS, NULL), 2);
    free(sql);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    gp_scratch_create(&scratch, "forgery");
    gp_scratch_migrate(&scratch);
    gp_scratch_config(&scratch, &cfg);
    cfg.db.pool_min = 1;
    cfg.db.pool_max = 2;
    gp_error_t e;
    if (gp_pool_create(&cfg, &pool, &e) != GP_OK) {
        fprintf(stderr, "pool: %s\n", e.message);
        return -1;
    }
    gp_test_data_tenant(pool, "forge-a", ta);
    gp_test_data_tenant(pool, "forge-b", tb);
    char cat[37], item[37];
    gp_test_data_category(pool, ta, "a-cat", 1, cat);
    gp_test_data_item(pool, ta, cat, "a-soup", 300, true, item);
    gp_test_data_item(pool, ta, cat, "a-salad", 300, true, item);
    gp_test_data_category(pool, tb, "tenantb-cat", 1, cat);
    gp_test_data_item(pool, tb, cat, "tenantb-soup", 700, true, item);
    gp_test_data_item(pool, tb, cat, "tenantb-salad", 900, true, item);
    admin = gp_scratch_connect(scratch.admin);
    fingerprint(b_fingerprint, sizeof b_fingerprint);

    /* A forged secret: the right shape, no key behind it. */
    unsigned char rnd[32];
    FILE *f = fopen("/dev/urandom", "rb");
    assert_non_null(f);
    assert_int_equal(fread(rnd, 1, sizeof rnd, f), sizeof rnd);
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(forged + 2 * i, 3, "%02x", rnd[i]);
    /* B's genuine secret of a window that ended 20 s ago, as if it had
     * leaked then: its anchor is still there (expired anchors are deleted
     * a minute after expiry), so only the expiry stands in the way. */
    int64_t exp = (int64_t)time(NULL) - 20;
    snprintf(b_expired_exp, sizeof b_expired_exp, "%lld", (long long)exp);
    gp_scratch_tenant_secret(tb, exp, kid, b_expired);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO growplate_private.tenant_anchors (digest, tenant, kid, expires_at) VALUES "
             "(sha256(convert_to('%s', 'UTF8')), '%s', '%s', to_timestamp(%lld))",
             b_expired, tb, kid, (long long)exp);
    gp_scratch_exec(admin, sql);
    snprintf(live_exp, sizeof live_exp, "%lld", (long long)time(NULL) + 300);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_pool_close(pool, 5000);
    gp_config_release(&cfg);
    PQfinish(admin);
    gp_scratch_drop(&scratch);
    return 0;
}

/* ---- the attacks ------------------------------------------------------------------------ */

/* Setting the context mid-transaction, in every spelling. */
static void test_setting_the_context(void **state)
{
    (void)state;
    static const char *const attacks[] = {
        "SELECT set_config('app.tenant_id', '{B}', true), {R}",
        "SELECT set_config('app.tenant_id', '{B}', false), {R}",
        "SELECT set_config('growplate.tenant_token', '{B}', true), {R}",
        "SELECT set_config('growplate.tenant_token', '{FORGED}', true), {R}",
        "SELECT set_config('growplate.tenant_token', '{FORGED}', false), {R}",
        "SELECT set_config('growplate.tenant_token', '{BEXPIRED}', true), {R}",
        "SELECT set_config('growplate.tenant_token', '{BEXPIRED}', false), {R}",
        "SELECT set_config('growplate.tenant_token', encode(sha256('{BEXPIRED}'), 'hex'), true), {R}",
        "SELECT set_config('growplate.tenant_token', upper('{BEXPIRED}'), true), {R}",
        "SELECT set_config('growplate.tenant_token', ' {BEXPIRED}', true), {R}",
        "SET LOCAL growplate.tenant_token = '{BEXPIRED}'",
        "SET growplate.tenant_token = '{FORGED}'",
        "SET LOCAL app.tenant_id = '{B}'",
        "/* c */ SET /* x */ LOCAL -- y\n growplate.tenant_token = '{BEXPIRED}'",
        "set local \"growplate\".\"tenant_token\" to '{BEXPIRED}'",
        "SELECT \"set_config\"('growplate.tenant_token', '{FORGED}', true), {R}",
        "SELECT U&\"set\\005fconfig\"('growplate.tenant_token', '{BEXPIRED}', true), {R}",
    };
    for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++)
        try_attack(attacks[i]);
}

/* One statement that sets and reads, in sub-selects and CTEs, and a
 * data-modifying CTE. */
static void test_set_and_read_in_one_statement(void **state)
{
    (void)state;
    static const char *const attacks[] = {
        "SELECT (SELECT set_config('growplate.tenant_token', '{BEXPIRED}', true)) IS NOT NULL, {R}",
        "SELECT s, {R} FROM (SELECT set_config('app.tenant_id', '{B}', true) AS s) x",
        "WITH s AS MATERIALIZED (SELECT set_config('growplate.tenant_token', '{BEXPIRED}', true)) "
        "SELECT (SELECT count(*) FROM s), name FROM public.menu_items",
        "SELECT name, set_config('growplate.tenant_token', '{BEXPIRED}', true) FROM public.menu_items",
        "WITH s AS (SELECT set_config('growplate.tenant_token', '{BEXPIRED}', true)), "
        "u AS (UPDATE public.menu_items SET price_cents = 0 WHERE name LIKE 'tenantb-%' RETURNING name) "
        "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM u), {R}",
        "WITH s AS (SELECT set_config('app.tenant_id', '{B}', true)), "
        "d AS (DELETE FROM public.menu_items WHERE name LIKE 'tenantb-%' RETURNING name) "
        "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM d)",
        "WITH u AS (UPDATE public.menu_items SET tenant_id = '{B}' WHERE true RETURNING 1) SELECT count(*) FROM u",
        "INSERT INTO public.menu_categories (tenant_id, name) SELECT '{B}', 'tenantb-smuggled' "
        "FROM (SELECT set_config('growplate.tenant_token', '{BEXPIRED}', true)) s",
        "DO $$BEGIN PERFORM set_config('growplate.tenant_token', '{BEXPIRED}', true); "
        "UPDATE public.menu_items SET price_cents = 0 WHERE name LIKE 'tenantb-%'; END$$",
        "DO $$BEGIN EXECUTE 'SET LOCAL growplate.tenant_token = ''{FORGED}'''; "
        "DELETE FROM public.menu_items WHERE name LIKE 'tenantb-%'; END$$",
        "DO $$DECLARE n bigint; BEGIN PERFORM set_config('app.tenant_id', '{B}', true); "
        "SELECT count(*) INTO n FROM public.menu_items WHERE name LIKE 'tenantb-%'; "
        "IF n > 0 THEN RAISE EXCEPTION 'tenantb-saw %', n; END IF; END$$",
    };
    for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++)
        try_attack(attacks[i]);
}

/* Making the database accept a context: publishing, writing an anchor,
 * replacing the view, reading the keys. */
static void test_making_a_context(void **state)
{
    (void)state;
    static const char *const attacks[] = {
        /* A's own secret relabelled as B's (the id edited) */
        "SELECT growplate.tenant_publish('{KID}', '{B}'::uuid, {EXP}, current_setting('growplate.tenant_token'))",
        "SELECT growplate.tenant_publish('{KID}', '{B}'::uuid, {EXP}, '{FORGED}')",
        /* a tenant that does not exist */
        "SELECT growplate.tenant_publish('{KID}', '{NOBODY}'::uuid, {EXP}, '{FORGED}')",
        /* B's genuine secret, replayed after its expiry */
        "SELECT growplate.tenant_publish('{KID}', '{B}'::uuid, {BEXPIRED_EXP}, '{BEXPIRED}')",
        "SELECT growplate.tenant_publish('{KID}', '{B}'::uuid, {BEXPIRED_EXP} + 600, '{BEXPIRED}')",
        "SELECT growplate.tenant_publish('0000000000000000', '{B}'::uuid, {EXP}, '{FORGED}')",
        "SELECT * FROM growplate_private.tenant_keys",
        "SELECT * FROM growplate_private.tenant_anchors",
        "INSERT INTO growplate_private.tenant_anchors VALUES (sha256('x'), '{B}', '{KID}', now() + interval '1 h')",
        "UPDATE growplate_private.tenant_anchors SET expires_at = now() + interval '1 h'",
        "CREATE OR REPLACE VIEW growplate.tenant_context AS SELECT '{B}'::uuid AS tenant",
        "CREATE FUNCTION public.growplate_tenant() RETURNS uuid LANGUAGE sql AS $$SELECT '{B}'::uuid$$",
        "ALTER POLICY tenant_isolation ON public.menu_items USING (true)",
        "SELECT tenant::text::int FROM growplate.tenant_context",
        "SELECT count(*) FROM growplate.tenant_context WHERE tenant::text::int > 0",
    };
    for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++)
        try_attack(attacks[i]);
    /* The expired anchor was there all along: the expiry refused it. */
    char buf[16];
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM growplate_private.tenant_anchors WHERE digest = sha256(convert_to('%s', 'UTF8'))",
             b_expired);
    assert_string_equal(gp_scratch_value(admin, sql, buf, sizeof buf), "1");
}

/* A temporary function, where an operator granted TEMPORARY. */
static void test_temporary_function(void **state)
{
    (void)state;
    char sql[256];
    snprintf(sql, sizeof sql, "GRANT TEMPORARY ON DATABASE %s TO growplate_app", scratch.db);
    gp_scratch_exec(admin, sql);
    try_attack("CREATE FUNCTION pg_temp.f() RETURNS bigint LANGUAGE sql AS $q$"
               "SELECT set_config('growplate.tenant_token', '{BEXPIRED}', true); {R}$q$");
    try_attack("DO $$BEGIN CREATE FUNCTION pg_temp.g() RETURNS bigint LANGUAGE sql AS $q$"
               "SELECT set_config('app.tenant_id', '{B}', true); SELECT count(*) FROM public.menu_items "
               "WHERE name LIKE 'tenantb-%'$q$; PERFORM pg_temp.g(); END$$");
    snprintf(sql, sizeof sql, "REVOKE TEMPORARY ON DATABASE %s FROM growplate_app", scratch.db);
    gp_scratch_exec(admin, sql);
}

/* What a secret that leaks while it is valid buys, and for how long: its
 * tenant (only that one), until its expiry, at most two token TTLs after
 * it was first used. */
static void test_live_secret_is_bounded(void **state)
{
    (void)state;
    /* B's current secret, published by B's own call. */
    assert_int_equal(gp_test_data_scalar(pool, tb, "SELECT " B_ROWS, NULL), 2);
    char buf[64];
    gp_scratch_value(admin,
                     "SELECT max(extract(epoch FROM expires_at - now()))::int FROM growplate_private.tenant_anchors "
                     "WHERE expires_at > now()", buf, sizeof buf);
    int left = atoi(buf);
    assert_true(left > 0);
    assert_true(left <= 2 * cfg.db.tenant_token_ttl_ms / 1000);
    /* The secret is set as a parameter: no statement text shows it. */
    gp_scratch_value(admin,
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ~ '[0-9a-f]{64}'", buf, sizeof buf);
    assert_string_equal(buf, "0");
}

/* Neither the key nor a secret the library sent reaches the server's log,
 * even when the statement that carried it failed (the server logs the
 * failing statement's text, whose values are parameters). */
static void test_nothing_secret_in_the_server_log(void **state)
{
    (void)state;
    static const char other_key[] = "9999999999999999999999999999999999999999999999999999999999999999";
    gp_config_t c = cfg;
    c.owned_ = NULL;
    c.db.tenant_key = other_key; /* not installed: the library's publish fails */
    gp_pool_t *p = NULL;
    gp_error_t e;
    assert_int_equal(gp_pool_create(&c, &p, &e), GP_OK);
    gp_result_t *r = NULL;
    assert_int_equal(gp_tenant_query(p, ta, "SELECT 1", 0, NULL, &r, &e), GP_ERR_AUTH);
    assert_non_null(strstr(e.message, "is not installed"));
    gp_pool_close(p, 5000);
    /* The secrets it may have sent: this window's and the next's. */
    int64_t ttl = c.db.tenant_token_ttl_ms / 1000, exp = ((int64_t)time(NULL) / ttl + 2) * ttl;
    char secrets[3][65], kid9[17];
    for (int i = 0; i < 3; i++)
        gp_scratch_tenant_secret_with(other_key, ta, exp + (i - 1) * ttl, kid9, secrets[i]);
    /* scripts/services logs next to the data directory. */
    char data[900], path[1024];
    gp_scratch_value(admin, "SELECT current_setting('data_directory')", data, sizeof data);
    char *slash = strrchr(data, '/');
    assert_non_null(slash);
    *slash = 0;
    snprintf(path, sizeof path, "%s/postgres.log", data);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "no server log at %s\n", path);
        fail();
    }
    char line[8192];
    bool saw_statement = false;
    while (fgets(line, sizeof line, f)) {
        saw_statement |= strstr(line, "growplate.tenant_publish($1") != NULL;
        assert_null(strstr(line, getenv("DATABASE_TENANT_KEY")));
        assert_null(strstr(line, other_key));
        for (int i = 0; i < 3; i++)
            assert_null(strstr(line, secrets[i]));
    }
    fclose(f);
    assert_true(saw_statement); /* the failure was logged, without its values */
}

/* The pool remembers which secrets it published; when a connection breaks
 * (as in a failover to a server that lost the latest writes) it publishes
 * again rather than run calls whose anchor may be gone. */
static void test_lost_anchors_are_published_again(void **state)
{
    (void)state;
    if (getenv("DATABASE_POOLER")) {
        /* Through a pooler the client never sees the server connection
         * break, so it cannot know to publish again (README, "Scaling
         * out"): tests/test_via_pgbouncer.sh runs this file that way. */
        skip();
    }
    assert_int_equal(gp_test_data_scalar(pool, tb, "SELECT " B_ROWS, NULL), 2);
    gp_scratch_exec(admin, "DELETE FROM growplate_private.tenant_anchors WHERE expires_at > now()");
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s' "
             "AND usename = 'growplate_app'", scratch.db);
    gp_scratch_exec(admin, sql);
    int64_t seen = -1;
    for (int attempt = 0; attempt < 4 && seen < 0; attempt++) {
        gp_result_t *r = NULL;
        gp_error_t e;
        if (gp_tenant_query(pool, tb, "SELECT " B_ROWS, 0, NULL, &r, &e) == GP_OK)
            gp_get_int64(r, 0, 0, &seen);
        else
            assert_true(e.retriable); /* the broken connection, reported as such */
        gp_result_free(r);
    }
    assert_int_equal(seen, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setting_the_context),
        cmocka_unit_test(test_set_and_read_in_one_statement),
        cmocka_unit_test(test_making_a_context),
        cmocka_unit_test(test_temporary_function),
        cmocka_unit_test(test_live_secret_is_bounded),
        cmocka_unit_test(test_nothing_secret_in_the_server_log),
        cmocka_unit_test(test_lost_anchors_are_published_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
