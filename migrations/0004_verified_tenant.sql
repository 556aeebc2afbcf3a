-- 0004_verified_tenant — a tenant context that SQL on the connection cannot
-- forge.
--
-- Runs as the schema owner (DATABASE_MIGRATION_URL), in one transaction.
-- Never edit this file once applied anywhere: add a new migration instead.
--
-- Until now the policies compared tenant_id with the plain setting
-- app.tenant_id, which any SQL on the connection can set (set_config in a
-- sub-select, SET LOCAL, a DO block): SQL injected into one tenant's call
-- reached every tenant. From here on:
--
--  * The application holds a key (DATABASE_TENANT_KEY). For a tenant T and
--    an expiry E (unix seconds) the library computes the tenant secret
--        S = hex(HMAC-SHA-256(key, 'v1.' || kid || '.' || T || '.' || E))
--    (kid: the key's public id) and sets S, and only S, in the
--    transaction-local setting growplate.tenant_token.
--  * The database stores the key only as its HMAC pads, in
--    growplate_private.tenant_keys, which only the owner can read.
--  * Before the library first uses S on a connection it *publishes* it:
--    growplate.tenant_publish(kid, T, E, S) runs as the owner, recomputes
--    the HMAC with the stored pads and, when it matches, records an anchor
--    (sha256(S), T, E) in growplate_private.tenant_anchors. No function the
--    application may call signs anything: without the key, nobody can make
--    an S that publishes, and an anchor cannot be made any other way.
--  * Every tenant policy compares tenant_id with the tenant of the anchor
--    of the current setting, through the view growplate.tenant_context:
--    an index lookup of sha256(setting), planned into the statement (an
--    initPlan: once per statement, not per row), with no function call
--    that could be replaced and no procedural code on the hot path.
--
-- What SQL on the connection can then do with the setting: set it to S it
-- read with current_setting (its own tenant: it stays itself), to anything
-- else (no anchor: nothing is visible or writable, fail-closed), to the S
-- of another tenant it somehow learnt (valid only until E, and S never
-- appears in the server log, pg_stat_activity or any message: it is a
-- parameter, never a literal). Expiry is compared with now(), the start of
-- the transaction, so a transaction that began in time keeps its tenant.
--
-- HMAC-SHA-256 uses the built-in sha256() (no pgcrypto):
--   HMAC(K, m) = sha256((K0 # opad) || sha256((K0 # ipad) || m)), K0 the
-- key zero-padded to 64 bytes; the table stores K0 # ipad and K0 # opad.
-- `growplate migrate` installs the pads of DATABASE_TENANT_KEY (and of
-- DATABASE_TENANT_KEY_PREVIOUS during a rotation) as parameters, never as
-- literals, and removes every other key with its anchors.

CREATE SCHEMA growplate_private;
REVOKE ALL ON SCHEMA growplate_private FROM PUBLIC;
COMMENT ON SCHEMA growplate_private IS
    'growplate: the tenant keys and anchors; the application role has no access';

CREATE TABLE growplate_private.tenant_keys (
    kid           text        NOT NULL,
    ipad          bytea       NOT NULL,
    opad          bytea       NOT NULL,
    installed_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_keys_pkey PRIMARY KEY (kid),
    CONSTRAINT tenant_keys_kid_check CHECK (kid ~ '^[0-9a-f]{16}$'),
    CONSTRAINT tenant_keys_pads_check CHECK (length(ipad) = 64 AND length(opad) = 64)
);
REVOKE ALL ON growplate_private.tenant_keys FROM PUBLIC;

CREATE TABLE growplate_private.tenant_anchors (
    digest      bytea       NOT NULL,
    tenant      uuid        NOT NULL,
    kid         text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    CONSTRAINT tenant_anchors_pkey PRIMARY KEY (digest),
    CONSTRAINT tenant_anchors_kid_fkey FOREIGN KEY (kid)
        REFERENCES growplate_private.tenant_keys (kid) ON DELETE CASCADE
);
CREATE INDEX tenant_anchors_expires_idx ON growplate_private.tenant_anchors (expires_at);
REVOKE ALL ON growplate_private.tenant_anchors FROM PUBLIC;

CREATE SCHEMA growplate;
REVOKE ALL ON SCHEMA growplate FROM PUBLIC;
GRANT USAGE ON SCHEMA growplate TO growplate_app;
COMMENT ON SCHEMA growplate IS 'growplate: the verified tenant context';

-- The verified tenant of the current transaction: one row, or none. A
-- security barrier, so no condition of the caller's is evaluated before the
-- view's own (a built-in function's error message could otherwise show a
-- row of another tenant's anchor). The digest is a sub-select of its own:
-- computed once per statement, not once per anchor the scan looks at.
CREATE VIEW growplate.tenant_context WITH (security_barrier) AS
    SELECT a.tenant
      FROM growplate_private.tenant_anchors a
     WHERE a.digest = (SELECT pg_catalog.sha256(pg_catalog.textsend(
                           pg_catalog.current_setting('growplate.tenant_token', true))))
       AND a.expires_at > pg_catalog.now();
REVOKE ALL ON growplate.tenant_context FROM PUBLIC;
GRANT SELECT ON growplate.tenant_context TO growplate_app;

-- For the application's own SQL: INSERT ... VALUES (growplate_tenant(), ...).
-- (The policies read the view directly: a function would not be inlined.)
CREATE FUNCTION public.growplate_tenant()
RETURNS uuid
LANGUAGE sql
STABLE
AS $$ SELECT tenant FROM growplate.tenant_context $$;
REVOKE ALL ON FUNCTION public.growplate_tenant() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.growplate_tenant() TO growplate_app;

-- Publish a tenant secret (see above). Raises 28000
-- (invalid_authorization_specification) when the key is not installed, the
-- secret does not verify, or the expiry is over or too far ahead (a day at
-- most); the message never contains the secret. Deletes a few expired
-- anchors on the way, so the table holds about the live ones.
CREATE FUNCTION growplate.tenant_publish(p_kid text, p_tenant uuid, p_expires bigint, p_secret text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k growplate_private.tenant_keys%ROWTYPE;
    mac bytea;
BEGIN
    IF p_kid IS NULL OR p_tenant IS NULL OR p_expires IS NULL OR p_secret IS NULL THEN
        RAISE EXCEPTION 'growplate: tenant_publish needs a key id, a tenant, an expiry and a secret'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    SELECT * INTO k FROM growplate_private.tenant_keys WHERE kid = p_kid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'growplate: tenant key % is not installed in this database', left(p_kid, 16)
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'run `growplate migrate` with the DATABASE_TENANT_KEY this service uses';
    END IF;
    mac := sha256(k.opad || sha256(k.ipad || convert_to(
               'v1.' || p_kid || '.' || p_tenant::text || '.' || p_expires::text, 'UTF8')));
    -- Compared as digests: how long the comparison takes says nothing about
    -- how much of the secret was right.
    IF sha256(convert_to(encode(mac, 'hex'), 'UTF8')) <> sha256(convert_to(p_secret, 'UTF8')) THEN
        RAISE EXCEPTION 'growplate: the tenant secret does not verify with key %', p_kid
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    IF p_expires <= extract(epoch FROM now()) THEN
        RAISE EXCEPTION 'growplate: the tenant secret expired % s before this transaction began',
                extract(epoch FROM now())::bigint - p_expires
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'check that the clocks of the service and of the database agree';
    END IF;
    IF p_expires > extract(epoch FROM now()) + 86400 THEN
        RAISE EXCEPTION 'growplate: the tenant secret expires more than a day from now'
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'check that the clocks of the service and of the database agree; DATABASE_TENANT_TOKEN_TTL is at most an hour';
    END IF;
    INSERT INTO growplate_private.tenant_anchors (digest, tenant, kid, expires_at)
        VALUES (sha256(convert_to(p_secret, 'UTF8')), p_tenant, p_kid, to_timestamp(p_expires))
        ON CONFLICT (digest) DO NOTHING;
    DELETE FROM growplate_private.tenant_anchors
     WHERE ctid IN (SELECT ctid FROM growplate_private.tenant_anchors
                     WHERE expires_at < now() - interval '1 minute' LIMIT 8);
END
$$;
REVOKE ALL ON FUNCTION growplate.tenant_publish(text, uuid, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION growplate.tenant_publish(text, uuid, bigint, text) TO growplate_app;
COMMENT ON FUNCTION growplate.tenant_publish(text, uuid, bigint, text) IS
    'growplate:cross-tenant verifies a tenant secret signed with an installed key and records its anchor; it reads no tenant table';

-- Every tenant policy compares with the verified tenant.
ALTER POLICY tenant_isolation ON public.tenants
    USING (id = (SELECT tenant_context.tenant FROM growplate.tenant_context))
    WITH CHECK (id = (SELECT tenant_context.tenant FROM growplate.tenant_context));
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'menu_categories', 'menu_items', 'orders', 'order_items'] LOOP
        EXECUTE format($p$ALTER POLICY tenant_isolation ON public.%I
            USING (tenant_id = (SELECT tenant_context.tenant FROM growplate.tenant_context))
            WITH CHECK (tenant_id = (SELECT tenant_context.tenant FROM growplate.tenant_context))$p$, t);
    END LOOP;
END
$$;
