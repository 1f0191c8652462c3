"""Stage ``prepare``: validate the raw CSVs, tokenize once, cache token ids; report skipped rows."""

import sys

from _runner import run, write_json

from mtbert.config import Config
from mtbert.prepare import prepare
from mtbert.pretrained import load_tokenizer


def main(cfg: Config) -> None:
    paths = cfg.artifacts()
    tokenizer = load_tokenizer(cfg.model.name)
    report = prepare(
        cfg.task_specs(),
        paths.raw,
        paths.prepared,
        tokenizer,
        cfg.data.on_malformed,
        progress=sys.stderr.isatty(),
    )
    for line in report["skipped_rows"]:
        print(f"skipped {line}")
    print(f"prepared {sum(report['rows'].values())} rows, skipped {report['skipped_total']} malformed rows")
    write_json(paths.metrics("prepare"), report)


if __name__ == "__main__":
    run(main)
