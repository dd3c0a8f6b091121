/* The verifier's inner loop in C: read a page of leaves and the events they stand for, check that
 * they pair up, hash every event as its leaf (ledger/integrity/leaf.py) and build the page's subtree.
 *
 * Why C: verifying the whole log is a loop over millions of small rows, and in Python each row
 * costs several microseconds of object handling for one SHA-256 call that OpenSSL does in a
 * fraction of one. Nothing here decides what is valid: it computes exactly what
 * ledger.integrity.fastpath computes (tests compare them), and it never reports a problem itself.
 * When anything in a page is unusual (a missing row, a type or length it does not expect, a hash
 * that differs, a non-ASCII topic), it answers None and the caller replays that page with the
 * auditor-readable reference verifier, which names the problem.
 *
 * SHA-256 is OpenSSL's; no hashing is done here by hand.
 *
 * Rows come either from SQLite (read here through SQLite's C API on a read-only connection of our
 * own) or from PostgreSQL (binary COPY through libpq on a connection of our own: _scan_pg.c),
 * so that no Python object is made per row.
 */
#define PY_SSIZE_T_CLEAN
/* OpenSSL 3 marks its SHA256_Init/Update/Final deprecated in favour of EVP. They are the same
 * implementation (SHA-NI where the CPU has it) without EVP's provider dispatch, which costs
 * about 0.13 us per call — a third of hashing a typical leaf. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "_scan.h"

static const char MAGIC[] = "caseledger-leaf-v1";  /* followed by 0x00: 19 bytes, see leaf.py */
#define MAGIC_LEN 19
#define HEADER_LEN (1 + MAGIC_LEN + 16 + 8 + 4)  /* 0x00 prefix, magic, id, version, topic length */

static int sha256_parts(const void *a, size_t na, const void *b, size_t nb, const void *c, size_t nc,
                        unsigned char *out) {
    SHA256_CTX ctx;
    return SHA256_Init(&ctx) && SHA256_Update(&ctx, a, na) && (nb == 0 || SHA256_Update(&ctx, b, nb)) &&
           (nc == 0 || SHA256_Update(&ctx, c, nc)) && SHA256_Final(out, &ctx);
}

static void put_be(unsigned char *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)(v & 0xff);
}

/* RFC 9162 leaf hash of one event: SHA-256(0x00 || encode_leaf(id, version, topic, state)), the
 * topic already UTF-8. */
static int utf8_leaf_hash(const unsigned char id[16], uint64_t version, const unsigned char *topic, size_t topic_len,
                          const unsigned char *state, size_t state_len, unsigned char *out) {
    unsigned char header[HEADER_LEN], state_prefix[4];
    if (topic_len > 0xffffffffu || state_len > 0xffffffffu) return 0;
    header[0] = 0x00;
    memcpy(header + 1, MAGIC, MAGIC_LEN);  /* copies the terminating NUL as the magic's 0x00 */
    memcpy(header + 1 + MAGIC_LEN, id, 16);
    put_be(header + 1 + MAGIC_LEN + 16, version, 8);
    put_be(header + 1 + MAGIC_LEN + 24, topic_len, 4);
    put_be(state_prefix, state_len, 4);
    SHA256_CTX ctx;
    return SHA256_Init(&ctx) && SHA256_Update(&ctx, header, HEADER_LEN) &&
           (topic_len == 0 || SHA256_Update(&ctx, topic, topic_len)) && SHA256_Update(&ctx, state_prefix, 4) &&
           (state_len == 0 || SHA256_Update(&ctx, state, state_len)) && SHA256_Final(out, &ctx);
}

/* The same for a topic read from the database, which is only trusted to be ASCII: whether other
 * bytes are valid UTF-8 is left to the reference verifier. */
static int leaf_hash(const unsigned char id[16], uint64_t version, const unsigned char *topic, size_t topic_len,
                     const unsigned char *state, size_t state_len, unsigned char *out) {
    for (size_t i = 0; i < topic_len; i++)
        if (topic[i] >= 0x80) return 0;
    return utf8_leaf_hash(id, version, topic, topic_len, state, state_len, out);
}

