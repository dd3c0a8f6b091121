"""Build settings that pyproject.toml cannot express: the verifier's C inner loop.

``ledger.integrity._scan`` hashes and checks a page of the transparency log at a time (see the
comments at the top of ledger/integrity/_scan.c and _scan_pg.c). It links OpenSSL's libcrypto
(SHA-256), SQLite and libpq (PostgreSQL pages are read with binary COPY on a connection of its
own), so building it needs a C compiler and their headers (Debian: libssl-dev libsqlite3-dev
libpq-dev). It is optional: without it ``caseledger verify`` uses the same checks in Python,
several times slower, and ``tests/integrity/test_scan_extension.py`` fails to say it is missing.
"""

import subprocess

from setuptools import Extension, setup


def libpq_include_dir() -> list[str]:
    """Where libpq-fe.h lives (Debian puts it under /usr/include/postgresql)."""
    try:
        return [subprocess.run(["pg_config", "--includedir"], capture_output=True, text=True, check=True).stdout.strip()]
    except (OSError, subprocess.CalledProcessError):
        return ["/usr/include/postgresql"]


setup(ext_modules=[Extension("ledger.integrity._scan", ["ledger/integrity/_scan.c", "ledger/integrity/_scan_pg.c"],
                             depends=["ledger/integrity/_scan.h"], include_dirs=libpq_include_dir(),
                             libraries=["crypto", "sqlite3", "pq"], extra_compile_args=["-O2"], optional=True)])
