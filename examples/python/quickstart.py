"""The README's example: the blocking client, then the asyncio client."""

from __future__ import annotations

import asyncio

import lupa_core


def main() -> None:
    with lupa_core.Lupa("sqlite::memory:", "memory://") as lupa:
        lupa.create_project("org_1", "Docs", id="abc1234567")
        lupa.create_deployment("abc1234567", "snp2345678", id="def4567890")
        lupa.set_status("def4567890", lupa_core.Status.READY)
        lupa.promote("abc1234567", "def4567890")
        live = lupa.resolve("abc1234567", api_key="lupa_sk_live_0123456789")
        print("live key reaches", live.deployment)
        try:
            lupa.resolve("abc1234567", api_key="lupa_sk_test_0123456789")
        except lupa_core.BadRequestError as e:
            print(e.http_status, e.code, e.message)


async def main_async() -> None:
    async with lupa_core.AsyncLupa("memory://", "memory://") as lupa:
        await lupa.create_project("org_1", "Docs", id="abc1234567")
        await lupa.create_deployment("abc1234567", "snp2345678", id="def4567890")
        await lupa.set_status("def4567890", "ready")
        await lupa.promote("abc1234567", "def4567890")
        r = await lupa.resolve_headers("abc1234567", "Bearer lupa_sk_live_0123456789")
        print("live key reaches", r.deployment, "from the", r.source.value)


if __name__ == "__main__":
    main()
    asyncio.run(main_async())
