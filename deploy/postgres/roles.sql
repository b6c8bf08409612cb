-- Database roles for Campus Facility Monitor (docs/production.md, "Database roles").
--
--   facility_server   owns the server's database (its schema, migrated at start-up);
--                     reads the time-series tables (device history)
--   facility_gateway  owns the time-series database, where gateways write readings
--                     and events; cannot connect to the server's database
--   facility_grafana  reads the time-series tables, nothing else
--
-- Run once as a superuser; safe to run again (what exists is left, grants are renewed):
--   psql -v ON_ERROR_STOP=1 -v server_password=... -v gateway_password=... \
--        -v grafana_password=... -f deploy/postgres/roles.sql
-- Names can be changed with -v server_role=... gateway_role=... grafana_role=...
-- server_db=... ts_db=... (defaults below).
\set ON_ERROR_STOP on
\if :{?server_role} \else \set server_role facility_server \endif
\if :{?gateway_role} \else \set gateway_role facility_gateway \endif
\if :{?grafana_role} \else \set grafana_role facility_grafana \endif
\if :{?server_db} \else \set server_db facility \endif
\if :{?ts_db} \else \set ts_db facility_ts \endif

SELECT format('CREATE ROLE %I LOGIN', :'server_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'server_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'gateway_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'gateway_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'grafana_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'grafana_role') \gexec
-- Passwords only when given (-v x_password=...), so a re-run without them keeps the old.
\if :{?server_password}
SELECT format('ALTER ROLE %I PASSWORD %L', :'server_role', :'server_password') \gexec
\endif
\if :{?gateway_password}
SELECT format('ALTER ROLE %I PASSWORD %L', :'gateway_role', :'gateway_password') \gexec
\endif
\if :{?grafana_password}
SELECT format('ALTER ROLE %I PASSWORD %L', :'grafana_role', :'grafana_password') \gexec
\endif

SELECT format('CREATE DATABASE %I OWNER %I', :'server_db', :'server_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'server_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'ts_db', :'gateway_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'ts_db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'server_db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'ts_db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', :'ts_db', :'server_role', :'grafana_role') \gexec

-- The server's database: its schema belongs to the server alone.
\connect :server_db
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER SCHEMA public OWNER TO %I', :'server_role') \gexec

-- The time-series database: the gateways' tables; the server and Grafana read them.
\connect :ts_db
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER SCHEMA public OWNER TO %I', :'gateway_role') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I, %I', :'server_role', :'grafana_role') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I, %I',
              :'server_role', :'grafana_role') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON TABLES TO %I, %I',
              :'gateway_role', :'server_role', :'grafana_role') \gexec
