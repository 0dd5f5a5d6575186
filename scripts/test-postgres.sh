# Sourced by scripts/test: starts a throwaway PostgreSQL on a private Unix socket for the Rust
# integration tests (each #[sqlx::test] creates its own database in it), exports DATABASE_URL,
# and stops and deletes it when the calling script exits.

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -x "$pg_bin/initdb" ]] || pg_bin="$(dirname "$(command -v initdb || echo /nonexistent/initdb)")"
[[ -x "$pg_bin/initdb" ]] || die "PostgreSQL's initdb was not found; run scripts/setup"

TEST_PG_DIR="$(mktemp -d /tmp/pipescope-test-pg.XXXXXX)"
chmod 755 "$TEST_PG_DIR"
as_pg=()
if [[ $EUID -eq 0 ]]; then
  # PostgreSQL refuses to run as root.
  chown postgres:postgres "$TEST_PG_DIR"
  as_pg=(runuser -u postgres --)
fi

stop_test_postgres() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$TEST_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$TEST_PG_DIR"
}
trap stop_test_postgres EXIT

log "starting a test PostgreSQL in $TEST_PG_DIR"
"${as_pg[@]}" "$pg_bin/initdb" -D "$TEST_PG_DIR/data" -U postgres --auth=trust -N >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$TEST_PG_DIR/data" -l "$TEST_PG_DIR/log" -w \
  -o "-k $TEST_PG_DIR -c listen_addresses= -c fsync=off -c max_connections=200" start >/dev/null \
  || { cat "$TEST_PG_DIR/log" >&2; die "the test PostgreSQL did not start"; }
export DATABASE_URL="postgres://postgres@localhost/postgres?host=$TEST_PG_DIR"
