"""``python -m loadtest.s3_server``: an S3-compatible server (moto) in its own process.

Listens on 127.0.0.1, on a port the OS chooses; prints that port on the first line of
stdout, then serves until its stdin closes (so it never outlives the benchmark that
started it). Needs the ``dev`` extras (``moto[server]``).
"""

from __future__ import annotations

import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
