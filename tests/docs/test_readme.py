"""The README says only what is true: every code block is run or checked by a test, the configuration reference is
the settings models' own fields, and the two commands are what the Makefile and CI run.

The tour itself runs in ``test_tour.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from enum import Enum
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from runtime import AgentSettings
from staking import ChainSettings, DeploymentConfig, DisputeParameters, format_open
from staking.deploy import OPEN_AMOUNT_PARAMETERS
from tests.docs.readme import README, Block, readme_blocks, section
from validator import Tolerances, ValidatorSettings
from validator.config import ModelSettings

ROOT = README.parent
#: What each kind of block is checked by; a block none of these covers is an example no test runs.
COVERED = {"tour": "test_tour.py", "deploy": "test_deploy_example.py", "make": "this module"}


def _disposition(block: Block) -> str | None:
    if block.language == "text" or block.file is not None:
        return "text" if block.language == "text" else "file"
    return next((word for word in block.words if word in COVERED), None)


def test_every_code_block_is_run_or_checked_by_a_test() -> None:
    blocks = readme_blocks()
    assert len(blocks) > 10
    loose = [f"README.md:{block.line} ({block.language})" for block in blocks if _disposition(block) is None]
    assert not loose, f"code blocks no test runs: {loose}; mark them as tests/docs/readme.py says"
    files = [block.file for block in blocks if block.file is not None]
    assert len(files) == len(set(files)), f"two blocks write one file: {files}"


def test_the_two_commands_are_what_the_makefile_and_ci_run() -> None:
    (block,) = [block for block in readme_blocks() if "make" in block.words]
    commands = [line.split("#")[0].split() for line in block.text.splitlines()]
    assert commands == [["make", "demo"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup\n\t\$\(BIN\)/staked demo$", makefile, re.MULTILINE)
    test_targets = re.search(r"^test: (.*)$", makefile, re.MULTILINE)
    assert test_targets is not None
    assert test_targets[1].split() == ["setup", "lint", "forge", "pytest"]
    lint = re.search(r"^lint: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert lint is not None
    assert all(tool in lint[1] for tool in ("ruff check", "ruff format --check", "mypy"))
    assert (ROOT / ".ci/run").read_text().rstrip().endswith("make test")


# -- the configuration reference --------------------------------------------------------------------------------


def settings_table(model: type[BaseModel], env_prefix: str | None) -> str:
    """The README's table of ``model``'s settings: name, default and meaning, from the fields themselves."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for name, info in model.model_fields.items():
        meaning = info.description or ""
        if env_prefix is not None:
            meaning += f" (`{env_prefix}{name.upper()}`)"
        rows.append(f"| `{name}` | {_default(info)} | {meaning} |")
    return "\n".join(rows)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, dict) and not value:
        return "none"
    if isinstance(value, BaseModel) or hasattr(value, "__dataclass_fields__"):
        return "see below"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = value.as_posix()
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def tolerances_table() -> str:
    """The README's table of :class:`validator.Tolerances`, from its fields and the Attributes of its docstring."""
    documented = inspect.getdoc(Tolerances) or ""
    attributes = documented.split("Attributes:\n", 1)[1].split("\n\n", 1)[0]
    meanings = {
        name: " ".join(text.split()).replace("``", "`")
        for name, text in re.findall(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", attributes + "\n", re.MULTILINE | re.DOTALL)
    }
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{f.name}` | `{f.default}` | {meanings[f.name]} |" for f in dataclasses.fields(Tolerances)]
    return "\n".join(rows)


def deployment_table(model: type[BaseModel], prefix: str = "") -> str:
    """The README's table of a ``[deployment]`` table's parameters, amounts of OPEN in OPEN as the file takes them."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for name, info in model.model_fields.items():
        if isinstance(info.default, BaseModel):
            continue
        default = info.get_default()
        shown = f'`"{format_open(default)}"` OPEN' if prefix + name in OPEN_AMOUNT_PARAMETERS else _default(info)
        rows.append(f"| `{name}` | {shown} | {info.description} |")
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("title", "model", "prefix"),
    [("`[deployment]`", DeploymentConfig, ""), ("`[deployment.disputes]`", DisputeParameters, "disputes.")],
)
def test_the_deployment_reference_is_the_deployment_config(title: str, model: type[BaseModel], prefix: str) -> None:
    expected = deployment_table(model, prefix)
    assert expected in section(title), f"README's {title} table should read:\n{expected}"


def test_the_tolerances_reference_is_the_tolerances_class() -> None:
    expected = tolerances_table()
    assert expected in section("`[validator.tolerances]`"), f"README's tolerances table should read:\n{expected}"


@pytest.mark.parametrize(
    ("title", "model", "env_prefix"),
    [
        ("`[chain]`", ChainSettings, "STAKED_"),
        ("`[agent]`", AgentSettings, "STAKED_AGENT_"),
        ("`[validator]`", ValidatorSettings, "STAKED_VALIDATOR_"),
        ('`[validator.models."0x<modelId>"]`', ModelSettings, None),
    ],
)
def test_the_configuration_reference_is_the_settings_models(
    title: str, model: type[BaseModel], env_prefix: str | None
) -> None:
    expected = settings_table(model, env_prefix)
    assert expected in section(title), f"README's {title} table should read:\n{expected}"
