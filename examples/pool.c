/* pool.c — the pool on its own: create it, lease a connection under a
 * label, use libpq directly through the escape hatch, read the metrics,
 * close it. The README's "Pool" sample is this file's main().
 *   eval "$(scripts/services env)"; build/examples/pool */
#include <stdio.h>
#include <stdlib.h>

#include <growplate/growplate.h>
#include <libpq-fe.h>

/* Typed parameters (types.h) and getters (query.h) on a leased connection. */
static int typed_values(gp_conn_t *conn)
{
    gp_error_t err;
    gp_result_t *res;
    if (gp_query(conn, "SELECT $1::int8 + 1 AS id, $2::numeric * 2 AS price",
                 GP_ARGS(gp_int64(41), gp_numeric("12.50")), &res, &err) != GP_OK) {
        fprintf(stderr, "query: %s\n", err.message);
        return 1;
    }
    int64_t id = 0;
    char *price = NULL; /* exact decimal text, malloc'd */
    if (gp_get_int64(res, 0, gp_col(res, "id"), &id) != GP_OK || gp_get_numeric(res, 0, gp_col(res, "price"), &price) != GP_OK) {
        gp_result_free(res);
        return 1;
    }
    printf("id %lld, price %s\n", (long long)id, price);
    free(price);
    gp_result_free(res);
    /* Without rows: the affected count, or NULL. */
    return gp_exec(conn, "SELECT $1::int", GP_ARGS(gp_int32(7)), NULL, &err) == GP_OK ? 0 : 1;
}

int main(void)
{
    gp_config_t cfg;
    char problems[GP_ERRBUF_SIZE];
    if (gp_config_from_env(&cfg, problems, sizeof problems) != GP_OK) {
        fprintf(stderr, "%s", problems);
        gp_config_release(&cfg);
        return 2;
    }

    gp_pool_t *pool;
    gp_error_t err;
    if (gp_pool_create(&cfg, &pool, &err) != GP_OK) {  /* returns at once; connects in the background */
        fprintf(stderr, "%s\n", err.message);
        gp_config_release(&cfg);
        return 2;
    }

    int rc = 0;
    gp_conn_t *conn;
    if (gp_pool_acquire(pool, "tenant-42", -1, &conn, &err) != GP_OK) {  /* -1: DATABASE_ACQUIRE_TIMEOUT */
        /* GP_ERR_TIMEOUT, GP_ERR_CONNECT, GP_ERR_AUTH or GP_ERR_CLOSED; err.klass and
         * err.retriable say whether to retry; err.message never holds a password */
        fprintf(stderr, "acquire: %s (%s)\n", err.message, err.retriable ? "retriable" : "not retriable");
        rc = 1;
    } else {
        PGconn *pg = gp_conn_pgconn(conn);    /* libpq escape hatch, valid while leased */
        printf("leased a connection to PostgreSQL %d (backend %d)\n", PQserverVersion(pg), PQbackendPID(pg));
        rc = typed_values(conn);
        gp_pool_release(conn);                 /* from any thread */
    }

    gp_pool_metrics_t m;
    gp_pool_metrics(pool, &m);                 /* gauges, counters, wait/hold/connect percentiles */
    printf("acquires %llu, connections opened %llu, p99 acquire wait %.0f us\n", (unsigned long long)m.acquires,
           (unsigned long long)m.opened, m.wait.p99_us);
    gp_pool_close(pool, 5000);                 /* waits at most 5 s for leased connections */
    gp_config_release(&cfg);
    return rc;
}
