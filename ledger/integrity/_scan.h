/* What _scan.c (hashing, checking a page) shares with _scan_pg.c (reading a page from PostgreSQL). */
#ifndef CASELEDGER_SCAN_H
#define CASELEDGER_SCAN_H

#include <Python.h>
#include <stdint.h>

#define HASH 32

/* One page being checked: the leaves read first, then each event compared with its leaf. */
typedef struct {
    int64_t first;        /* leaf index the page starts at */
    Py_ssize_t leaves;    /* leaf rows read */
    int64_t *positions;   /* notification id of each leaf */
    unsigned char *stored; /* stored leaf hash of each leaf */
    unsigned char *computed; /* leaf hash computed from each event */
    Py_ssize_t events;    /* event rows seen */
    int ok;               /* everything so far pairs up and matches */
    int read_only;        /* rows read but nothing hashed or compared (to time the reading alone) */
} Page;

/* big-endian integer of n bytes (inline: the COPY parser calls it for every field) */
static inline uint64_t get_be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

int page_alloc(Page *p, int64_t first, Py_ssize_t capacity);
void page_free(Page *p);
/* Both may run without the GIL. page_leaf needs room for one more leaf (capacity). */
void page_leaf(Page *p, int64_t index, int64_t position, const void *hash, Py_ssize_t hash_len);
void page_event(Page *p, const unsigned char id[16], int64_t version, const unsigned char *topic,
                size_t topic_len, const unsigned char *state, size_t state_len, int64_t position);
PyObject *page_result(Page *p);

PyObject *postgres_connect(PyObject *self, PyObject *conninfo);
PyObject *postgres_copy_page(PyObject *self, PyObject *args);

#endif
