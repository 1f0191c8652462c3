"""Stage ``prepare``: validate the raw CSVs, tokenize once, cache token ids; report skipped rows."""

import sys
from pathlib import Path

from _runner import ARTIFACTS, run, write_json

from mtbert.config import Config
from mtbert.prepare import prepare
from mtbert.pretrained import load_tokenizer


def main(cfg: Config) -> None:
    tokenizer = load_tokenizer(cfg.model.name)
    report = prepare(
        cfg.task_specs(),
        Path(cfg.data.raw_dir),
        Path(cfg.data.prepared_dir),
        tokenizer,
        cfg.data.on_malformed,
        progress=sys.stderr.isatty(),
    )
    for line in report["skipped_rows"]:
        print(f"skipped {line}")
    print(f"prepared {sum(report['rows'].values())} rows, skipped {report['skipped_total']} malformed rows")
    write_json(ARTIFACTS.metrics("prepare"), report)


if __name__ == "__main__":
    run(main)
