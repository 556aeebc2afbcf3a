-- 0001_core_schema — GrowPlate's core schema: tenants and the tenant-owned
-- tables of a restaurant platform, with row-level security.
--
-- Runs as the schema owner (DATABASE_MIGRATION_URL), in one transaction.
-- Never edit this file once applied anywhere: add a new migration instead
-- (`growplate migrate` refuses to run when an applied migration changed).
--
-- Isolation rules, checked by `growplate audit`:
--   * every tenant-owned table has `tenant_id uuid NOT NULL`;
--   * its primary key and every unique and foreign key include tenant_id
--     (composite foreign keys: a row can only point at its own tenant's rows,
--     a unique violation can only be caused by the tenant's own rows, and the
--     rows of one tenant stay together on a sharded deployment);
--   * row-level security is ENABLEd and FORCEd (the owner is subject to it
--     too), with one policy for every command whose USING and WITH CHECK
--     compare tenant_id with the transaction's setting app.tenant_id;
--   * the setting is read in a sub-select, so the planner evaluates it once
--     per statement (an initPlan), not once per row;
--   * fail-closed: NULLIF(current_setting('app.tenant_id', true), '') is NULL
--     when no tenant was ever set (NULL) and when an earlier transaction on
--     the same connection set it ('' afterwards); `tenant_id = NULL` is never
--     true, so nothing is visible or writable, and nothing errors.

-- The application role. Production deployments make their login role a
-- member of growplate_app; the development servers create it as a login
-- role. Created here (NOLOGIN) only when it does not exist yet.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'growplate_app') THEN
        CREATE ROLE growplate_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO growplate_app;

CREATE TYPE tenant_status AS ENUM ('active', 'suspended', 'closed');
CREATE TYPE user_role AS ENUM ('owner', 'manager', 'staff', 'customer');
CREATE TYPE order_status AS ENUM ('pending', 'confirmed', 'preparing', 'ready', 'completed', 'cancelled');

-- ---- tenants ----------------------------------------------------------------
-- One row per restaurant. Not tenant-owned (it has no tenant_id: its id IS
-- the tenant id) but protected the same way: the application sees and
-- updates only the row of the tenant set in app.tenant_id. Creating a tenant
-- and resolving a slug are not tenant-scoped operations: the application
-- does them through the two SECURITY DEFINER functions below, which run as
-- the owner; the owner's own policy (TO the migrating role) lets it see all
-- tenants. The application can neither INSERT nor DELETE tenants directly.
CREATE TABLE tenants (
    id          uuid          NOT NULL DEFAULT gen_random_uuid(),
    slug        text          NOT NULL,
    name        text          NOT NULL,
    status      tenant_status NOT NULL DEFAULT 'active',
    plan        text          NOT NULL DEFAULT 'free',
    settings    jsonb         NOT NULL DEFAULT '{}',
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_slug_check CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT tenants_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT tenants_plan_check CHECK (plan IN ('free', 'pro', 'enterprise')),
    CONSTRAINT tenants_settings_check CHECK (jsonb_typeof(settings) = 'object')
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));
-- The owner (the role running this migration) administers tenants.
CREATE POLICY tenant_admin ON tenants TO CURRENT_USER USING (true) WITH CHECK (true);

-- ---- users ------------------------------------------------------------------
CREATE TABLE users (
    tenant_id     uuid        NOT NULL,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    role          user_role   NOT NULL DEFAULT 'staff',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_email_key UNIQUE (tenant_id, email),
    CONSTRAINT users_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT users_email_check CHECK (email = lower(email) AND email LIKE '_%@_%'),
    CONSTRAINT users_display_name_check CHECK (length(btrim(display_name)) BETWEEN 1 AND 200)
);

-- ---- menu_categories ----------------------------------------------------------
CREATE TABLE menu_categories (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    position    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT menu_categories_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT menu_categories_name_key UNIQUE (tenant_id, name),
    CONSTRAINT menu_categories_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT menu_categories_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200)
);

