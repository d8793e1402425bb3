import asyncio

from bench import gas

asyncio.run(gas.main())
