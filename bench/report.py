"""The benchmark report: what every suite returns, and its renderings.

A suite measures and returns a :class:`Section`: its figures, each beside a baseline measured in the same run, the
detailed tables behind them and the charts to draw. ``python -m bench`` gathers the sections into a :class:`Report`,
and :func:`write_report` writes it as ``report.md`` (the six figures of the headline at the top, then a section per
suite), ``report.json`` (the model itself: it validates back into :class:`Report`) and one PNG per chart.
:func:`render_text` prints a section in the terminal with the same tables, so no suite formats its own output.

Example:
    >>> figure = Figure(
    ...     name="gas per paid request, channel",
    ...     value=2_400,
    ...     unit="gas",
    ...     baseline=Baseline(name="one EIP-3009 transfer each", value=36_000),
    ...     better=Better.LOWER,
    ... )
    >>> format_ratio(figure)
    '0.0667x'
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from matplotlib.figure import Figure as PlotFigure
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field, model_validator

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
_REPOSITORY = Path(__file__).parents[1]
_TEXT_WIDTH = 118
_CHART_WIDTH_IN = 7.0
_CHART_DPI = 110
_MARKED_POINTS = 40  # a longer line (a loss curve) is drawn without a marker per point
_NUMERIC = re.compile(r"^[-+]?\d")


class Better(StrEnum):
    """Which way a figure improves: it says whether a ratio below 1 is a gain or a loss."""

    HIGHER = "higher"
    LOWER = "lower"


class Headline(StrEnum):
    """The six figures issue #10 asks for at the top of the report, in its order; a suite marks the figure that
    answers one with :attr:`Figure.headline`."""

    PAYMENT_OVERHEAD = "payment path overhead"
    PAID_RPS = "paid req/s"
    GAS = "gas per paid request"
    ATTRIBUTION_LATENCY = "attribution latency"
    AUDIT_COST = "audit cost"
    CLIENT_TPS = "client tx/s"

    @property
    def suite(self) -> str:
        """The suite that measures it, to tell "failed" from "not run" when it is missing."""
        return _HEADLINE_SUITES[self]


_HEADLINE_SUITES = {
    Headline.PAYMENT_OVERHEAD: "runtime",
    Headline.PAID_RPS: "runtime",
    Headline.GAS: "gas",
    Headline.ATTRIBUTION_LATENCY: "attribution",
    Headline.AUDIT_COST: "validator",
    Headline.CLIENT_TPS: "client_tps",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Baseline(_Model):
    """What a figure is compared with, measured in the same run, in the figure's unit."""

    name: str
    value: float


class Figure(_Model):
    """One measured figure beside its baseline.

    Attributes:
        name: what was measured, specific enough to stand alone in the headline.
        value: the measurement, in ``unit``.
        unit: ``"ms"``, ``"gas"``, ``"req/s"``, ``"%"``...
        baseline: the same measurement of the thing it is compared with.
        better: whether higher or lower values are better.
        headline: the headline figure this one answers, if any.
    """

    name: str
    value: float
    unit: str
    baseline: Baseline
    better: Better
    headline: Headline | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float | None:
        """``value / baseline.value``; None when the baseline is zero (an honest agent's zero challenges)."""
        return self.value / self.baseline.value if self.baseline.value else None


Cell = str | int | float | None


