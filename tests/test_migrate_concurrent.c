/* test_migrate_concurrent.c — two migrators started together never collide:
 * while a third party holds the migration lock, both wait (observed in
 * pg_locks, not guessed with sleeps); once it is released, one applies
 * every migration and the other finds nothing to do.
 * ctest-labels: concurrency */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gp_scratch.h"
#include "internal.h"

typedef struct migrator {
    const gp_config_t *cfg;
    gp_status_t st;
    gp_migrate_report_t *rep;
    gp_error_t err;
} migrator_t;

static void *run(void *arg)
{
    migrator_t *m = arg;
    m->st = gp_migrate(m->cfg, NULL, &m->rep, &m->err);
    return NULL;
}

static void test_two_migrators(void **state)
{
    (void)state;
    gp_scratch_t s;
    gp_scratch_create(&s, "mig_conc");
    gp_config_t cfg;
    gp_scratch_config(&s, &cfg);
    PGconn *holder = gp_scratch_connect(s.owner_url);
    char sql[256], buf[32];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)GP_MIGRATION_LOCK_KEY);
    gp_scratch_exec(holder, sql);

    migrator_t m[2] = {{.cfg = &cfg}, {.cfg = &cfg}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run, &m[i]), 0);
    /* Both are queued on the lock (bounded wait for a condition). */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
             "(SELECT oid FROM pg_database WHERE datname = '%s')", s.db);
    int64_t deadline = gp__now_ns() + 20LL * 1000000000LL;
    while (atoi(gp_scratch_value(holder, sql, buf, sizeof buf)) < 2 && gp__now_ns() < deadline)
        ;
    assert_int_equal(atoi(buf), 2);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", (long long)GP_MIGRATION_LOCK_KEY);
    gp_scratch_exec(holder, sql);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);

    size_t n = gp_migration_count();
    for (int i = 0; i < 2; i++) {
        if (m[i].st != GP_OK)
            fprintf(stderr, "migrator %d: %s\n", i, m[i].err.message);
        assert_int_equal(m[i].st, GP_OK);
        assert_true(m[i].rep->waited_for_lock);
    }
    assert_int_equal(m[0].rep->applied + m[1].rep->applied, n);
    assert_true(m[0].rep->applied == 0 || m[1].rep->applied == 0);
    assert_int_equal(atoi(gp_scratch_value(holder, "SELECT count(*) FROM " GP_MIGRATIONS_TABLE, buf, sizeof buf)),
                     (int)n);
    for (int i = 0; i < 2; i++)
        gp_migrate_report_free(m[i].rep);
    PQfinish(holder);
    gp_config_release(&cfg);
    gp_scratch_drop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_migrators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
