"""A bounded asyncio + httpx load generator for 127.0.0.1 (count- and time-bounded)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx


def no_cookie_jar() -> CookieJar:
    """Many simulated browsers share one client: each request carries its own Cookie header,
    so the client must not keep (and mix in) cookies from responses."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@dataclass
class Request:
    method: str
    path: str
    data: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    count: int
    ok: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def _run(
    base_url: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    time_limit: float,
    ok: Callable[[httpx.Response], bool],
) -> LoadResult:
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    good = 0
    deadline = time.perf_counter() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=120, cookies=no_cookie_jar()
    ) as client:

        async def one(request: Request) -> None:
            nonlocal good
            async with semaphore:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    response = await client.request(
                        request.method, request.path, data=request.data, headers=request.headers
                    )
                except httpx.HTTPError:
                    # A timeout or a dropped connection is a failed request (status 0), not a
                    # crash of the whole run.
                    latencies.append(time.perf_counter() - started)
                    statuses[0] = statuses.get(0, 0) + 1
                    return
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if ok(response):
                    good += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        seconds = time.perf_counter() - started
    return LoadResult(len(requests), good, seconds, latencies, statuses)


def run_load(
    base_url: str,
    requests: Sequence[Request],
    *,
    concurrency: int = 8,
    time_limit: float = 120.0,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code < 400,
) -> LoadResult:
    return asyncio.run(
        _run(base_url, requests, concurrency=concurrency, time_limit=time_limit, ok=ok)
    )
