-- Least-privilege application role for WorkDataHub (AC-1.7.5).
--
-- Run as the admin (the role that runs the migrations and owns the tables), connected
-- to the warehouse database, AFTER `alembic upgrade head`:
--
--   psql "$ADMIN_URL" -v app_role=wdh_app -v app_password="$WDH_APP_PASSWORD" \
--        -f packages/wdh-io/sql/create_app_role.sql
--
-- The same grants from Python: wdh_io.database.create_app_role(admin_url, role, password)
-- (which sends only a SCRAM verifier, never the clear-text password).
-- The application then connects as :app_role; it can read and write rows but cannot
-- create, alter or drop tables. Re-running the script is safe.

\set ON_ERROR_STOP on
BEGIN;

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') AS create_role \gset
\if :create_role
  CREATE ROLE :"app_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
\else
  ALTER ROLE :"app_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
\endif

SELECT current_database() AS db, current_user AS admin \gset
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app_role";  -- upserts stage in temp tables

-- No DDL: nobody but the owner creates objects in the schema (default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";

GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO :"app_role";
-- No DELETE, even if an earlier run (create_app_role(..., allow_delete=True)) granted it.
REVOKE DELETE ON ALL TABLES IN SCHEMA public FROM :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"admin" IN SCHEMA public
  REVOKE DELETE ON TABLES FROM :"app_role";
-- The schema revision is the migrations' business: read-only for the application.
REVOKE INSERT, UPDATE, DELETE ON TABLE public.alembic_version FROM :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
-- Tables that later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE :"admin" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"admin" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

COMMIT;
