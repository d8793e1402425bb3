from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from staking import ConfigError, ContractAddresses, Deployment, DeploymentConfig, DisputeParameters, load_deployment

ADDRESS = "0x" + "12" * 20


def deployment() -> Deployment:
    return Deployment(
        chain_id=31337,
        block=1,
        deployer=ADDRESS,
        contracts=ContractAddresses(
            open_token=ADDRESS,
            agent_staking=ADDRESS,
            payment_channels=ADDRESS,
            receipt_registry=ADDRESS,
            dispute_manager=ADDRESS,
            datanet_registry=ADDRESS,
        ),
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
    with pytest.raises(ValidationError, match="quorum_bps"):
        DisputeParameters(quorum_bps=10_001)


def test_unbonding_must_outlast_a_whole_dispute() -> None:
    disputes = DisputeParameters(challenge_window=3 * 86_400, response_window=86_400, voting_period=3 * 86_400)
    with pytest.raises(ValidationError, match="shorter than a dispute"):
        DeploymentConfig(unbonding_period=6 * 86_400, disputes=disputes)
    assert DeploymentConfig(unbonding_period=7 * 86_400, disputes=disputes).disputes == disputes


def test_missing_or_corrupt_files_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_deployment(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": 0}')
    with pytest.raises(ConfigError, match="chain_id"):
        load_deployment(broken)
