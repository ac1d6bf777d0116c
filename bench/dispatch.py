"""Dispatch overhead: a tiny procedure through the documented protocol vs a bare Litestar handler.

    uv run python bench/dispatch.py [--seconds 5] [--connections 32] [--rounds 3]

Both servers run the same way (uvicorn, one worker) and are loaded by the same generator in the
same run, alternating, so machine noise hits both alike. Target (SPEC §10): ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import statistics

from _apps import PAYLOAD
from _harness import generator_name, load, server

BODY = b'{"echo": {}}'


def _rounds(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import httpx

    checkstack_rps: list[float] = []
    bare_rps: list[float] = []
    with server("_apps:checkstack_app") as ck_url, server("_apps:bare_app") as bare_url:
        # Same answer from both, or the comparison is meaningless.
        ck = httpx.post(
            f"{ck_url}/api/bench/", content=BODY, headers={"content-type": "application/json"}
        )
        bare = httpx.post(f"{bare_url}/api/bench/", content=BODY)
        assert ck.content == bare.content == PAYLOAD, (ck.content, bare.content)
        for _ in range(args.rounds):
            for url, sink in ((bare_url, bare_rps), (ck_url, checkstack_rps)):
                result = load(
                    f"{url}/api/bench/", BODY, connections=args.connections, duration=args.seconds
                )
                assert result.errors == 0, f"{result.errors} failed requests"
                sink.append(result.rps)
    ck_median, bare_median = statistics.median(checkstack_rps), statistics.median(bare_rps)
    print(
        f"load generator: {generator_name()}, {args.connections} connections, "
        f"{args.rounds} x {args.seconds:.0f} s each"
    )
    print(f"bare Litestar handler     : {bare_median:9.0f} req/s  (rounds: {_rounds(bare_rps)})")
    print(
        f"checkstack documented RPC : {ck_median:9.0f} req/s  (rounds: {_rounds(checkstack_rps)})"
    )
    print(f"ratio                     : {ck_median / bare_median:9.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()
