/* growplate/growplate.h — the umbrella header: includes every public layer.
 *
 * Layers, from the bottom: common, config, pool, query, tenant, cache,
 * health; data (typed access to the core tables) sits on tenant and rows.
 * Dependencies point downward only. */
#ifndef GROWPLATE_H
#define GROWPLATE_H

#include "growplate/common.h"
#include "growplate/config.h"
#include "growplate/pool.h"
#include "growplate/tenant_id.h"
#include "growplate/cache.h"
#include "growplate/health.h"
#include "growplate/query.h"
#include "growplate/types.h"
#include "growplate/tenant.h"
#include "growplate/copy.h"
#include "growplate/listen.h"
#include "growplate/cache_notify.h"
#include "growplate/schema.h"
#include "growplate/rows.h"
#include "growplate/data.h"

#endif
