/* Reading a page of the log from PostgreSQL for _scan.c, through libpq on a connection of the
 * scan's own.
 *
 * Why here and not through psycopg: psycopg hands over a COPY one row per call, each call a few
 * microseconds of Python with the GIL held, so reader threads could not overlap; packing a page
 * into one bytea in the query instead costs the server ~4 us per leaf (string_agg of
 * concatenations). Here a page is three `COPY (SELECT …) TO STDOUT (FORMAT BINARY)` — its
 * leaves, its events, the stored nodes it completes — in one read-only REPEATABLE READ
 * transaction (one snapshot, as the packed query had), read and hashed without the GIL: the server
 * only runs its send functions, and threads overlap fully.
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
    PGconn *conn;
    Py_BEGIN_ALLOW_THREADS
    conn = PQconnectdb(conninfo);
    Py_END_ALLOW_THREADS
    if (!conn || PQstatus(conn) != CONNECTION_OK || PQsetClientEncoding(conn, "UTF8") != 0) {
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

/* Runs one COPY … TO STDOUT and appends everything it sends to ``out``. */
static int copy_out(PGconn *conn, const char *sql, Buffer *out) {
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COPY_OUT;
    PQclear(res);
    if (!ok) return 0;
    char *row;
    int n;
    while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
        if (out->len + (size_t)n > out->cap) {
            size_t cap = out->cap ? out->cap : 1 << 20;
            while (cap < out->len + (size_t)n) cap *= 2;
            char *grown = PyMem_RawRealloc(out->data, cap);
            if (!grown) { PQfreemem(row); ok = 0; break; }
            out->data = grown, out->cap = cap;
        }
        memcpy(out->data + out->len, row, (size_t)n);
        out->len += (size_t)n;
        PQfreemem(row);
    }
    if (n == -2) ok = 0;
    while ((res = PQgetResult(conn)) != NULL) {  /* drain even after an error, so the connection is idle */
        if (PQresultStatus(res) != PGRES_COMMAND_OK) ok = 0;
        PQclear(res);
    }
    return ok;
}

/* COPY's binary format: an 11-byte signature, flags and a header extension, then per row a field
 * count and (length, bytes) per field, -1 as the length of a NULL; a field count of -1 ends it. */
typedef struct {
    const unsigned char *p, *end;
} Cursor;

static const unsigned char SIGNATURE[11] = "PGCOPY\n\377\r\n";

static int copy_header(Cursor *c) {
    if (c->end - c->p < 19 || memcmp(c->p, SIGNATURE, 11) != 0) return 0;
    uint64_t extension = get_be(c->p + 15, 4);
    c->p += 19;
    if ((uint64_t)(c->end - c->p) < extension) return 0;
    c->p += extension;
    return 1;
}

/* The next row's fields into ``fields``/``lengths`` (length -1: NULL). Returns its field count,
 * -1 at the end of the data, -2 if the data is cut short or the row has more than ``max`` fields. */
static int copy_row(Cursor *c, int max, const unsigned char **fields, int64_t *lengths) {
    if (c->end - c->p < 2) return -2;
    int count = (int16_t)get_be(c->p, 2);
    c->p += 2;
    if (count == -1) return -1;
    if (count < 0 || count > max) return -2;
    for (int i = 0; i < count; i++) {
        if (c->end - c->p < 4) return -2;
        lengths[i] = (int32_t)get_be(c->p, 4);
        c->p += 4;
        fields[i] = c->p;
        if (lengths[i] < -1 || (lengths[i] > 0 && c->end - c->p < lengths[i])) return -2;
        if (lengths[i] > 0) c->p += lengths[i];
    }
    return count;
}

static int64_t int8_field(const unsigned char *field, int64_t length, int *ok) {
    if (length != 8) { *ok = 0; return -1; }
    return (int64_t)get_be(field, 8);
}

/* Leaves (leaf_index, notification_id, leaf_hash) then events (originator_id, originator_version,
 * topic, state, notification_id), as ledger/logpages.py asks for them. Returns 0 if the data is
 * not COPY's binary format (then the page is not vouched for). */