/* fastpath.leaf_hashes: the leaf hash of each (id as 16 bytes, version, topic, state) event. */
static PyObject *leaf_hashes(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "leaf_hashes takes a sequence of (id, version, topic, state) tuples");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *event = PySequence_Fast_GET_ITEM(seq, i), *id, *version, *topic, *state;
        if (!PyTuple_Check(event) || PyTuple_GET_SIZE(event) != 4) {
            PyErr_SetString(PyExc_TypeError, "leaf_hashes takes (id, version, topic, state) tuples");
            Py_CLEAR(out);
            break;
        }
        id = PyTuple_GET_ITEM(event, 0), version = PyTuple_GET_ITEM(event, 1);
        topic = PyTuple_GET_ITEM(event, 2), state = PyTuple_GET_ITEM(event, 3);
        Py_ssize_t topic_len = 0;
        const char *topic_utf8 = PyUnicode_Check(topic) ? PyUnicode_AsUTF8AndSize(topic, &topic_len) : NULL;
        unsigned long long v = PyLong_Check(version) && !PyBool_Check(version) ? PyLong_AsUnsignedLongLong(version) : 0;
        Py_buffer buffer;
        unsigned char digest[HASH];
        if (!PyErr_Occurred() && (!PyBytes_Check(id) || PyBytes_GET_SIZE(id) != 16 || !topic_utf8 ||
                                  !PyLong_Check(version) || PyBool_Check(version)))
            PyErr_SetString(PyExc_TypeError, "leaf_hashes takes (16-byte id, int version, str topic, bytes state)");
        if (PyErr_Occurred() || PyObject_GetBuffer(state, &buffer, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(out);
            break;
        }
        int ok = utf8_leaf_hash((const unsigned char *)PyBytes_AS_STRING(id), v, (const unsigned char *)topic_utf8,
                                (size_t)topic_len, buffer.buf, (size_t)buffer.len, digest);
        PyBuffer_Release(&buffer);
        PyObject *h = ok ? PyBytes_FromStringAndSize((const char *)digest, HASH) : NULL;
        if (!h) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "topic or state longer than 2**32 - 1 bytes");
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, h);
    }
    Py_DECREF(seq);
    return out;
}

/* One page being checked: see Page in _scan.h. */

int page_alloc(Page *p, int64_t first, Py_ssize_t capacity) {
    memset(p, 0, sizeof *p);
    p->first = first;
    p->ok = 1;
    p->positions = PyMem_Malloc(sizeof(int64_t) * (capacity ? capacity : 1));
    p->stored = PyMem_Malloc(HASH * (capacity ? capacity : 1));
    p->computed = PyMem_Malloc(HASH * (capacity ? capacity : 1));
    if (!p->positions || !p->stored || !p->computed) {
        PyErr_NoMemory();
        return 0;
    }
    return 1;
}

void page_free(Page *p) {
    PyMem_Free(p->positions);
    PyMem_Free(p->stored);
    PyMem_Free(p->computed);
}

void page_leaf(Page *p, int64_t index, int64_t position, const void *hash, Py_ssize_t hash_len) {
    if (index != p->first + p->leaves || hash_len != HASH) p->ok = 0;
    else memcpy(p->stored + HASH * p->leaves, hash, HASH);
    p->positions[p->leaves++] = position;
}

void page_event(Page *p, const unsigned char id[16], int64_t version, const unsigned char *topic,
                       size_t topic_len, const unsigned char *state, size_t state_len, int64_t position) {
    Py_ssize_t i = p->events++;
    if (p->read_only) p->ok = 0;  /* a page not hashed vouches for nothing */
    if (!p->ok) return;
    if (i >= p->leaves || p->positions[i] != position || version < 0 ||
        !leaf_hash(id, (uint64_t)version, topic, topic_len, state, state_len, p->computed + HASH * i) ||
        memcmp(p->computed + HASH * i, p->stored + HASH * i, HASH) != 0)
        p->ok = 0;
}

