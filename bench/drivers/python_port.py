#!/usr/bin/env python3
"""Driver of impl ``python-port``: the seed's middleware as ported in
bench/ports/python/seed_port.py (one psycopg ConnectionPool, one redis-py
client, synchronous and sequential). warm_c64 runs 64 threads: the port is
synchronous, as a WSGI worker with threads would run it."""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ports", "python"))

from harness import main, prod_id, stg_id  # noqa: E402
from seed_port import SeedPort, seed_keys  # noqa: E402


class PortAdapter:
    def __init__(self, args: Any) -> None:
        self.port = SeedPort(args.store, args.cache, schema=args.schema)

    @staticmethod
    def _answer(r: dict[str, Any]) -> str:
        if not r["valid"]:
            raise RuntimeError(f"{r['error']['code']}: {r['error']['message']}")
        return r["deploymentId"]

    def resolve_live(self, p: str) -> str:
        # A live API key targets production (seed lines 176-180).
        return self._answer(self.port.resolve_and_validate_deployment(p, None, True, "production"))

    def resolve_explicit(self, p: str, d: str) -> str:
        return self._answer(self.port.resolve_and_validate_deployment(p, d, True, "production"))

    def promote(self, p: str, d: str) -> None:
        self.port.update_deployment_environment(p, d, "production")

    def cold_prepare(self) -> None:
        pass

    def cold_keys(self, p: str) -> list[str]:
        return seed_keys(p, [prod_id(p), stg_id(p)])

    def close(self) -> None:
        self.port.close()


if __name__ == "__main__":
    main("python-port", PortAdapter)
