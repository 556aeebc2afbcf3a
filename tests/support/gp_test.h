/* gp_test.h — shared helpers for the cmocka tests. */
#ifndef GP_TEST_H
#define GP_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "growplate/growplate.h"

/* Load the configuration from the environment the test harness set up
 * (eval "$(scripts/services env)"); fails the test on any problem. */
void gp_test_config(gp_config_t *cfg);

/* Skip-free requirement: fail loudly when the private servers' environment
 * is missing, with the command that sets it. */
void gp_test_require_env(void);

/* Run `scripts/services <args>` from the source tree; returns its exit code. */
int gp_test_services(const char *args);

/* Let `ms` of wall time pass (pacing a load, polling for a condition;
 * never in place of a synchronisation). */
void gp_test_pause_ms(int ms);

/* Private servers of a test's own: scripts/services with GP_SERVICES_KEY=key
 * (never the shared ones). gp_test_key_services runs `args`, returns the
 * exit status; gp_test_key_env copies the value of `name` from its `env`
 * output into out, false when absent. */
int gp_test_key_services(const char *key, const char *args);
/* gp_pool_create(cfg), failing the test (with the error printed) when it
 * fails. */
gp_pool_t *gp_test_pool(const gp_config_t *cfg);
/* An integer column (int8, or int4 widened), failing the test when it is
 * neither. */
int64_t gp_test_int(const gp_result_t *r, int row, int col);
bool gp_test_key_env(const char *key, const char *name, char *out, size_t len);

/* Capture log lines: installs a handler that appends every message to a
 * buffer (thread-safe). */
void gp_test_capture_logs(gp_log_level_t min_level);
/* Whether the captured text contains needle, read under the buffer's lock
 * (the only way to read it: another thread may still be logging). */
bool gp_test_logs_contain(const char *needle);
void gp_test_clear_logs(void);

#endif