-- ---- menu_items -----------------------------------------------------------------
CREATE TABLE menu_items (
    tenant_id    uuid        NOT NULL,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    category_id  uuid        NOT NULL,
    name         text        NOT NULL,
    description  text,
    price_cents  integer     NOT NULL,
    calories     integer,
    available    boolean     NOT NULL DEFAULT true,
    tags         text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT menu_items_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT menu_items_name_key UNIQUE (tenant_id, category_id, name),
    CONSTRAINT menu_items_category_fkey FOREIGN KEY (tenant_id, category_id)
        REFERENCES menu_categories (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT menu_items_price_check CHECK (price_cents >= 0),
    CONSTRAINT menu_items_calories_check CHECK (calories IS NULL OR calories >= 0),
    CONSTRAINT menu_items_tags_check CHECK (array_position(tags, NULL) IS NULL),
    CONSTRAINT menu_items_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200)
);
CREATE INDEX menu_items_category_idx ON menu_items (tenant_id, category_id) WHERE available;

-- ---- orders -----------------------------------------------------------------------
-- No sequence-generated order number: a global sequence would let a tenant
-- infer how many orders the others take.
CREATE TABLE orders (
    tenant_id     uuid         NOT NULL,
    id            uuid         NOT NULL DEFAULT gen_random_uuid(),
    customer_id   uuid,
    status        order_status NOT NULL DEFAULT 'pending',
    total_cents   bigint       NOT NULL DEFAULT 0,
    note          text,
    placed_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    CONSTRAINT orders_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT orders_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT orders_customer_fkey FOREIGN KEY (tenant_id, customer_id)
        REFERENCES users (tenant_id, id) ON DELETE RESTRICT,
    CONSTRAINT orders_total_check CHECK (total_cents >= 0)
);
CREATE INDEX orders_status_idx ON orders (tenant_id, status, placed_at);

-- ---- order_items ------------------------------------------------------------------
CREATE TABLE order_items (
    tenant_id         uuid    NOT NULL,
    order_id          uuid    NOT NULL,
    line_no           integer NOT NULL,
    menu_item_id      uuid    NOT NULL,
    quantity          integer NOT NULL,
    unit_price_cents  integer NOT NULL,
    CONSTRAINT order_items_pkey PRIMARY KEY (tenant_id, order_id, line_no),
    CONSTRAINT order_items_order_fkey FOREIGN KEY (tenant_id, order_id)
        REFERENCES orders (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT order_items_menu_item_fkey FOREIGN KEY (tenant_id, menu_item_id)
        REFERENCES menu_items (tenant_id, id) ON DELETE RESTRICT,
    CONSTRAINT order_items_line_no_check CHECK (line_no >= 1),
    CONSTRAINT order_items_quantity_check CHECK (quantity BETWEEN 1 AND 1000),
    CONSTRAINT order_items_price_check CHECK (unit_price_cents >= 0)
);
CREATE INDEX order_items_menu_item_idx ON order_items (tenant_id, menu_item_id);

-- ---- row-level security on every tenant-owned table ---------------------------------
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'menu_categories', 'menu_items', 'orders', 'order_items'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO growplate_app', t);
    END LOOP;
END
$$;

-- The application reads and updates its own tenant row; it never inserts or
-- deletes tenants directly, and never changes a tenant's id.
GRANT SELECT ON tenants TO growplate_app;
GRANT UPDATE (slug, name, status, plan, settings, updated_at) ON tenants TO growplate_app;

-- ---- tenant administration for the application ------------------------------------
-- create_tenant: validated by the table's CHECK constraints; raises
-- unique_violation (23505) when the slug is taken. Runs as the owner with a
-- fixed search_path. Returns the new tenant's id.
CREATE FUNCTION create_tenant(p_slug text, p_name text, p_plan text DEFAULT 'free')
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF p_slug IS NULL OR p_name IS NULL OR p_plan IS NULL THEN
        RAISE EXCEPTION 'create_tenant: slug, name and plan are required'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO tenants (slug, name, plan) VALUES (p_slug, p_name, p_plan) RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

-- tenant_id_for_slug: resolve a request's tenant (a subdomain, a path) to its
-- id before any tenant is set. NULL when there is no such active tenant.
CREATE FUNCTION tenant_id_for_slug(p_slug text)
RETURNS uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT id FROM tenants WHERE slug = p_slug AND status = 'active'
$$;

REVOKE ALL ON FUNCTION create_tenant(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_id_for_slug(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_tenant(text, text, text) TO growplate_app;
GRANT EXECUTE ON FUNCTION tenant_id_for_slug(text) TO growplate_app;
