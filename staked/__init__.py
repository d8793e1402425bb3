"""The ``staked`` command line: one entry point in front of the staking client, the runtime and the validator."""

__all__: list[str] = []
