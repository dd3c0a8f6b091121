/* Reading a page of the log from PostgreSQL for _scan.c, through libpq on a connection of the
 * scan's own.
 *
 * Why here and not through psycopg: psycopg hands over a COPY one row per call, each call a few
 * microseconds of Python with the GIL held, so reader threads could not overlap; packing a page
 * into one bytea in the query instead costs the server ~4 us per leaf (string_agg of
 * concatenations). Here a page is three `COPY (SELECT …) TO STDOUT (FORMAT BINARY)` — its
 * leaves, its events, the stored nodes it completes — in one read-only REPEATABLE READ
 * transaction (one snapshot, as the packed query had), sent with its BEGIN and COMMIT as one query
 * (one round trip; the server goes from one COPY to the next without waiting for us), and read
 * without the GIL, each event hashed as its row arrives while the server produces the next ones.
 *
 * As in _scan.c, nothing here decides what is valid: a row of an unexpected shape (a NULL, a
 * length that is not the type's) makes the page answer None and the reference verifier replays it.
 */
#include "_scan.h"

#include <libpq-fe.h>
#include <string.h>

static const char CAPSULE[] = "caseledger.scan.pgconn";

static void close_connection(PyObject *capsule) {
    PGconn *conn = PyCapsule_GetPointer(capsule, CAPSULE);
    if (conn) PQfinish(conn);
}

