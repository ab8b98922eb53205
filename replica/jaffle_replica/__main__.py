"""`jaffle-api` (or `python -m jaffle_replica`): serve the replica on 127.0.0.1 until Ctrl-C."""

import argparse
import sys
from typing import List, Optional

from .server import serve


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="jaffle-api", description="Serve the local Jaffle Shop API replica.")
    parser.add_argument("--port", type=int, default=8000, metavar="PORT", help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--scale", type=int, default=1, metavar="N", help="multiply orders, items and customers")
    parser.add_argument("--latency-ms", type=int, default=0, metavar="MS", help="added latency per request")
    parser.add_argument("--cpu-per-order-ms", type=float, default=0, metavar="MS",
                        help="CPU-bound mode: busy CPU per order served, one request at a time like the real "
                             "service's single worker (1.3 ~ the real service; default 0: off)")
    args = parser.parse_args(argv)
    if args.scale < 1 or args.latency_ms < 0 or args.cpu_per_order_ms < 0:
        parser.error("--scale must be >= 1, --latency-ms and --cpu-per-order-ms >= 0")
    serve(port=args.port, scale=args.scale, latency_ms=args.latency_ms, cpu_per_order_ms=args.cpu_per_order_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
