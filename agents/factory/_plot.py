"""The training loss curve as a PNG, drawn with Pillow (a line chart needs no plotting library)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["draw_loss_curve"]

_WIDTH, _HEIGHT = 800, 450
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 24, 44, 56  # margins around the plot area, in pixels
_TICKS = 6
_FONT_SIZE = 14
_RAW, _SMOOTHED, _GRID, _INK = (176, 196, 222), (31, 119, 180), (225, 225, 225), (40, 40, 40)


def draw_loss_curve(losses: Sequence[float], path: Path, *, title: str, window: int = 20) -> None:
    """Draws every step's loss (light) and its centred moving average over ``window`` steps (dark) against the
    step, and saves the chart to ``path``."""
    image = Image.new("RGB", (_WIDTH, _HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=_FONT_SIZE)
    steps = max(1, len(losses))
    low, high = _range(losses)
    right, bottom = _WIDTH - _RIGHT, _HEIGHT - _BOTTOM

    def point(step: float, loss: float) -> tuple[float, float]:
        x = _LEFT + (right - _LEFT) * step / steps
        return x, bottom - (bottom - _TOP) * (loss - low) / (high - low)

    for value in _nice_ticks(low, high):
        _, y = point(0, value)
        draw.line([(_LEFT, y), (right, y)], fill=_GRID)
        draw.text((_LEFT - 8, y), f"{value:g}", fill=_INK, font=font, anchor="rm")
    for value in _nice_ticks(0, steps):
        x, _ = point(value, low)
        draw.line([(x, _TOP), (x, bottom)], fill=_GRID)
        draw.text((x, bottom + 8), f"{value:g}", fill=_INK, font=font, anchor="mt")
    draw.rectangle([(_LEFT, _TOP), (right, bottom)], outline=_INK)
    if losses:
        draw.line([point(step + 1, loss) for step, loss in enumerate(losses)], fill=_RAW, width=1)
        smoothed = _moving_average(losses, window)
        draw.line([point(step + 1, loss) for step, loss in enumerate(smoothed)], fill=_SMOOTHED, width=2)
    draw.text((_WIDTH / 2, _TOP / 2), title, fill=_INK, font=font, anchor="mm")
    draw.text(((_LEFT + right) / 2, _HEIGHT - 16), "step", fill=_INK, font=font, anchor="mm")
    draw.text((12, _TOP / 2), "loss (nats/token)", fill=_INK, font=font, anchor="lm")
    temporary = path.with_name(f".{path.name}.tmp")
    image.save(temporary, format="PNG", optimize=True)
    temporary.replace(path)


def _range(losses: Sequence[float]) -> tuple[float, float]:
    """The loss axis: from 0 to the top of the curve, rounded up to a tick."""
    top = max(losses, default=1.0)
    step = _tick_step(0.0, top)
    return 0.0, max(step, math.ceil(top / step) * step)


def _tick_step(low: float, high: float) -> float:
    """A 1, 2 or 5 times a power of ten that cuts ``[low, high]`` into at most ``_TICKS`` intervals."""
    span = max(high - low, 1e-9)
    magnitude = 10.0 ** math.floor(math.log10(span / _TICKS))
    return next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= _TICKS)


def _nice_ticks(low: float, high: float) -> list[float]:
    step = _tick_step(low, high)
    first = math.ceil(low / step)
    return [round(n * step, 10) for n in range(first, math.floor(high / step) + 1)]


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value's centred window (narrower at the ends): a trailing mean would lag behind the curve."""
    half = window // 2
    sums = [0.0]
    for value in values:
        sums.append(sums[-1] + value)
    averages = []
    for n in range(len(values)):
        reach = min(half, n, len(values) - 1 - n)  # symmetric, so the ends are not pulled toward the middle
        low, high = n - reach, n + reach + 1
        averages.append((sums[high] - sums[low]) / (high - low))
    return averages