PyObject *postgres_connect(PyObject *self, PyObject *arg) {
    const char *conninfo = PyUnicode_AsUTF8(arg);
    if (!conninfo) return NULL;
    /* the client encoding asked for in the startup packet, not set by a statement afterwards */
    const char *keywords[] = {"dbname", "client_encoding", NULL}, *values[] = {conninfo, "UTF8", NULL};
    PGconn *conn;
    Py_BEGIN_ALLOW_THREADS
    conn = PQconnectdbParams(keywords, values, 1);
    Py_END_ALLOW_THREADS
    if (!conn || PQstatus(conn) != CONNECTION_OK || PQclientEncoding(conn) != pg_char_to_encoding("UTF8")) {
        PyErr_Format(PyExc_RuntimeError, "PostgreSQL: %s", conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(conn, CAPSULE, close_connection);
    if (!capsule) PQfinish(conn);
    return capsule;
}

typedef struct {
    char *data;
    size_t len, cap;
} Buffer;

static int buffer_append(Buffer *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_RawRealloc(b->data, cap);
        if (!grown) return 0;
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 1;
}

/* COPY's binary format: an 11-byte signature, flags and a header extension, then per row a field
 * count and (length, bytes) per field, -1 as the length of a NULL; a field count of -1 ends it. */
typedef struct {
    const unsigned char *p, *end;
} Cursor;

enum { MORE = -2, MALFORMED = -3 };  /* a row cut short by the end of what has arrived; not the format */

static const unsigned char SIGNATURE[11] = "PGCOPY\n\377\r\n";

/* 1 once past the header, MORE, or MALFORMED */
static int copy_header(Cursor *c) {
    if (c->end - c->p < 19) return memcmp(c->p, SIGNATURE, (size_t)(c->end - c->p) < 11 ? (size_t)(c->end - c->p) : 11)
                                   ? MALFORMED : MORE;
    if (memcmp(c->p, SIGNATURE, 11) != 0) return MALFORMED;
    uint64_t extension = get_be(c->p + 15, 4);
    if ((uint64_t)(c->end - c->p - 19) < extension) return MORE;
    c->p += 19 + extension;
    return 1;
}

/* The next row's fields into ``fields``/``lengths`` (length -1: NULL). Returns its field count,
 * -1 at the end of the data, MORE if the row is not all there yet (the cursor stays at its start),
 * MALFORMED if the row has more than ``max`` fields or a length below -1. */
static int copy_row(Cursor *c, int max, const unsigned char **fields, int64_t *lengths) {
    const unsigned char *p = c->p;
    if (c->end - p < 2) return MORE;
    int count = (int16_t)get_be(p, 2);
    p += 2;
    if (count == -1) {
        c->p = p;
        return -1;
    }
    if (count < 0 || count > max) return MALFORMED;
    for (int i = 0; i < count; i++) {
        if (c->end - p < 4) return MORE;
        lengths[i] = (int32_t)get_be(p, 4);
        p += 4;
        fields[i] = p;
        if (lengths[i] < -1) return MALFORMED;
        if (lengths[i] > 0) {
            if (c->end - p < lengths[i]) return MORE;
            p += lengths[i];
        }
    }
    c->p = p;
    return count;
}

static int64_t int8_field(const unsigned char *field, int64_t length, int *ok) {
    if (length != 8) { *ok = 0; return -1; }
    return (int64_t)get_be(field, 8);
}

/* Leaves (leaf_index, notification_id, leaf_hash), as ledger/logpages.py asks for them. Returns 0
 * if there are more than the page's capacity (the LIMIT was not applied: not vouched for). */
static int leaf_row(Page *p, Py_ssize_t capacity, int count, const unsigned char **f, const int64_t *n) {
    if (p->leaves >= capacity) return 0;
    int ok = count == 3;
    int64_t index = ok ? int8_field(f[0], n[0], &ok) : -1, position = ok ? int8_field(f[1], n[1], &ok) : -1;
    if (!ok) p->ok = 0;
    page_leaf(p, index, position, f[2], ok ? n[2] : -1);
    return 1;
}

/* Events (originator_id, originator_version, topic, state, notification_id), hashed as they arrive. */
static void event_row(Page *p, int count, const unsigned char **f, const int64_t *n) {
    int ok = count == 5 && n[0] == 16 && n[2] >= 0 && n[3] >= 0;
    int64_t version = ok ? int8_field(f[1], n[1], &ok) : -1, position = ok ? int8_field(f[4], n[4], &ok) : -1;
    if (ok) page_event(p, f[0], version, f[2], (size_t)n[2], f[3], (size_t)n[3], position);
    else { p->events++; p->ok = 0; }
}

/* One COPY's data as it arrives, a message at a time (PostgreSQL sends a row per message, but the
 * format does not promise it: a row split over messages waits in ``carry``). */
typedef struct {
    int leaves;      /* 1: the leaves COPY, 0: the events COPY */
    int header;      /* the header has been read */
    int ended;       /* the end marker has been read */
    int malformed;   /* not COPY's binary format, or more leaves than asked for */
    Buffer carry;
} Stream;

static void stream_feed(Stream *s, Page *p, Py_ssize_t capacity, const unsigned char *data, size_t len) {
    if (s->malformed) return;
    if (s->carry.len) {
        if (!buffer_append(&s->carry, data, len)) { s->malformed = 1; return; }
        data = (const unsigned char *)s->carry.data, len = s->carry.len;
    }
    Cursor c = {data, data + len};
    const unsigned char *f[5];
    int64_t n[5];
    int count = 0;
    if (!s->header && (count = copy_header(&c)) == 1) s->header = 1;
    while (s->header && !s->ended && (count = copy_row(&c, 5, f, n)) >= 0) {
        if (s->leaves) { if (!leaf_row(p, capacity, count, f, n)) count = MALFORMED; }
        else event_row(p, count, f, n);
        if (count == MALFORMED) break;
    }
    if (count == -1) s->ended = 1;
    if (count == MALFORMED || (s->ended && c.p != c.end)) { s->malformed = 1; return; }
    size_t rest = (size_t)(c.end - c.p);  /* a row (or the header) not all there yet */
    if (s->carry.len) {
        memmove(s->carry.data, c.p, rest);
        s->carry.len = rest;
    }
    else if (rest && !buffer_append(&s->carry, c.p, rest)) s->malformed = 1;
}

/* Sends the page's statements as one query — BEGIN, the three COPYs, COMMIT: one round trip, and
 * the server goes on to the next COPY while this thread still hashes the rows of the one before —
 * and reads the leaves and events into ``p`` (hashing each event as it arrives) and the stored
 * nodes' COPY data into ``nodes``. Returns 1 if everything was read (``*malformed`` then says
 * whether it was COPY's binary format), else 0 with the error in ``error``. Runs without the GIL. */
static int read_page(PGconn *conn, const char *sql, Page *p, Py_ssize_t capacity, Buffer *nodes, int *malformed,
                     char *error, size_t error_size) {
    int copies = 0, failed = !PQsendQuery(conn, sql);
    PGresult *res;
    while (!failed && (res = PQgetResult(conn)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        PQclear(res);
        if (status != PGRES_COPY_OUT) {
            failed = status != PGRES_COMMAND_OK;
            continue;
        }
        Stream s = {.leaves = copies == 0};
        int stage = copies++;
        char *row;
        int n;
        while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
            if (stage < 2) stream_feed(&s, p, capacity, (const unsigned char *)row, (size_t)n);
            else if (stage == 2 && !buffer_append(nodes, row, (size_t)n)) s.malformed = 1;
            PQfreemem(row);
        }
        PyMem_RawFree(s.carry.data);
        if (n == -2) failed = 1;
        if (s.malformed || (stage < 2 && (!s.ended || s.carry.len))) *malformed = 1;
    }
    if (failed || copies != 3) {
        snprintf(error, error_size, "%s", PQerrorMessage(conn)[0] ? PQerrorMessage(conn) : "COMMIT failed");
        while ((res = PQgetResult(conn)) != NULL) PQclear(res);  /* drain, so the connection is idle */
        if (PQtransactionStatus(conn) == PQTRANS_INERROR || PQtransactionStatus(conn) == PQTRANS_INTRANS)
            PQclear(PQexec(conn, "ROLLBACK"));  /* an error skipped the COMMIT */
        return 0;
    }
    return 1;
}

/* The stored interior nodes read with the page, rows (level, idx, hash), as {(level, idx): hash}.
 * A row of another shape is left out: the node then counts as missing, and the page is replayed. */
static PyObject *node_map(const Buffer *nodes) {
    const unsigned char *f[3];
    int64_t n[3];
    int count;
    PyObject *map = PyDict_New();
    Cursor c = {(const unsigned char *)nodes->data, (const unsigned char *)nodes->data + nodes->len};
    if (!map || copy_header(&c) != 1) return map;
    while (map && (count = copy_row(&c, 3, f, n)) >= 0) {
        int ok = count == 3 && n[2] >= 0;
        int64_t level = ok ? int8_field(f[0], n[0], &ok) : -1, index = ok ? int8_field(f[1], n[1], &ok) : -1;
        if (!ok) continue;
        PyObject *key = Py_BuildValue("(LL)", (long long)level, (long long)index);
        PyObject *hash = PyBytes_FromStringAndSize((const char *)f[2], (Py_ssize_t)n[2]);
        if (!key || !hash || PyDict_SetItem(map, key, hash) < 0) Py_CLEAR(map);
        Py_XDECREF(key);
        Py_XDECREF(hash);
    }
    return map;
}

PyObject *postgres_copy_page(PyObject *self, PyObject *args) {
    PyObject *capsule;
    long long first;
    Py_ssize_t page_size;
    const char *leaves_sql, *events_sql, *nodes_sql;
    int hash = 1;
    if (!PyArg_ParseTuple(args, "OLnsss|p", &capsule, &first, &page_size, &leaves_sql, &events_sql, &nodes_sql,
                          &hash))
        return NULL;
    PGconn *conn = PyCapsule_GetPointer(capsule, CAPSULE);
    if (!conn) return NULL;
    if (page_size < 1) {
        PyErr_SetString(PyExc_ValueError, "page_size must be positive");
        return NULL;
    }
    Page p;
    Buffer nodes = {0}, sql = {0};
    PyObject *result = NULL;
    int read = 0, malformed = 0;
    char error[512] = "";
    /* One read-only REPEATABLE READ transaction: the three COPYs see one snapshot. Sorting is off
     * in it (SET LOCAL: for this transaction only): the leaves and the events are asked for in the
     * order of an index (leaf_index, notification_id), and on a log written since the last ANALYZE
     * the planner, guessing a few hundred rows where a page has thousands, sorts the page's
     * events (megabytes) after a bitmap scan instead of reading them in index order: ~30% more
     * server CPU per page. */
    static const char BEGIN[] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSET LOCAL enable_sort = off;\n",
                      COMMIT[] = ";\nCOMMIT";
    if (!page_alloc(&p, first, page_size)) goto done;
    p.read_only = !hash;
    if (!buffer_append(&sql, BEGIN, strlen(BEGIN)) || !buffer_append(&sql, leaves_sql, strlen(leaves_sql)) ||
        !buffer_append(&sql, ";\n", 2) || !buffer_append(&sql, events_sql, strlen(events_sql)) ||
        !buffer_append(&sql, ";\n", 2) || !buffer_append(&sql, nodes_sql, strlen(nodes_sql)) ||
        !buffer_append(&sql, COMMIT, sizeof COMMIT)) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    read = read_page(conn, sql.data, &p, page_size, &nodes, &malformed, error, sizeof error);
    Py_END_ALLOW_THREADS
    if (read && !malformed) {
        PyObject *page = page_result(&p), *stored = page ? node_map(&nodes) : NULL;
        result = stored ? Py_BuildValue("NN", page, stored) : NULL;
        if (!stored) Py_XDECREF(page);
    }
    else if (read) PyErr_SetString(PyExc_RuntimeError, "PostgreSQL sent COPY data that is not COPY's binary format");
    else PyErr_Format(PyExc_RuntimeError, "PostgreSQL: %s", error);
done:
    page_free(&p);
    PyMem_RawFree(nodes.data);
    PyMem_RawFree(sql.data);
    return result;
}
