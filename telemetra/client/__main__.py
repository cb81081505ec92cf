"""`python -m telemetra.client --config device.toml`: the device client without the server's command line
(what `telemetra device run --config` runs too)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from telemetra.client.config import load_config
from telemetra.client.device import AuthenticationFailed, DeviceClient


def run(config_file: str) -> int:
    """Run the device client of ``config_file`` until SIGTERM or Ctrl-C; the exit status (one line on error)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    path = Path(config_file)
    try:
        config = load_config(path)
        client = DeviceClient(config, base_dir=path.parent)
    except (OSError, ValueError) as exc:  # tomllib's errors are ValueErrors
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: client.stop())
    try:
        client.run()
    except AuthenticationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logging.getLogger("telemetra.client").info(
        "stopped: %d sent, %d refused, %d buffered, %d dropped (outbox full)",
        client.sent,
        client.rejected,
        client.buffered,
        client.dropped,
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m telemetra.client", description="Telemetra's device client.")
    parser.add_argument("--config", required=True, help="The device's TOML file.")
    sys.exit(run(parser.parse_args().config))


if __name__ == "__main__":
    main()
