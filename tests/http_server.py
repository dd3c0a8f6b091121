"""An app served over HTTP on a real server thread, for the tests that need real requests (tests/access,
tests/browser). Their conftests import this; pytest puts this folder (that of the root conftest) on
``sys.path``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server


@contextmanager
def serving(app, join_timeout: float | None = None) -> Iterator[str]:
    """The app on 127.0.0.1 (a port of its own) in a server thread; its base URL. Shut down on exit."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(join_timeout)
