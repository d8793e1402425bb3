from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from staking import ConfigError, ContractAddresses, Deployment, DeploymentConfig, load_deployment

ADDRESS = "0x" + "12" * 20


def deployment() -> Deployment:
    return Deployment(
        chain_id=31337,
        block=1,
        deployer=ADDRESS,
        contracts=ContractAddresses(open_token=ADDRESS, agent_staking=ADDRESS, payment_channels=ADDRESS),
        parameters=DeploymentConfig(),
    )


def test_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    deployment().save(path)
    assert load_deployment(path) == deployment()


def test_addresses_are_checksummed() -> None:
    assert deployment().deployer == "0x1212121212121212121212121212121212121212"


def test_a_bad_parameter_names_its_field() -> None:
    with pytest.raises(ValidationError, match="unbonding_period"):
        DeploymentConfig(unbonding_period=10)
    with pytest.raises(ValidationError, match="treasury"):
        DeploymentConfig(treasury="0x1234")


def test_missing_or_corrupt_files_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_deployment(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": 0}')
    with pytest.raises(ConfigError, match="chain_id"):
        load_deployment(broken)
