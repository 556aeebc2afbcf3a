-- 0003_audit_declarations — the declarations `growplate audit` reads: the
-- shipped SECURITY DEFINER functions that are cross-tenant by design.
--
-- Runs as the schema owner (DATABASE_MIGRATION_URL), in one transaction.
-- Never edit this file once applied anywhere: add a new migration instead
-- (`growplate migrate` refuses to run when an applied migration changed).
--
-- The audit reports (`definer_without_tenant`) every SECURITY DEFINER
-- function the application role may EXECUTE whose body reads a tenant table
-- without current_setting('app.tenant_id') while its owner is not confined
-- to one tenant there: the owner bypasses row-level security, or a policy
-- that applies to it is not the tenant comparison. growplate_owner is such
-- an owner on tenants (its tenant_admin policy is USING (true)), and the two
-- functions of 0001 read tenants before any tenant is set, on purpose:
--   * create_tenant inserts the new tenant's row and returns its id;
--   * tenant_id_for_slug resolves a request's slug to an active tenant's id.
-- A function is declared cross-tenant by a COMMENT containing
-- `growplate:cross-tenant` followed by the reason. Keep the reason honest:
-- it is what a reviewer reads instead of the finding.

COMMENT ON FUNCTION public.create_tenant(text, text, text) IS
    'growplate:cross-tenant creates a tenant, before any tenant is set; it writes only the new row and returns only its id';

COMMENT ON FUNCTION public.tenant_id_for_slug(text) IS
    'growplate:cross-tenant resolves a request''s slug to an active tenant''s id before any tenant is set; it returns only that id';
