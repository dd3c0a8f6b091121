"""Build settings that pyproject.toml cannot express: the verifier's C inner loop.

``ledger.integrity._scan`` hashes and checks a page of the transparency log at a time (see the
comment at the top of ledger/integrity/_scan.c). It links OpenSSL's libcrypto (SHA-256) and
SQLite, so building it needs a C compiler and their headers (Debian: libssl-dev libsqlite3-dev).
It is optional: without it ``caseledger verify`` uses the same checks in Python, several times
slower, and ``tests/integrity/test_scan_extension.py`` fails to say it is missing.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ledger.integrity._scan", ["ledger/integrity/_scan.c"],
                             libraries=["crypto", "sqlite3"], extra_compile_args=["-O2"], optional=True)])
