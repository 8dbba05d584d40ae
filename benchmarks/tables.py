"""What every benchmark writes: Markdown and CSV tables, PNG figures, a short results page.

Columns whose name starts with ``_`` are raw numbers for tests and are left out of the files.
"""

import argparse
import csv
import math
from collections.abc import Callable
from pathlib import Path
from statistics import fmean, stdev

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its normal 95 % confidence interval (0 for one value)."""
    if not values:
        return float("nan"), float("nan")
    spread = 1.96 * stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return fmean(values), spread


def _shown(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(_shown(rows[0]))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(_shown(r)[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def save_figure(fig: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(
    out: Path, tables: dict[str, list[dict]], title: str, figures: list[str], notes: str = ""
) -> Path:
    """``<name>.csv`` per table and ``results.md`` with the tables and figures."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", "", notes] if notes else [f"# {title}", ""]
    for name, rows in tables.items():
        with (out / f"{name}.csv").open("w", newline="") as file:
            if rows:
                writer = csv.DictWriter(file, list(_shown(rows[0])))
                writer.writeheader()
                writer.writerows(_shown(r) for r in rows)
        parts += [f"## {name}", "", markdown_table(rows)]
    parts += [f"![{name}]({name})" for name in figures]
    page = out / "results.md"
    page.write_text("\n".join(parts) + "\n")
    return page


def script_main(
    doc: str,
    name: str,
    run: Callable[..., dict[str, list[dict]]],
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line every scripted experiment shares: ``--out DIR`` and ``--quick``, and
    the script's own ``options`` (passed to ``run`` by name); prints its tables."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results") / name)
    parser.add_argument("--quick", action="store_true", help="the short run the tests use")
    if options:
        options(parser)
    args = vars(parser.parse_args())
    for rows in run(args.pop("out"), args.pop("quick"), **args).values():
        print(markdown_table(rows))
