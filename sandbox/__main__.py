"""Run the sandbox upstream: `python -m sandbox --port 8765 --time-scale 1.0 ...`.

Prints exactly one line, `SANDBOX LISTENING http://HOST:PORT`, once it accepts
connections, then serves until SIGINT or SIGTERM.
"""

import argparse
import os
import signal
import sys
import threading

from sandbox import faults as plans
from sandbox.server import DEFAULT_ASSET_TTL, SandboxServer


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--state", default="./var/sandbox.sqlite3", help="SQLite state file")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies durations")
    parser.add_argument("--rate-limit", type=int, default=3, help="requests per window per key")
    parser.add_argument("--rate-window", type=float, default=60.0, help="window in seconds")
    parser.add_argument("--balance", type=float, default=1500, help="starting credits")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accepted key (repeatable); default: $SANDBOX_API_KEYS or sandbox-key",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", help="fault plan as JSON or @file (default $SANDBOX_FAULTS)")
    parser.add_argument("--quirks", choices=("on", "off"), default="on")
    parser.add_argument("--asset-ttl", type=int, default=DEFAULT_ASSET_TTL, help="seconds")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    keys = args.api_keys
    if not keys:
        from_env = os.environ.get("SANDBOX_API_KEYS", "")
        keys = [k.strip() for k in from_env.split(",") if k.strip()] or ["sandbox-key"]
    fault_text = args.faults if args.faults is not None else os.environ.get("SANDBOX_FAULTS")
    try:
        plan = plans.parse(fault_text) if fault_text else None
    except (plans.BadPlan, OSError) as exc:
        print(f"sandbox: bad fault plan: {exc}", file=sys.stderr)
        return 2

    server = SandboxServer(
        host=args.host,
        port=args.port,
        state_path=args.state,
        time_scale=args.time_scale,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        balance=args.balance,
        api_keys=keys,
        seed=args.seed,
        quirks=args.quirks == "on",
        faults=plan,
        asset_ttl=args.asset_ttl,
    )
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    print(f"SANDBOX LISTENING {server.url}", flush=True)
    while not done.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
