#!/bin/sh
# docker-compose: run by the postgres image on its first start (/docker-entrypoint-initdb.d),
# as the superuser of POSTGRES_USER, with the role passwords from the environment.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v server_password="$FACILITY_SERVER_DB_PASSWORD" \
  -v gateway_password="$FACILITY_GATEWAY_DB_PASSWORD" \
  -v grafana_password="$FACILITY_GRAFANA_DB_PASSWORD" \
  -f /facility/roles.sql
