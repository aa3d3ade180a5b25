"""The image's health check: the server's `/healthz` (which reads the database too) answers 200.

It asks where `ehdnas serve` listens, from the same variables (`EHDNAS_HOST`, `EHDNAS_PORT`); a server on every
address is asked on loopback. Standard library only: the image has no curl.
"""

import os
import sys
import urllib.request

host = os.environ.get("EHDNAS_HOST") or "127.0.0.1"
host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
url = f"http://{f'[{host}]' if ':' in host else host}:{os.environ.get('EHDNAS_PORT') or 8000}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as answer:
        sys.exit(0 if answer.status == 200 else f"{url}: {answer.status}")
except OSError as err:
    sys.exit(f"{url}: {err}")
