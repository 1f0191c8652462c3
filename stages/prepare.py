"""Stage ``prepare``: validate the raw CSVs, tokenize once, cache token ids; report skipped rows."""

import json
from pathlib import Path

from mtbert.cli import run
from mtbert.config import load_config
from mtbert.data.prepare import prepare
from mtbert.model import load_tokenizer
from mtbert.tasks import get_tasks


def main() -> None:
    cfg = load_config("params.yaml")
    report = prepare(
        get_tasks(cfg.tasks),
        Path(cfg.data.raw_dir),
        Path(cfg.data.prepared_dir),
        load_tokenizer(cfg.model.name),
        cfg.data.on_malformed,
    )
    for line in report["skipped_rows"]:
        print(f"skipped {line}")
    print(f"prepared {sum(report['rows'].values())} rows, skipped {report['skipped_total']} malformed rows")
    Path("metrics").mkdir(exist_ok=True)
    Path("metrics/prepare.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    run(main)