class Table(_Model):
    """A detailed table of a suite; cells keep their numbers (units go in the column names), None shows as "-"."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    @model_validator(mode="after")
    def _rows_fit_columns(self) -> Self:
        for row in self.rows:
            if len(row) != len(self.columns):
                columns = len(self.columns)
                raise ValueError(f"table {self.title!r}: row {row!r} has {len(row)} cells for {columns} columns")
        return self


class Series(_Model):
    """One named sequence of values of a chart: a colour of bars or one line."""

    name: str
    values: tuple[float, ...]


class BarChart(_Model):
    """Horizontal grouped bars, one group per category: typically figures beside their baselines."""

    kind: Literal["bars"] = "bars"
    name: str = Field(pattern=r"^[a-z0-9-]+$", description="the PNG's name within the section")
    title: str
    unit: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    log: bool = False

    @model_validator(mode="after")
    def _series_fit_categories(self) -> Self:
        _check_lengths(self.title, len(self.categories), self.series)
        return self

    @classmethod
    def of(cls, name: str, title: str, figures: Sequence[Figure], *, log: bool = False) -> BarChart:
        """Bars of ``figures`` (one unit) beside their baselines.

        Raises:
            ValueError: the figures do not share one unit.
        """
        units = {figure.unit for figure in figures}
        if len(units) != 1:
            raise ValueError(f"chart {title!r}: figures in one unit only, got {sorted(units)}")
        baselines = {figure.baseline.name for figure in figures}
        return cls(
            name=name,
            title=title,
            unit=units.pop(),
            categories=tuple(figure.name for figure in figures),
            series=(
                Series(name="measured", values=tuple(figure.value for figure in figures)),
                Series(
                    name=baselines.pop() if len(baselines) == 1 else "baseline (same run)",
                    values=tuple(figure.baseline.value for figure in figures),
                ),
            ),
            log=log,
        )


class LineChart(_Model):
    """Lines over a numeric x axis: e.g. attribution latency and linear-scan latency against index size."""

    kind: Literal["line"] = "line"
    name: str = Field(pattern=r"^[a-z0-9-]+$", description="the PNG's name within the section")
    title: str
    x_label: str
    y_label: str
    x: tuple[float, ...]
    series: tuple[Series, ...]
    log_x: bool = False
    log_y: bool = False

    @model_validator(mode="after")
    def _series_fit_x(self) -> Self:
        _check_lengths(self.title, len(self.x), self.series)
        return self


Chart = Annotated[BarChart | LineChart, Field(discriminator="kind")]


def _check_lengths(title: str, expected: int, series: Iterable[Series]) -> None:
    for one in series:
        if len(one.values) != expected:
            raise ValueError(f"chart {title!r}: series {one.name!r} has {len(one.values)} values for {expected}")


class Section(_Model):
    """What one suite measured, or why it could not.

    Attributes:
        suite: the suite's module name in ``bench`` (``"gas"``); charts are written as ``<suite>-<chart>.png``.
        title: one line.
        description: one paragraph: what is measured, how, and against which baseline.
        seconds: the suite's wall time, set by the runner.
        error: the traceback of a suite that raised; it has no figures then.
    """

    suite: str
    title: str
    description: str = ""
    figures: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    seconds: float | None = None
    error: str | None = None


class Machine(_Model):
    """Where the report was measured."""

    cpus: int
    platform: str
    python: str
    commit: str | None = Field(description="git HEAD of the checkout; None outside one")
    dirty: bool = Field(description="whether tracked files differ from that commit")

    @classmethod
    def current(cls) -> Machine:
        return cls(
            cpus=os.cpu_count() or 1,
            platform=platform.platform(),
            python=platform.python_version(),
            commit=_git("rev-parse", "HEAD") or None,
            dirty=bool(_git("status", "--porcelain", "--untracked-files=no")),
        )


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=_REPOSITORY, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


class Report(_Model):
    """One run of the benchmark suites."""

    created: AwareDatetime
    machine: Machine
    sections: tuple[Section, ...]

    @classmethod
    def of(cls, sections: Iterable[Section]) -> Report:
        """The report of ``sections``, measured now on this machine."""
        return cls(created=datetime.now(UTC), machine=Machine.current(), sections=tuple(sections))

    @property
    def failed(self) -> tuple[Section, ...]:
        return tuple(section for section in self.sections if section.error is not None)


# -- formatting shared by the markdown and the terminal ----------------------------------------------------------


def format_number(value: float) -> str:
    """Integers with thousands separators; floats to a precision that suits their size."""
    if isinstance(value, int) or value == 0:
        return f"{value:,.0f}"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:#.3g}"


def format_value(value: float, unit: str) -> str:
    return f"{format_number(value)}{'' if unit == '%' else ' '}{unit}"


def format_ratio(figure: Figure) -> str:
    return "-" if figure.ratio is None else f"{format_number(figure.ratio)}x"


def _figure_cells(figure: Figure) -> tuple[str, str, str, str, str]:
    """Measured, baseline, ratio, which way is better, what the baseline is: numbers first, so that they align."""
    return (
        format_value(figure.value, figure.unit),
        format_value(figure.baseline.value, figure.unit),
        format_ratio(figure),
        figure.better.value,
        figure.baseline.name,
    )


_FIGURE_COLUMNS = ("measured", "baseline", "ratio", "better", "baseline (same run)")


def figures_table(figures: Iterable[Figure]) -> Table:
    """The figures of a section as a table: each value beside its baseline and their ratio."""
    return Table(
        title="Figures (ratio = measured / baseline)",
        columns=("figure", *_FIGURE_COLUMNS),
        rows=tuple((figure.name, *_figure_cells(figure)) for figure in figures),
    )


def headline_table(report: Report) -> Table:
    """The six figures of the headline, each from its suite's section; a missing one says why."""
    found = {figure.headline: figure for section in report.sections for figure in section.figures if figure.headline}
    ran = {section.suite: section for section in report.sections}
    rows: list[tuple[Cell, ...]] = []
    for headline in Headline:
        figure = found.get(headline)
        if figure is not None:
            rows.append((headline.value, *_figure_cells(figure), figure.name))
            continue
        section = ran.get(headline.suite)
        status = "not run" if section is None else "failed" if section.error else "not measured"
        rows.append((headline.value, None, None, None, None, None, f"{headline.suite}: {status}"))
    return Table(title="Headline", columns=("figure", *_FIGURE_COLUMNS, "measured as"), rows=tuple(rows))


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else format_number(value)


