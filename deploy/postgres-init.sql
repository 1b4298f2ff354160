-- PostgreSQL bootstrap for the scaled-out stack of docker-compose.yml.
--
-- Mounted into the official postgres image at /docker-entrypoint-initdb.d/, so it runs ONCE,
-- as the superuser, when the data volume is empty (never again on an existing volume: to
-- change a password later, use ALTER ROLE). The entrypoint runs it with psql, so psql
-- meta-commands work; \getenv (psql >= 15) reads the passwords from the container environment
-- (TEMPORAL_DB_PASSWORD, CAREFLOW_DB_PASSWORD, set in docker-compose.yml) instead of
-- hard-coding them here.
--
-- Creates:
--   role temporal  (LOGIN, CREATEDB) owning the databases temporal and temporal_visibility;
--                  the temporal-admin-tools one-shot loads Temporal's schemas into them.
--   role careflow  (LOGIN) owning the database careflow (the service's config + care-flow store,
--                  DATABASE_URL; its tables come from the service's Alembic migrations).

\set ON_ERROR_STOP on

\getenv temporal_password TEMPORAL_DB_PASSWORD
\getenv careflow_password CAREFLOW_DB_PASSWORD

\if :{?temporal_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'TEMPORAL_DB_PASSWORD is not set in the postgresql container'; END $$;
\endif
\if :{?careflow_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'CAREFLOW_DB_PASSWORD is not set in the postgresql container'; END $$;
\endif

-- Temporal persistence + visibility (SQL plugin postgres12).
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

-- The visibility schema creates btree_gin itself (a trusted extension, so the database owner
-- may); creating it here as the superuser keeps that step independent of trust settings.
\connect temporal_visibility
CREATE EXTENSION IF NOT EXISTS btree_gin;
\connect postgres

-- careflow-webhooks store.
CREATE ROLE careflow LOGIN PASSWORD :'careflow_password';
CREATE DATABASE careflow OWNER careflow;
