"""Human-readable reports of evaluation results."""

from __future__ import annotations

from pathlib import Path


def summary_table(summary: dict) -> str:
    """A markdown table: one row per (split, metric), one column per checkpoint (start, final)."""
    columns = [name for name in ("start", "final") if summary.get(name)]
    if not columns:
        return ""
    lines = ["| split | metric | " + " | ".join(columns) + " | change |", "|---|---|" + "---|" * (len(columns) + 1)]
    for split, result in summary[columns[0]].items():
        results = [summary[c][split] for c in columns]
        for metric in dict.fromkeys(m for r in results for m in r["metrics"]):  # in order, each once
            values = [r["metrics"].get(metric) for r in results]
            change = f"{values[-1] - values[0]:+.3f}" if len(values) > 1 and None not in values else ""
            lines.append(f"| {split} (n={result['n']}) | {metric} | " + " | ".join(map(_cell, values)) + f" | {change} |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    """A metric a result lacks (e.g. ADE when no answer parsed) reads "n/a"."""
    return "n/a" if value is None else f"{value:.3f}"


def print_summary(summary: dict, output_dir: str | Path) -> None:
    table = summary_table(summary)
    if table:
        print("\n" + table)
        print(f"\nsummary: {Path(output_dir) / 'summary.json'}")
    print(f"final checkpoint: {summary['final_checkpoint']}")


def comparison_table(reports: dict[str, dict]) -> str:
    """A markdown table of several eval.json reports on one benchmark: a row per model, a column per metric."""
    metrics = sorted({m for r in reports.values() for m in r["metrics"]})
    lines = ["| model | n | " + " | ".join(metrics) + " | failures |", "|---|---|" + "---|" * (len(metrics) + 1)]
    for name, r in reports.items():
        cells = " | ".join(_cell(r["metrics"].get(m)) for m in metrics)
        failures = ", ".join(f"{k} {v}" for k, v in sorted(r["failures"].items())) or "none"
        lines.append(f"| {name} | {r['n']} | {cells} | {failures} |")
    return "\n".join(lines)
