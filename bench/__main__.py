"""Runs every benchmark suite; each prints its figures beside a baseline measured in the same run."""

import asyncio
import inspect

from bench import agents_backend, attribution, client_tps, detection, gas, runtime, training, validator

for suite in (gas, client_tps, attribution, agents_backend, runtime, validator, detection, training):
    print(f"\n=== {suite.__name__} ===")
    result = suite.main()
    if inspect.iscoroutine(result):
        asyncio.run(result)