def chart_file(section: Section, chart: BarChart | LineChart) -> str:
    """The PNG's file name, beside ``report.md``."""
    return f"{section.suite}-{chart.name}.png"


# -- markdown -----------------------------------------------------------------------------------------------------


def markdown_table(table: Table) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"

    numeric = _numeric_columns(table)
    rule = ["---:" if right else "---" for right in numeric]
    return "\n".join([line(table.columns), line(rule), *(line(_cell(value) for value in row) for row in table.rows)])


def render_markdown(report: Report) -> str:
    """``report.md``: the run's facts, the headline, then every section with its tables and charts."""
    machine = report.machine
    commit = f"commit `{machine.commit[:10]}`" if machine.commit else "no git commit"
    if machine.dirty:
        commit += " with uncommitted changes"
    total = sum(section.seconds or 0.0 for section in report.sections)
    failed = len(report.failed)
    lines = [
        "# Benchmark report",
        "",
        f"{report.created:%Y-%m-%d %H:%M:%S} UTC · {commit} · {machine.platform} · Python {machine.python} · "
        f"{machine.cpus} CPUs · {len(report.sections)} suites in {format_number(total)} s, {failed} failed",
        "",
        "Every figure stands beside a baseline measured in the same run on the same machine; "
        "ratio = measured / baseline.",
        "",
        "## Headline",
        "",
        markdown_table(headline_table(report)),
        "",
        "## Suites",
        "",
        markdown_table(
            Table(
                title="Suites",
                columns=("suite", "title", "seconds", "status"),
                rows=tuple((s.suite, s.title, s.seconds, "failed" if s.error else "ok") for s in report.sections),
            )
        ),
    ]
    for section in report.sections:
        lines += ["", f"## {section.suite}: {section.title}", ""]
        if section.seconds is not None:
            lines += [f"*{format_number(section.seconds)} s*", ""]
        if section.description:
            lines += [section.description, ""]
        if section.error is not None:
            lines += ["**Failed:**", "", "```text", section.error.rstrip(), "```"]
            continue
        tables = (figures_table(section.figures),) if section.figures else ()
        for table in (*tables, *section.tables):
            lines += [f"### {table.title}", "", markdown_table(table), ""]
        for chart in section.charts:
            lines += [f"![{chart.title}]({chart_file(section, chart)})", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- terminal -----------------------------------------------------------------------------------------------------


def _numeric_columns(table: Table) -> list[bool]:
    """Which columns hold only numbers, formatted ones ("19,617 gas", "3/8") and blanks: those align right."""
    columns = [[row[n] for row in table.rows if row[n] is not None] for n in range(len(table.columns))]
    return [bool(cells) and all(_NUMERIC.match(_cell(cell)) for cell in cells) for cells in columns]


def text_table(table: Table, indent: str = "  ") -> str:
    cells = [list(table.columns), *([_cell(value) for value in row] for row in table.rows)]
    widths = [max(len(row[n]) for row in cells) for n in range(len(table.columns))]
    numeric = _numeric_columns(table)

    def line(row: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        )
        return (indent + "  ".join(padded)).rstrip()

    return "\n".join([f"{indent}{table.title}", *(line(row) for row in cells)])


def render_text(section: Section) -> str:
    """A section for the terminal: title, description, figures and tables (charts are in the written report)."""
    took = f" ({format_number(section.seconds)} s)" if section.seconds is not None else ""
    lines = [f"=== {section.suite}: {section.title}{took} ==="]
    if section.description:
        lines.append(textwrap.fill(section.description, _TEXT_WIDTH, initial_indent="  ", subsequent_indent="  "))
    if section.error is not None:
        lines += ["  FAILED:", textwrap.indent(section.error.rstrip(), "    ")]
        return "\n".join(lines)
    tables = (figures_table(section.figures),) if section.figures else ()
    for table in (*tables, *section.tables):
        lines += ["", text_table(table)]
    return "\n".join(lines)


def render_headline_text(report: Report) -> str:
    return text_table(headline_table(report))


# -- charts -------------------------------------------------------------------------------------------------------


def render_chart(chart: BarChart | LineChart, path: Path) -> None:
    """Draws ``chart`` into a PNG at ``path``, with matplotlib's object API (no pyplot, no global state)."""
    figure = _bars(chart) if isinstance(chart, BarChart) else _lines(chart)
    figure.savefig(path, dpi=_CHART_DPI)


def _bars(chart: BarChart) -> PlotFigure:
    groups = len(chart.categories)
    figure = PlotFigure(figsize=(_CHART_WIDTH_IN, 1.6 + 0.3 * groups * len(chart.series)), layout="constrained")
    axes = figure.add_subplot()
    height = 0.8 / len(chart.series)
    for n, series in enumerate(chart.series):
        positions = [group + (n - (len(chart.series) - 1) / 2) * height for group in range(groups)]
        bars = axes.barh(positions, series.values, height=height, label=series.name)
        axes.bar_label(bars, labels=[format_number(value) for value in series.values], padding=2, fontsize=7)
    axes.set_yticks(range(groups), [textwrap.fill(category, 38) for category in chart.categories], fontsize=7)
    axes.invert_yaxis()  # the first category on top, as in the tables
    axes.set_xlabel(chart.unit, fontsize=8)
    if chart.log:
        axes.set_xscale("log")
    axes.margins(x=0.15)
    axes.tick_params(axis="x", labelsize=7)
    axes.set_title(chart.title, fontsize=9)
    figure.legend(loc="outside lower center", ncols=len(chart.series), fontsize=7)
    return figure


def _lines(chart: LineChart) -> PlotFigure:
    figure = PlotFigure(figsize=(_CHART_WIDTH_IN * 0.8, 3.6), layout="constrained")
    axes = figure.add_subplot()
    for series in chart.series:
        axes.plot(chart.x, series.values, marker="o" if len(chart.x) <= _MARKED_POINTS else None, label=series.name)
    if chart.log_x:
        axes.set_xscale("log")
    if chart.log_y:
        axes.set_yscale("log")
    axes.set_xlabel(chart.x_label, fontsize=8)
    axes.set_ylabel(chart.y_label, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(True, which="major", alpha=0.3)
    axes.set_title(chart.title, fontsize=9)
    axes.legend(fontsize=7)
    return figure


def write_report(report: Report, directory: Path) -> Path:
    """Writes ``report.md``, ``report.json`` and the charts' PNGs into ``directory``; returns ``report.md``'s path."""
    directory.mkdir(parents=True, exist_ok=True)
    for section in report.sections:
        for chart in section.charts:
            render_chart(chart, directory / chart_file(section, chart))
    (directory / REPORT_JSON).write_text(report.model_dump_json(indent=2) + "\n")
    markdown = directory / REPORT_MD
    markdown.write_text(render_markdown(report))
    return markdown