/* (leaf rows, event rows, notification id of the last leaf, [leaf hashes] or None) */
PyObject *page_result(Page *p) {
    int ok = p->ok && p->events == p->leaves && p->leaves > 0;
    PyObject *hashes = Py_None;
    if (ok) {
        hashes = PyList_New(p->leaves);
        if (!hashes) return NULL;
        for (Py_ssize_t i = 0; i < p->leaves; i++) {
            PyObject *h = PyBytes_FromStringAndSize((const char *)p->computed + HASH * i, HASH);
            if (!h) { Py_DECREF(hashes); return NULL; }
            PyList_SET_ITEM(hashes, i, h);
        }
    } else {
        Py_INCREF(hashes);
    }
    PyObject *last = p->leaves ? PyLong_FromLongLong(p->positions[p->leaves - 1]) : Py_NewRef(Py_None);
    return Py_BuildValue("nnNN", p->leaves, p->events, last, hashes);
}

/* ---- SQLite ------------------------------------------------------------------------------- */

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_hex_id(const unsigned char *text, int len, unsigned char out[16]) {
    if (len != 32) return 0;
    for (int i = 0; i < 16; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}

/* Reads the leaves then the events of one page without the GIL; on an SQLite error returns 0 with
 * its message in ``error``. */
static int sqlite_read(sqlite3 *db, Page *p, const char *leaf_sql, Py_ssize_t page_size, const char *event_sql,
                       char *error, size_t error_size) {
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(db, leaf_sql, -1, &st, NULL) != SQLITE_OK) goto fail;
    sqlite3_bind_int64(st, 1, p->first);
    sqlite3_bind_int64(st, 2, page_size);
    while (p->leaves < page_size && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
            sqlite3_column_type(st, 2) != SQLITE_BLOB)
            p->ok = 0;
        page_leaf(p, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                  sqlite3_column_bytes(st, 2));
    }
    if (p->leaves < page_size && rc != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    /* the events after leaf first - 1's position, up to leaf first + page_size - 1's if it exists
     * (ledger/logpages.py, PAGE_EVENTS) */
    if (sqlite3_prepare_v2(db, event_sql, -1, &st, NULL) != SQLITE_OK) goto fail;
    sqlite3_bind_int64(st, 1, p->first - 1);
    sqlite3_bind_int64(st, 2, p->first == 0 ? 0 : INT64_MAX);  /* no leaf first - 1: nothing, or all from the start */
    sqlite3_bind_int64(st, 3, p->first + page_size - 1);
    unsigned char id[16];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* types first: asking SQLite for a value converts it */
        if (sqlite3_column_type(st, 0) != SQLITE_TEXT || sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
            sqlite3_column_type(st, 2) != SQLITE_TEXT || sqlite3_column_type(st, 3) != SQLITE_BLOB ||
            sqlite3_column_type(st, 4) != SQLITE_INTEGER ||
            !parse_hex_id(sqlite3_column_text(st, 0), sqlite3_column_bytes(st, 0), id)) {
            p->events++;
            p->ok = 0;
            continue;
        }
        const unsigned char *topic = sqlite3_column_text(st, 2);
        size_t topic_len = (size_t)sqlite3_column_bytes(st, 2);
        const unsigned char *state = sqlite3_column_blob(st, 3);
        size_t state_len = (size_t)sqlite3_column_bytes(st, 3);
        page_event(p, id, sqlite3_column_int64(st, 1), topic, topic_len, state, state_len, sqlite3_column_int64(st, 4));
    }
    if (rc != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    return 1;
fail:
    snprintf(error, error_size, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return 0;
}

static PyObject *sqlite_page(PyObject *self, PyObject *args) {
    const char *path, *leaf_sql, *event_sql;
    long long first;
    Py_ssize_t page_size;
    int hash = 1;
    if (!PyArg_ParseTuple(args, "sLnss|p", &path, &first, &page_size, &leaf_sql, &event_sql, &hash)) return NULL;
    if (page_size < 1) {
        PyErr_SetString(PyExc_ValueError, "page_size must be positive");
        return NULL;
    }
    Page p;
    if (!page_alloc(&p, first, page_size)) { page_free(&p); return NULL; }
    p.read_only = !hash;
    sqlite3 *db = NULL;
    char error[512] = "";
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_busy_timeout(db, 10000);
        /* map the file instead of copying every page through read(): a full scan reads it all */
        sqlite3_exec(db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
        /* one read transaction for both queries, so the leaves and the events are one snapshot */
        ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite_read(db, &p, leaf_sql, page_size, event_sql, error, sizeof error);
    }
    if (!ok && !error[0]) snprintf(error, sizeof error, "%s", db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (ok) result = page_result(&p);
    else PyErr_Format(PyExc_RuntimeError, "SQLite (%s): %s", path, error);
    page_free(&p);
    return result;
}

/* ---- PostgreSQL: see _scan_pg.c ------------------------------------------------------------ */

/* ---- the tree over a page ---------------------------------------------------------------- */

/* The hashes of an aligned run of n leaf hashes and of every perfect subtree over it, a level at
 * a time: level 0 is the leaves, level L + 1 pairs up level L (an odd last one has no partner), so
 * level L holds n >> L hashes from hash offset ``starts[L]``. Returns the number of levels (at most
 * 64), or -1 with a Python error set. The hashing runs without the GIL. */
static int build_tree(PyObject *seq, unsigned char **tree, Py_ssize_t starts[64]) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *tree = PyMem_Malloc(HASH * 2 * (n ? n : 1));
    if (!*tree) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != HASH) {
            PyErr_SetString(PyExc_ValueError, "a tree is built over 32-byte hashes");
            return -1;
        }
        memcpy(*tree + HASH * i, PyBytes_AS_STRING(item), HASH);
    }
    int levels = 1, ok = 1;
    starts[0] = 0;
    unsigned char *t = *tree, node[1 + 2 * HASH] = {0x01};  /* RFC 9162: 0x01 || left || right */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t size = n; size > 1 && ok; size /= 2, levels++) {
        const unsigned char *below = t + HASH * starts[levels - 1];
        unsigned char *row = t + HASH * (starts[levels] = starts[levels - 1] + size);
        for (Py_ssize_t j = 0; j < size / 2 && ok; j++) {
            memcpy(node + 1, below + HASH * 2 * j, 2 * HASH);  /* one update of 65 bytes: ~15% less than three */
            ok = sha256_parts(node, sizeof node, NULL, 0, NULL, 0, row + HASH * j);
        }
    }
    Py_END_ALLOW_THREADS
    if (!ok) { PyErr_SetString(PyExc_RuntimeError, "OpenSSL SHA-256 failed"); return -1; }
    return levels;
}

