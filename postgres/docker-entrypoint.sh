#!/bin/bash
# Entrypoint with the official postgres image's contract, for Debian's postgresql packages:
# on first start (empty PGDATA) run initdb as POSTGRES_USER with POSTGRES_PASSWORD, create
# POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql and *.sh against it; then exec postgres,
# listening on all addresses, scram-sha-256 for host connections, trust on the local socket.
set -Eeuo pipefail

# VAR_FILE names a file holding VAR's value (Docker secrets), as in the official image.
file_env() {
  local var="$1" file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then
    if [ -n "${!var:-}" ]; then echo "error: both $var and $file_var are set" >&2; exit 1; fi
    export "$var"="$(<"${!file_var}")"
    unset "$file_var"
  fi
}

if [ "${1:-}" = "postgres" ] && [ "$(id -u)" = "0" ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  file_env POSTGRES_USER
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_DB
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != "trust" ]; then
    echo "error: POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
         --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  {
    echo "listen_addresses = '*'"
    echo "password_encryption = 'scram-sha-256'"
  } >>"$PGDATA/postgresql.conf"
  {
    echo "local all all trust"
    echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  } >"$PGDATA/pg_hba.conf"

  # A temporary server on the socket only, for initialisation.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ "$POSTGRES_DB" != "postgres" ]; then
    "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "init: running $f"; . "$f" ;;
      *.sql) echo "init: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "init: database $POSTGRES_DB ready"
fi

exec "$@"
