-- 0002_no_temporary — the application role may not create temporary objects.
--
-- pg_temp is searched before every other schema for relations, types and
-- functions, so a temporary table or function created by SQL on a pooled
-- connection could shadow the real ones for the next caller of that
-- connection. The application needs no temporary objects: TEMPORARY is
-- revoked from it and from PUBLIC on this database (a no-op where it was
-- never granted). `growplate audit` reports it (`temporary_granted`) if an
-- operator grants it again.
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, growplate_app', current_database());
END
$$;
