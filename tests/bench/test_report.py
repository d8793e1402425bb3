"""The benchmark report: ``python -m bench --only gas`` end to end on anvil; the renderers on sections built here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.__main__ import main as bench_main
from bench.report import (
    REPORT_JSON,
    REPORT_MD,
    BarChart,
    Baseline,
    Better,
    Figure,
    Headline,
    LineChart,
    Report,
    Section,
    Series,
    Table,
    chart_file,
    markdown_table,
    render_markdown,
    render_text,
    write_report,
)
from bench.runner import run_suite

ROOT = Path(__file__).parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def gas_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory ``python -m bench --only gas`` wrote, run as ``make bench`` runs it."""
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "gas", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"report: {out / REPORT_MD}" in done.stdout
    return out


@pytest.mark.chain
def test_gas_report_has_the_channel_figure_beside_its_baseline(gas_report: Path) -> None:
    report = Report.model_validate_json((gas_report / REPORT_JSON).read_text())

    (section,) = report.sections
    assert section.suite == "gas"
    assert section.error is None
    assert section.seconds is not None
    (channel,) = (figure for figure in section.figures if figure.headline is Headline.GAS)
    assert channel.unit == "gas"
    assert "EIP-3009" in channel.baseline.name
    assert channel.baseline.value > 0
    assert channel.ratio is not None
    assert channel.ratio < 1
    assert channel.better is Better.LOWER
    assert report.machine.cpus >= 1


@pytest.mark.chain
def test_gas_report_markdown_names_the_figure_and_links_its_chart(gas_report: Path) -> None:
    report = Report.model_validate_json((gas_report / REPORT_JSON).read_text())
    markdown = (gas_report / REPORT_MD).read_text()
    (channel,) = (figure for figure in report.sections[0].figures if figure.headline is Headline.GAS)

    headline = markdown.split("## Headline", 1)[1].split("\n## ", 1)[0]
    assert channel.name in headline
    assert "runtime: not run" in headline
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert images
    for image in images:
        assert (gas_report / image).read_bytes().startswith(PNG_MAGIC)


@pytest.mark.chain
def test_the_json_is_the_models_dump(gas_report: Path) -> None:
    raw = json.loads((gas_report / REPORT_JSON).read_text())
    report = Report.model_validate(raw)

    assert json.loads(report.model_dump_json()) == raw


def _figures() -> list[Figure]:
    baseline = Baseline(name="one transfer each", value=40_000)
    return [
        Figure(name="channel", value=2_000, unit="gas", baseline=baseline, better=Better.LOWER, headline=Headline.GAS),
        Figure(name="epoch | one payer", value=250, unit="gas", baseline=baseline, better=Better.LOWER),
    ]


def _sections() -> list[Section]:
    figures = _figures()
    gas = Section(
        suite="gas",
        title="Gas",
        description="What it measures.",
        figures=figures,
        tables=[Table(title="Gas per action", columns=("action", "gas"), rows=[("stake", 152_523), ("claim", None)])],
        charts=[
            BarChart.of("per-request", "Gas per paid request", figures, log=True),
            LineChart(
                name="line",
                title="A line",
                x_label="tokens",
                y_label="ms",
                x=[1e4, 1e5, 1e6],
                series=[Series(name="ours", values=[1.0, 1.2, 1.5]), Series(name="scan", values=[1.0, 10.0, 100.0])],
                log_x=True,
            ),
        ],
        seconds=1.5,
    )
    broken = run_suite("runtime", lambda: 1 / 0)
    return [gas, broken]


def test_markdown_has_the_headline_the_tables_and_the_failure() -> None:
    report = Report.of(_sections())

    markdown = render_markdown(report)

    headline = "| gas per paid request | 2,000 gas | 40,000 gas | 0.0500x | lower | one transfer each | channel |"
    assert headline in markdown
    assert "| payment path overhead | - | - | - | - | - | runtime: failed |" in markdown
    assert "| attribution latency | - | - | - | - | - | attribution: not run |" in markdown
    assert "| epoch \\| one payer | 250 gas |" in markdown  # a pipe in a cell does not split it
    assert "| action | gas |\n| --- | ---: |\n| stake | 152,523 |\n| claim | - |" in markdown
    assert "![Gas per paid request](gas-per-request.png)" in markdown
    failure = markdown.split("## runtime: did not finish", 1)[1]
    assert "**Failed:**" in failure
    assert "ZeroDivisionError" in failure.split("```text", 1)[1].split("```", 1)[0]


def test_text_prints_the_same_tables() -> None:
    gas, broken = _sections()

    text = render_text(gas)
    failed = render_text(broken)

    assert text.startswith("=== gas: Gas (1.50 s) ===")
    assert "epoch | one payer" in text
    assert "152,523" in text
    assert "FAILED" in failed
    assert "ZeroDivisionError" in failed


def test_write_report_writes_every_chart_and_a_json_that_validates(tmp_path: Path) -> None:
    report = Report.of(_sections())

    path = write_report(report, tmp_path / "out")

    assert path == tmp_path / "out" / REPORT_MD
    gas = report.sections[0]
    for chart in gas.charts:
        assert (path.parent / chart_file(gas, chart)).read_bytes().startswith(PNG_MAGIC)
    assert Report.model_validate_json((path.parent / REPORT_JSON).read_text()) == report


def test_a_zero_baseline_has_no_ratio() -> None:
    figure = Figure(
        name="detection", value=100.0, unit="%", baseline=Baseline(name="honest", value=0), better=Better.HIGHER
    )

    assert figure.ratio is None
    table = markdown_table(Table(title="t", columns=("ratio",), rows=[(figure.ratio,)]))
    assert table.endswith("| - |")


def test_models_reject_what_cannot_be_drawn() -> None:
    figures = _figures()
    other = figures[0].model_copy(update={"unit": "ms"})

    with pytest.raises(ValueError, match="one unit"):
        BarChart.of("mixed", "Mixed", [figures[0], other])
    with pytest.raises(ValidationError, match="2 cells for 1 columns"):
        Table(title="t", columns=("a",), rows=[(1, 2)])
    with pytest.raises(ValidationError, match="1 values for 2"):
        LineChart(name="l", title="l", x_label="x", y_label="y", x=[1, 2], series=[Series(name="s", values=[1])])


async def _section() -> Section:
    return Section(suite="async", title="An async suite")


def test_run_suite_runs_coroutines_and_records_what_a_suite_returns_wrongly() -> None:
    done = run_suite("async", _section)
    wrong = run_suite("wrong", lambda: "not a section")

    assert done.title == "An async suite"
    assert done.error is None
    assert done.seconds is not None
    assert wrong.error is not None
    assert "returned str, not a Section" in wrong.error


def test_only_rejects_an_unknown_suite(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["--only", "gas,nope"])

    assert exit_info.value.code == 2
    assert "unknown suite(s) ['nope']" in capsys.readouterr().err
