"""Value labels beside horizontal bars, placed without overlap from matplotlib's own text extents.

Each label has options (an anchor in data x, the side of the anchor the text goes to, a data range the
text must stay in); it takes the first option that stays in its range and in the axes and overlaps no
label placed before it in its row. When a label fits nowhere the x-limits are widened and the layout is
redone, so a narrow window's labels go outside its bar and never run into each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.text import Annotation

MARGIN = 3.0  # pixels kept free around each label


@dataclass
class Option:
    """Anchor at data x (None: the right edge of the axes); side "left": the text ends `offset` points
    left of it, "right": it starts there. The text must stay within data [lo, hi] (None: the axes)."""

    x: float | None
    side: str
    lo: float | None = None
    hi: float | None = None
    offset: float = 4.0


@dataclass
class Label:
    """An annotation (text at data y = its row) and its placement options, best first."""

    text: Annotation
    options: list[Option] = field(default_factory=list)


def place_labels(fig, ax, rows: list[list[Label]], xlim: tuple[float, float],
                 rounds: int = 10) -> tuple[float, float]:
    """Place every label (see the module docstring); returns the x-limits used (data units)."""
    left, right = xlim
    for _ in range(rounds):
        ax.set_xlim(left, right)
        fig.canvas.draw()  # runs the layout: the axes box and text extents are final
        renderer = fig.canvas.get_renderer()
        frame = ax.get_window_extent(renderer)
        per_pixel = (right - left) / frame.width
        need_left = need_right = 0.0
        for row in rows:
            placed: list[tuple[float, float]] = []
            for label in row:
                width = label.text.get_window_extent(renderer).width + 2 * MARGIN
                boxes = [(_box(ax, fig, frame, option, width), option) for option in label.options]
                for box, option in boxes:
                    if _fits(ax, frame, box, option, placed):
                        break
                else:  # the first option that only the axes' limits stop, else the first one
                    fixable = (bo for bo in boxes if _fits(ax, frame, *bo, placed, bounds=False))
                    box, option = next(fixable, boxes[0])
                    short_left = frame.x0 - box[0]
                    if short_left > 0:
                        need_left = max(need_left, short_left)
                    else:
                        short = max(box[1] - frame.x1, _range_shortfall(ax, box, option),
                                    max((b[1] - box[0] for b in placed if _overlap(box, b)), default=0.0))
                        need_right = max(need_right, short)
                _apply(label, option)
                placed.append(box)
        if need_left <= 0 and need_right <= 0:
            break
        left -= 1.2 * need_left * per_pixel + (0.02 * (right - left) if need_left > 0 else 0.0)
        right += 1.2 * need_right * per_pixel + (0.02 * (right - left) if need_right > 0 else 0.0)
    return left, right


def _box(ax, fig, frame, option: Option, width: float) -> tuple[float, float]:
    """The pixel x-range a text of `width` pixels takes at this option."""
    anchor = frame.x1 if option.x is None else ax.transData.transform((option.x, 0.0))[0]
    shift = option.offset * fig.dpi / 72.0
    if option.side == "left":
        return anchor - shift - width, anchor - shift
    return anchor + shift, anchor + shift + width


def _range_shortfall(ax, box, option: Option) -> float:
    """Pixels by which a box leaves its option's data range."""
    short = 0.0
    if option.lo is not None:
        short = max(short, ax.transData.transform((option.lo, 0.0))[0] - box[0])
    if option.hi is not None:
        short = max(short, box[1] - ax.transData.transform((option.hi, 0.0))[0])
    return short


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _fits(ax, frame, box, option: Option, placed, bounds: bool = True) -> bool:
    """Inside the axes (unless not `bounds`) and the option's range, clear of the labels placed."""
    inside = frame.x0 <= box[0] and box[1] <= frame.x1 if bounds else True
    return (inside and _range_shortfall(ax, box, option) <= 0
            and not any(_overlap(box, other) for other in placed))


def _apply(label: Label, option: Option) -> None:
    if option.x is not None:
        label.text.xy = (option.x, label.text.xy[1])
    label.text.set_position((-option.offset if option.side == "left" else option.offset, 0.0))
    label.text.set_horizontalalignment("right" if option.side == "left" else "left")
