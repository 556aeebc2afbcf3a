/* gp_test_data.h — fixtures for the data-layer tests: tenants, categories
 * and menu items made through the public data API, and scalar queries run
 * tenant-scoped. Each helper fails the test when its step fails, printing
 * the error. */
#ifndef GP_TEST_DATA_H
#define GP_TEST_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "gp_test.h"

/* A new tenant named after slug (plan free); its id into out. */
void gp_test_data_tenant(gp_pool_t *pool, const char *slug, char out[37]);

/* A category of the tenant; its id into out. */
void gp_test_data_category(gp_pool_t *pool, const char *tenant, const char *name, int32_t position, char out[37]);

/* A menu item (no description, no tags); its id into out. */
void gp_test_data_item(gp_pool_t *pool, const char *tenant, const char *category, const char *name,
                       int32_t price_cents, bool available, char out[37]);

/* The value in row 0, column 0 of a tenant-scoped query with up to one
 * uuid parameter (NULL: none), read as int64 (smallint, integer or bigint:
 * cast a sum of bigints, which is numeric, to bigint); SQL NULL reads 0. */
int64_t gp_test_data_scalar(gp_pool_t *pool, const char *tenant, const char *sql, const char *uuid_param);

#endif
