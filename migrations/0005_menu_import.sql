-- 0005: bulk menu imports with COPY (gp_copy_in, gp_tenant_tx_copy_in).
-- The server refuses COPY ... FROM into a table with row-level security
-- ("COPY FROM not supported with row-level security"), so imports go
-- through a view whose INSTEAD OF INSERT trigger inserts each row into
-- menu_items for the verified tenant of the transaction: the policies
-- check every row (WITH CHECK) exactly as they check an INSERT, and
-- without a tenant context growplate_tenant() is NULL and the row is
-- refused. The view reads nothing (WHERE false) and runs with the
-- invoker's rights, as the audit requires of views over tenant tables.
CREATE VIEW public.menu_items_import WITH (security_invoker = true) AS
    SELECT category_id, name, description, price_cents, calories, available, tags
    FROM public.menu_items WHERE false;

CREATE FUNCTION public.menu_items_import_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.menu_items (tenant_id, category_id, name, description, price_cents, calories, available, tags)
    VALUES (public.growplate_tenant(), NEW.category_id, NEW.name, NEW.description, NEW.price_cents, NEW.calories,
            coalesce(NEW.available, true), coalesce(NEW.tags, '{}'));
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.menu_items_import_row() FROM PUBLIC;

CREATE TRIGGER menu_items_import_row INSTEAD OF INSERT ON public.menu_items_import
    FOR EACH ROW EXECUTE FUNCTION public.menu_items_import_row();

REVOKE ALL ON public.menu_items_import FROM PUBLIC;
GRANT INSERT ON public.menu_items_import TO growplate_app;
