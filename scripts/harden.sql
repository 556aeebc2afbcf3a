-- scripts/harden.sql — close the side channels that every tenant shares
-- through the one application role, where only a superuser can: run it as
-- a superuser in each GrowPlate database, after `growplate migrate`:
--
--     psql "host=... dbname=<db> user=postgres" -v ON_ERROR_STOP=1 -f scripts/harden.sql
--
-- Idempotent. What it revokes from PUBLIC (so from the application role),
-- and why (README, threat model, "Side channels"):
--   * large objects (lo_* and the server-side import/export): a large
--     object belongs to the role that made it, and every tenant is that role;
--   * pg_notify(): a tenant could post on any channel (the NOTIFY command
--     itself cannot be revoked);
--   * taking advisory locks: any tenant could hold any key and block the
--     others (pg_advisory_unlock_all stays: the library's sweep calls it);
--   * pg_locks, pg_stat_activity and the per-table statistics views: the
--     statement text of other sessions, every session's locks, and
--     platform-wide row counts. pg_class.reltuples stays readable (pg_class
--     cannot be revoked without breaking clients).
-- The database owner (the migrating role) gets back what migrations and
-- `growplate migrate` need: advisory locks. Monitoring belongs to a role
-- with pg_monitor, which keeps every view.
DO $$
DECLARE
    f text;
    owner text := (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database());
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'lo_creat(integer)', 'lo_create(oid)', 'lo_open(oid, integer)', 'lo_close(integer)',
        'loread(integer, integer)', 'lowrite(integer, bytea)', 'lo_lseek(integer, integer, integer)',
        'lo_lseek64(integer, bigint, integer)', 'lo_tell(integer)', 'lo_tell64(integer)',
        'lo_truncate(integer, integer)', 'lo_truncate64(integer, bigint)', 'lo_unlink(oid)',
        'lo_from_bytea(oid, bytea)', 'lo_get(oid)', 'lo_get(oid, bigint, integer)',
        'lo_put(oid, bigint, bytea)', 'lo_import(text)', 'lo_import(text, oid)', 'lo_export(oid, text)',
        'pg_notify(text, text)',
        'pg_advisory_lock(bigint)', 'pg_advisory_lock(integer, integer)',
        'pg_advisory_lock_shared(bigint)', 'pg_advisory_lock_shared(integer, integer)',
        'pg_try_advisory_lock(bigint)', 'pg_try_advisory_lock(integer, integer)',
        'pg_try_advisory_lock_shared(bigint)', 'pg_try_advisory_lock_shared(integer, integer)',
        'pg_advisory_xact_lock(bigint)', 'pg_advisory_xact_lock(integer, integer)',
        'pg_advisory_xact_lock_shared(bigint)', 'pg_advisory_xact_lock_shared(integer, integer)',
        'pg_try_advisory_xact_lock(bigint)', 'pg_try_advisory_xact_lock(integer, integer)',
        'pg_try_advisory_xact_lock_shared(bigint)', 'pg_try_advisory_xact_lock_shared(integer, integer)',
        'pg_advisory_unlock(bigint)', 'pg_advisory_unlock(integer, integer)',
        'pg_advisory_unlock_shared(bigint)', 'pg_advisory_unlock_shared(integer, integer)',
        'pg_lock_status()', 'pg_stat_get_activity(integer)', 'pg_blocking_pids(integer)'
    ] LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION pg_catalog.%s FROM PUBLIC', f);
        IF f LIKE 'pg_advisory%' OR f LIKE 'pg_try_advisory%' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.%s TO %I', f, owner);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY ARRAY[
        'pg_locks', 'pg_stat_activity', 'pg_stat_all_tables', 'pg_stat_user_tables', 'pg_stat_sys_tables',
        'pg_stat_xact_all_tables', 'pg_stat_xact_user_tables', 'pg_statio_all_tables', 'pg_statio_user_tables',
        'pg_stat_all_indexes', 'pg_stat_user_indexes', 'pg_statio_all_indexes', 'pg_statio_user_indexes'
    ] LOOP
        EXECUTE format('REVOKE SELECT ON pg_catalog.%I FROM PUBLIC', f);
    END LOOP;
    -- The owner runs migrations and watches for other migrators.
    EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.pg_lock_status() TO %I', owner);
    EXECUTE format('GRANT SELECT ON pg_catalog.pg_locks TO %I', owner);
END
$$;
