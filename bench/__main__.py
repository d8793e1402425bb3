"""Runs every benchmark suite; each prints its figures beside a baseline measured in the same run."""

import asyncio

from bench import agents_backend, client_tps, gas

for suite in (gas, client_tps, agents_backend):
    print(f"\n=== {suite.__name__} ===")
    asyncio.run(suite.main())
