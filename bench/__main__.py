"""Runs every benchmark suite; each prints its figures beside a baseline measured in the same run."""

import asyncio
import inspect

from bench import agents_backend, attribution, client_tps, gas

for suite in (gas, client_tps, attribution, agents_backend):
    print(f"\n=== {suite.__name__} ===")
    result = suite.main()
    if inspect.iscoroutine(result):
        asyncio.run(result)