static int parse_page(Page *p, Py_ssize_t capacity, const Buffer *leaves, const Buffer *events) {
    const unsigned char *f[5];
    int64_t n[5];
    int count;
    Cursor c = {(const unsigned char *)leaves->data, (const unsigned char *)leaves->data + leaves->len};
    if (!copy_header(&c)) return 0;
    while ((count = copy_row(&c, 5, f, n)) >= 0) {
        if (p->leaves >= capacity) return 0;  /* more rows than the LIMIT asked for */
        int ok = count == 3;
        int64_t index = ok ? int8_field(f[0], n[0], &ok) : -1, position = ok ? int8_field(f[1], n[1], &ok) : -1;
        if (!ok) p->ok = 0;
        page_leaf(p, index, position, f[2], ok ? n[2] : -1);
    }
    if (count != -1) return 0;
    c = (Cursor){(const unsigned char *)events->data, (const unsigned char *)events->data + events->len};
    if (!copy_header(&c)) return 0;
    while ((count = copy_row(&c, 5, f, n)) >= 0) {
        int ok = count == 5 && n[0] == 16 && n[2] >= 0 && n[3] >= 0;
        int64_t version = ok ? int8_field(f[1], n[1], &ok) : -1, position = ok ? int8_field(f[4], n[4], &ok) : -1;
        if (ok) page_event(p, f[0], version, f[2], (size_t)n[2], f[3], (size_t)n[3], position);
        else { p->events++; p->ok = 0; }
    }
    return count == -1;
}

/* The stored interior nodes read with the page, rows (level, idx, hash), as {(level, idx): hash}.
 * A row of another shape is left out: the node then counts as missing, and the page is replayed. */
static PyObject *node_map(const Buffer *nodes) {
    const unsigned char *f[3];
    int64_t n[3];
    int count;
    PyObject *map = PyDict_New();
    Cursor c = {(const unsigned char *)nodes->data, (const unsigned char *)nodes->data + nodes->len};
    if (!map || !copy_header(&c)) return map;
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
    if (!PyArg_ParseTuple(args, "OLnsss", &capsule, &first, &page_size, &leaves_sql, &events_sql, &nodes_sql))
        return NULL;
    PGconn *conn = PyCapsule_GetPointer(capsule, CAPSULE);
    if (!conn) return NULL;
    if (page_size < 1) {
        PyErr_SetString(PyExc_ValueError, "page_size must be positive");
        return NULL;
    }
    Page p;
    Buffer leaves = {0}, events = {0}, nodes = {0};
    PyObject *result = NULL;
    int read = 0, parsed = 0;
    char error[512] = "";
    if (!page_alloc(&p, first, page_size)) goto done;
    Py_BEGIN_ALLOW_THREADS
    PGresult *res = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    read = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    read = read && copy_out(conn, leaves_sql, &leaves) && copy_out(conn, events_sql, &events) &&
           copy_out(conn, nodes_sql, &nodes);
    if (!read) snprintf(error, sizeof error, "%s", PQerrorMessage(conn));
    /* COMMIT ends the transaction after an error too (as a ROLLBACK), leaving the connection idle */
    res = PQexec(conn, "COMMIT");
    read = read && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (read) {
        parsed = parse_page(&p, page_size, &leaves, &events);
        if (!parsed) p.ok = 0;
    }
    Py_END_ALLOW_THREADS
    if (read && parsed) {
        PyObject *page = page_result(&p), *stored = page ? node_map(&nodes) : NULL;
        result = stored ? Py_BuildValue("NN", page, stored) : NULL;
        if (!stored) Py_XDECREF(page);
    }
    else if (read) PyErr_SetString(PyExc_RuntimeError, "PostgreSQL sent COPY data that is not COPY's binary format");
    else PyErr_Format(PyExc_RuntimeError, "PostgreSQL: %s", error[0] ? error : "COMMIT failed");
done:
    page_free(&p);
    PyMem_RawFree(leaves.data);
    PyMem_RawFree(events.data);
    PyMem_RawFree(nodes.data);
    return result;
}
