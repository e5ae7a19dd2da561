"""``python -m loadtest SUBCOMMAND``: load generation and benchmarks for Confrère."""

from __future__ import annotations

import argparse
import sys

from . import ack, attachments, crypto


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ack.add_arguments(sub.add_parser("ack", help="send throughput and ack latency, one node"))
    crypto.add_arguments(
        sub.add_parser("crypto", help="end-to-end encryption cost per message, attachments")
    )
    attachments.add_arguments(
        sub.add_parser("attachments", help="upload/download throughput and server memory")
    )
    args = parser.parse_args(argv)
    if args.command == "ack":
        return ack.run(args)
    if args.command == "crypto":
        return crypto.run(args)
    if args.command == "attachments":
        return attachments.run(args)
    return 2


sys.exit(main())
