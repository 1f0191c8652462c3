"""The mutation score of each mutated module, from the results ``mutmut run`` left under ``mutants/``.

    make mutate                                   # mutmut run, then this table
    python bench/mutation_scores.py [--markdown]  # the table again; --survivors lists the surviving mutants
    python bench/mutation_scores.py --folder .mutants-training/mutants  # the training loop's (make mutate-training)

Score = killed / (killed + survived + no tests): the share of mutants some test notices. Timeouts count as killed
(the mutant looped; the test run stopped it), as mutmut counts them. Mutants not run yet (``mutmut run <glob>`` runs
a part) are counted apart and left out of the score; a module none of whose mutants ran has no score.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")


def statuses(folder: Path = MUTANTS) -> dict[str, dict[str, str]]:
    """Module (``src/mtbert/...py``) → mutant name → status."""
    out = {}
    for meta in sorted(folder.rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        module = str(meta.relative_to(folder).with_suffix(""))
        out[module] = {name: status_by_exit_code[code] for name, code in data["exit_code_by_key"].items()}
    return out


def table(results: dict[str, dict[str, str]], markdown: bool) -> str:
    rows = []
    totals: Counter[str] = Counter()
    for module, mutants in results.items():
        counts = Counter("killed" if s == "timeout" else s for s in mutants.values())
        totals.update(counts)
        rows.append((module, counts))
    rows.append(("all", totals))
    lines = [
        "| module | mutants | not run | killed | survived | no tests | score |",
        "|---|---|---|---|---|---|---|",
    ]
    for module, c in rows:
        judged = c["killed"] + c["survived"] + c["no tests"]
        score = f"{c['killed'] / judged:.1%}" if judged else "—"
        if judged and c["not checked"]:
            score += " (partial)"  # the mutants run first are those with the fastest tests: not a sample
        lines.append(
            f"| `{module}` | {sum(c.values())} | {c['not checked']} | {c['killed']} | {c['survived']} "
            f"| {c['no tests']} | {score} |"
        )
    return (
        "\n".join(lines)
        if markdown
        else "\n".join(line.replace("|", " ").strip() for line in lines if "---" not in line)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant by module")
    parser.add_argument(
        "--folder",
        type=Path,
        default=MUTANTS,
        help="mutmut's folder (the training loop's: .mutants-training/mutants, from make mutate-training)",
    )
    args = parser.parse_args()
    results = statuses(args.folder)
    print(table(results, args.markdown))
    if args.survivors:
        for module, mutants in results.items():
            for name, status in mutants.items():
                if status in ("survived", "no tests"):
                    print(f"{module}\t{name}\t{status}")


if __name__ == "__main__":
    main()
