#!/usr/bin/env python3
"""Driver of impls ``python-module`` (--local on, the default: the in-process
tier in front of Redis) and ``python-module-redis-only`` (--local off): the
lupa_core module (bindings-python), installed by bench/run into
target/bench-venv. Sequential cases use the blocking ``Lupa`` client;
warm_c64 runs 64 asyncio tasks on ``AsyncLupa`` (``as_async()``, the same
handle)."""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ports", "python"))

import lupa_core  # noqa: E402

from harness import Unsupported, main, prod_id, stg_id  # noqa: E402
from seed_port import seed_keys  # noqa: E402


class ModuleAdapter:
    def __init__(self, args: Any) -> None:
        options: dict[str, Any] = {"key_prefix": args.prefix, "schema": args.schema}
        if args.local == "off":
            # TODO(issue 6): the core Config gains `local_cache: bool`; once
            # the Python binding takes it as `local_cache=False` this impl runs.
            options["local_cache"] = False
        try:
            self.lupa = lupa_core.Lupa(args.store, args.cache, **options)
        except TypeError as e:
            if "local_cache" in str(e):
                raise Unsupported(
                    "the lupa_core Python binding has no `local_cache` option yet, "
                    "so the in-process tier cannot be turned off"
                ) from e
            raise
        self.alupa = self.lupa.as_async()
        self.prefix = args.prefix

    def resolve_live(self, p: str) -> str:
        return self.lupa.resolve(p, api_key_environment="live").deployment

    async def aresolve_live(self, p: str) -> str:
        return (await self.alupa.resolve(p, api_key_environment="live")).deployment

    def resolve_explicit(self, p: str, d: str) -> str:
        return self.lupa.resolve(p, deployment_id=d, api_key_environment="live").deployment

    def promote(self, p: str, d: str) -> None:
        self.lupa.promote(p, d)

    def cold_prepare(self) -> None:
        # Every library key behind the prefix (including any of its own
        # beyond the seed's names), once; the per-op DEL removes the project's.
        probe = self.lupa.cache_probe()
        if probe is None:
            raise RuntimeError("the handle has no shared cache")
        probe.clear()

    def cold_keys(self, p: str) -> list[str]:
        return [self.prefix + k for k in seed_keys(p, [prod_id(p), stg_id(p)])]

    def close(self) -> None:
        self.lupa.close()


if __name__ == "__main__":
    main(lambda a: "python-module-redis-only" if a.local == "off" else "python-module", ModuleAdapter)
