/* The database's own insert rate, the limit the gateway's ingest is compared with
 * (benchmarks/load/ingest-vs-limits.sh): rows of ROW_BYTES random bytes under a unique text key,
 * ROWS_PER_COMMIT rows per transaction, one prepared INSERT reused for every row, for SECONDS.
 *   insert_limit sqlite FILE SECONDS ROW_BYTES ROWS_PER_COMMIT
 *       WAL, synchronous=FULL, page_size 16384 (the gateway's settings, store/sqlite_backend.cpp)
 *   insert_limit postgres CONNINFO SECONDS ROW_BYTES ROWS_PER_COMMIT
 *       one connection, synchronous_commit as the server has it; a commit's statements pipelined
 * Prints one line: rows/s. Build: cc -O2 insert_limit.c -lsqlite3 -lpq -I/usr/include/postgresql */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* Random bytes once (payloads are ciphertext), then a counter in the first bytes of each row:
 * the client's own work stays far below the database's. */
static void fill(unsigned char* buf, int n, long row) {
  if (row == 0) {
    unsigned seed = 1;
    for (int i = 0; i < n; i++) buf[i] = (unsigned char)(rand_r(&seed) >> 7);
  }
  memcpy(buf, &row, sizeof row < (size_t)n ? sizeof row : (size_t)n);
}

static void sqlite_check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "sqlite: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

static int run_sqlite(const char* file, double seconds, int row_bytes, int per_commit) {
  sqlite3* db;
  sqlite_check(sqlite3_open(file, &db), db, "open");
  const char* setup =
      "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-32768;"
      "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, payload BLOB NOT NULL);";
  sqlite_check(sqlite3_exec(db, setup, 0, 0, 0), db, "setup");
  sqlite3_stmt* ins;
  sqlite_check(sqlite3_prepare_v2(db, "INSERT INTO t (k, payload) VALUES (?, ?)", -1, &ins, 0), db, "prepare");
  unsigned char* buf = malloc(row_bytes);
  char key[64];
  long rows = 0;
  const double start = now_s();
  double end = start;
  while (end - start < seconds) {
    sqlite_check(sqlite3_exec(db, "BEGIN", 0, 0, 0), db, "begin");
    for (int i = 0; i < per_commit; i++, rows++) {
      fill(buf, row_bytes, rows);
      snprintf(key, sizeof key, "c1:rx:%ld", rows);
      sqlite3_bind_text(ins, 1, key, -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(ins, 2, buf, row_bytes, SQLITE_STATIC);
      sqlite_check(sqlite3_step(ins), db, "insert");
      sqlite3_reset(ins);
    }
    sqlite_check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
    end = now_s();
  }
  printf("%.0f\n", rows / (end - start));
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return 0;
}

static void pg_check(PGresult* r, PGconn* c, const char* what) {
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    fprintf(stderr, "postgres: %s: %s\n", what, PQerrorMessage(c));
    exit(1);
  }
  PQclear(r);
}

static int run_postgres(const char* conninfo, double seconds, int row_bytes, int per_commit) {
  PGconn* c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "postgres: connect: %s\n", PQerrorMessage(c));
    return 1;
  }
  pg_check(PQexec(c, "SET client_min_messages=warning; DROP TABLE IF EXISTS insert_limit;"
                     "CREATE TABLE insert_limit (id BIGSERIAL PRIMARY KEY, k TEXT NOT NULL UNIQUE, payload BYTEA NOT NULL)"),
           c, "setup");
  pg_check(PQprepare(c, "ins", "INSERT INTO insert_limit (k, payload) VALUES ($1, $2)", 2, 0), c, "prepare");
  unsigned char* buf = malloc(row_bytes);
  char key[64];
  long rows = 0;
  const int formats[2] = {0, 1};
  const double start = now_s();
  double end = start;
  /* Pipeline mode (libpq 14+): a commit's statements go out together and their results are read
   * after, so the rate is the server's, not the loopback round trip's per row. */
  if (PQenterPipelineMode(c) != 1) {
    fprintf(stderr, "postgres: pipeline mode: %s\n", PQerrorMessage(c));
    return 1;
  }
  while (end - start < seconds) {
    int sent = 0;
    if (!PQsendQueryParams(c, "BEGIN", 0, 0, 0, 0, 0, 0)) pg_check(0, c, "begin");
    sent++;
    for (int i = 0; i < per_commit; i++, rows++) {
      fill(buf, row_bytes, rows);
      snprintf(key, sizeof key, "c1:rx:%ld", rows);
      const char* values[2] = {key, (const char*)buf};
      const int lengths[2] = {0, row_bytes};
      if (!PQsendQueryPrepared(c, "ins", 2, values, lengths, formats, 0)) pg_check(0, c, "insert");
      sent++;
    }
    if (!PQsendQueryParams(c, "COMMIT", 0, 0, 0, 0, 0, 0)) pg_check(0, c, "commit");
    sent++;
    if (!PQpipelineSync(c)) pg_check(0, c, "sync");
    for (;;) { /* each statement's result, a NULL after each, then the sync's */
      PGresult* r = PQgetResult(c);
      if (r == 0) continue;
      if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        break;
      }
      pg_check(r, c, "pipelined statement");
      sent--;
    }
    if (sent != 0) {
      fprintf(stderr, "postgres: %d statements without a result\n", sent);
      return 1;
    }
    end = now_s();
  }
  printf("%.0f\n", rows / (end - start));
  PQfinish(c);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: insert_limit sqlite|postgres FILE|CONNINFO SECONDS ROW_BYTES ROWS_PER_COMMIT\n");
    return 2;
  }
  const double seconds = atof(argv[3]);
  const int row_bytes = atoi(argv[4]), per_commit = atoi(argv[5]);
  if (strcmp(argv[1], "sqlite") == 0) return run_sqlite(argv[2], seconds, row_bytes, per_commit);
  if (strcmp(argv[1], "postgres") == 0) return run_postgres(argv[2], seconds, row_bytes, per_commit);
  fprintf(stderr, "insert_limit: unknown database %s\n", argv[1]);
  return 2;
}