/* fastpath.tree_levels: every level of build_tree as lists of hashes. */
static PyObject *tree_levels(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "tree_levels takes a sequence of 32-byte hashes");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), starts[64];
    unsigned char *tree = NULL;
    int count = build_tree(seq, &tree, starts);
    PyObject *levels = count < 0 ? NULL : PyList_New(count);
    for (int level = 0; levels && level < count; level++) {
        PyObject *row = PyList_New(n >> level);
        if (!row) { Py_CLEAR(levels); break; }
        PyList_SET_ITEM(levels, level, row);
        for (Py_ssize_t j = 0; j < n >> level; j++) {
            PyObject *node = PyBytes_FromStringAndSize((const char *)tree + HASH * (starts[level] + j), HASH);
            if (!node) { Py_CLEAR(levels); break; }
            PyList_SET_ITEM(row, j, node);
        }
    }
    PyMem_Free(tree);
    Py_DECREF(seq);
    return levels;
}

/* Is node (level, index) stored with exactly this hash? ``stored.get((level, index)) == hash``, as
 * fastpath.page_edges_python compares; -1 on a Python error. */
static int stored_equal(PyObject *stored, int level, Py_ssize_t index, const unsigned char *hash) {
    PyObject *key = Py_BuildValue("(in)", level, index), *value = NULL;
    if (!key) return -1;
    if (PyDict_CheckExact(stored)) value = Py_XNewRef(PyDict_GetItemWithError(stored, key));
    else value = PyObject_CallMethod(stored, "get", "O", key);
    Py_DECREF(key);
    if (!value) return PyErr_Occurred() ? -1 : 0;
    int equal;
    if (PyBytes_CheckExact(value))
        equal = PyBytes_GET_SIZE(value) == HASH && memcmp(PyBytes_AS_STRING(value), hash, HASH) == 0;
    else {
        PyObject *mine = PyBytes_FromStringAndSize((const char *)hash, HASH);
        equal = mine ? PyObject_RichCompareBool(value, mine, Py_EQ) : -1;
        Py_XDECREF(mine);
    }
    Py_DECREF(value);
    return equal;
}

