"""What every benchmark writes: Markdown and CSV tables, PNG figures, a short results page.

Columns whose name starts with ``_`` are raw numbers for tests and are left out of the files.
"""

import argparse
import csv
import math
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

from sweeps.significance import t_interval

RESULTS = Path("docs/results")  # full runs: kept, documentation
SCRATCH = Path("logs/scratch")  # --quick runs: git-ignored, so they never overwrite kept results


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its Student-t 95 % interval (few seeds: the normal 1.96
    would be too narrow, 4.3 is right for 3); 0 for one value, nan for none."""
    interval = t_interval(values)
    if interval.n < 2:
        return interval.mean, 0.0 if interval.n else math.nan
    return interval.mean, (interval.high - interval.low) / 2


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
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path)


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


def default_out(quick: bool, name: str = "") -> Path:
    """Where a run writes without ``--out``: ``docs/results/<name>``, or for ``--quick``
    ``logs/scratch/<name>``."""
    return (SCRATCH if quick else RESULTS) / name


def experiment_parser(doc: str) -> argparse.ArgumentParser:
    """``--out DIR`` (default: ``default_out``, resolved by ``parse``) and ``--quick``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    where = f"default: under {RESULTS}/, with --quick under {SCRATCH}/"
    parser.add_argument("--out", type=Path, help=f"output folder ({where})")
    parser.add_argument("--quick", action="store_true", help="the short run the tests use")
    return parser


def parse(parser: argparse.ArgumentParser, name: str) -> argparse.Namespace:
    """The parsed arguments, ``--out`` filled in once ``--quick`` is known."""
    args = parser.parse_args()
    args.out = args.out or default_out(args.quick, name)
    return args


def script_main(
    doc: str,
    name: str,
    run: Callable[..., dict[str, list[dict]]],
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line every scripted experiment shares: ``--out DIR`` and ``--quick``, and
    the script's own ``options`` (passed to ``run`` by name); prints its tables."""
    parser = experiment_parser(doc)
    if options:
        options(parser)
    args = vars(parse(parser, name))
    for rows in run(args.pop("out"), args.pop("quick"), **args).values():
        print(markdown_table(rows))
