"""Stage ``validate``: check all of ``params.yaml`` before any other stage starts.

DVC deletes a stage's outputs before it runs the stage, so a bad value found by ``pretrain`` itself would cost the
models already there. Every other stage depends on its mark (``data/validated.txt``), so DVC runs this stage first
and stops here on a bad value. The mark's text is constant: a valid change reruns this stage but leaves the mark's
hash, and so the other stages, as they are. ``persist: true`` in ``dvc.yaml`` keeps the mark when this stage fails.
"""

from _runner import run

from mtbert.config import Config
from mtbert.files import write_text_atomic
from mtbert.recipe import all_recipes

TEXT = "params.yaml passed stages/validate.py (this text never changes: see dvc.yaml)\n"


def main(cfg: Config) -> None:
    all_recipes(cfg)  # loading checked every key; the recipes check the gradient method, sampling and loss weights
    mark = cfg.artifacts().validated
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.unlink(missing_ok=True)  # DVC's cache may have linked the previous mark read-only
    write_text_atomic(mark, TEXT)


if __name__ == "__main__":
    run(main)