/* fastpath.page_edges: builds the tree over a page's leaf hashes without making a Python object per
 * node, checks it against the stored nodes, and answers only the subtrees the summary keeps. */
static PyObject *page_edges(PyObject *self, PyObject *args) {
    long long first;
    PyObject *hashes, *stored, *counts, *seq, *wanted = NULL, *edges = NULL;
    int min_level;
    if (!PyArg_ParseTuple(args, "LOOOi", &first, &hashes, &stored, &counts, &min_level)) return NULL;
    if (first < 0 || min_level < 0) {
        PyErr_SetString(PyExc_ValueError, "first and min_level are not negative");
        return NULL;
    }
    if (!(seq = PySequence_Fast(hashes, "page_edges takes a sequence of 32-byte hashes"))) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), starts[64];
    unsigned char *tree = NULL;
    int levels = build_tree(seq, &tree, starts);
    if (levels < 0 || !(wanted = PySequence_Fast(counts, "page_edges takes a sequence of leaf counts"))) goto done;
    for (int level = min_level; level < levels; level++)
        for (Py_ssize_t j = 0; j < n >> level; j++) {
            int equal = stored_equal(stored, level, (Py_ssize_t)(first >> level) + j,
                                     tree + HASH * (starts[level] + j));
            if (equal <= 0) {
                if (equal == 0) edges = Py_NewRef(Py_None);
                goto done;
            }
        }
    if (!(edges = PyList_New(PySequence_Fast_GET_SIZE(wanted)))) goto done;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(wanted); k++) {
        Py_ssize_t count = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(wanted, k)), offset = 0;
        PyObject *edge = count == -1 && PyErr_Occurred() ? NULL : PyList_New(0);
        if (edge && (count < 0 || count > n)) {
            PyErr_SetString(PyExc_ValueError, "a count of leaves beyond the page");
            Py_CLEAR(edge);
        }
        for (int level = 63; edge && level >= 0; level--) {  /* as fastpath._edge */
            if (!(count >> level & 1)) continue;
            PyObject *node = PyBytes_FromStringAndSize((const char *)tree + HASH * (starts[level] + (offset >> level)),
                                                       HASH);
            if (!node || PyList_Append(edge, node) < 0) Py_CLEAR(edge);
            Py_XDECREF(node);
            offset += (Py_ssize_t)1 << level;
        }
        if (!edge) { Py_CLEAR(edges); goto done; }
        PyList_SET_ITEM(edges, k, edge);
    }
done:
    PyMem_Free(tree);
    Py_XDECREF(wanted);
    Py_DECREF(seq);
    return edges;
}

static PyMethodDef methods[] = {
    {"sqlite_page", sqlite_page, METH_VARARGS,
     "sqlite_page(path, first, page_size, leaf_sql, event_sql, hash=True) -> "
     "(leaves, events, last position, [leaf hashes] or None); hash=False only reads the rows (benchmarks)"},
    {"postgres_connect", postgres_connect, METH_O,
     "postgres_connect(conninfo) -> a libpq connection of the scan's own (closed when dropped)"},
    {"postgres_copy_page", postgres_copy_page, METH_VARARGS,
     "postgres_copy_page(connection, first, page_size, leaves_copy_sql, events_copy_sql, nodes_copy_sql, "
     "hash=True) -> ((leaves, events, last position, [leaf hashes] or None), {(level, idx): stored node hash}); "
     "hash=False only reads the rows (benchmarks)"},
    {"tree_levels", tree_levels, METH_O, "tree_levels(hashes) -> [[level 0], [level 1], ...]"},
    {"page_edges", page_edges, METH_VARARGS,
     "page_edges(first, hashes, stored_nodes, counts, min_level) -> [subtrees making up each count] or None"},
    {"leaf_hashes", leaf_hashes, METH_O, "leaf_hashes([(id, version, topic, state), ...]) -> [leaf hash, ...]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
