"""Regenerate the golden values in this folder by running the authors' own code on the property suite's family.

The authors' repositories are not part of this project (they are not copied in): check them out side by side in one
folder, each named ``<owner>+<name>`` at the commit listed in :data:`SOURCES`, then::

    python tests/reference/generate.py --sources /path/to/checkouts

Each reference runs the authors' code as written, on linear losses ``L_t(x) = b_t + J_t · x`` at ``x = 0`` (so the
gradients their code extracts are exactly the rows of ``J``) or, where the authors expose a function of the
gradients, on ``J`` itself. What an adapter had to change is listed in the file's ``adaptations``. One JSON file per
method: the source (repository, commit, path, licence), the options, and per family member the authors' output.
The comparisons, and the places where this project departs from a reference on purpose, are in
``tests/aggregators/test_references.py``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import random
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "aggregators"))
from _family import family  # noqa: E402

LIBMTL = ("median-research-group/LibMTL", "4336804847eaa5e0b924b743d76beec7ac3fdc97")
SOURCES = {  # method: (repository, commit, path, licence)
    "pcgrad": ("WeiChengTseng/Pytorch-PCGrad", "e987ac603fa1accd386820a985a6dc2fd92dec5b", "pcgrad.py", "BSD-3-Clause"),
    "gradvac": (*LIBMTL, "LibMTL/weighting/GradVac.py", "MIT"),
    "imtlg": (*LIBMTL, "LibMTL/weighting/IMTL.py", "MIT"),
    "mgda": (
        "isl-org/MultiObjectiveOptimization",
        "bf5bbb30371489a47f6440691d8934b70f7dfc3b",
        "multi_task/min_norm_solvers_numpy.py",
        "MIT",
    ),
    "cagrad": ("Cranial-XIX/CAGrad", "dc3d48152b6196945cfd56144879b9d42353b095", "nyuv2/utils.py", "MIT"),
    "nashmtl": ("AvivNavon/nash-mtl", "cce18403ef5557a6b30f4ba43b896117107d6902", "methods/weight_methods.py", "MIT"),
    "fairgrad": ("OptMN-Lab/fairgrad", "2b8cba1e3d070583ee1d00f8fc0ccc9bc4695c50", "methods/weight_methods.py", "MIT"),
    "config": ("tum-pbs/ConFIG", "94862437f451f175673bce9c85f3e14bd9182c21", "conflictfree/grad_operator.py", "MIT"),
    "alignedmtl": (
        "SamsungLabs/MTL",
        "3f577f1365101fdd16094313b4a3b0d3845ce10d",
        "code/optim/aligned/solver.py",
        "MIT",
    ),
    "famo": ("Cranial-XIX/FAMO", "0a6ad06dbdd55fce73ec01e3a175c2498cd1e5e9", "famo.py", "MIT"),
}
F64 = torch.float64


def checkout(sources: Path, method: str) -> Path:
    repo = SOURCES[method][0].replace("/", "+")
    return sources / repo


@contextlib.contextmanager
def on_path(folder: Path, *packages: str) -> Iterator[None]:
    """Import from ``folder`` (and forget ``packages`` afterwards: two repositories both have a ``methods``)."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] in packages]:
            del sys.modules[name]


def load_file(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def linear_losses(J: torch.Tensor, base: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``x`` (zeros, a leaf) and the losses ``b_t + J_t · x``: their gradients at ``x`` are the rows of ``J``."""
    x = torch.zeros(J.shape[1], dtype=F64, requires_grad=True)
    base = torch.ones(J.shape[0], dtype=F64) if base is None else base
    return x, [base[t] + J[t] @ x for t in range(J.shape[0])]


def our_orders(n_tasks: int, seed: int = 0) -> list[list[int]]:
    from mtbert.aggregators._base import draw_orders

    return draw_orders(n_tasks, torch.Generator().manual_seed(seed))


# --- the references -------------------------------------------------------------------------------------------


def pcgrad(sources: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Pytorch-PCGrad's ``pc_backward`` (reduction 'sum' is what the paper sums; its code takes the mean for any
    reduction string, so its output is recorded as it is). ``random.shuffle`` is replaced by our seed-0 orders,
    with the task itself first (it shuffles every task, itself included)."""
    module = load_file(checkout(sources, "pcgrad") / "pcgrad.py", "reference_pcgrad")

    def run(J: torch.Tensor) -> torch.Tensor:
        x, losses = linear_losses(J)
        optimizer = torch.optim.SGD([x], lr=0.1)
        orders = our_orders(len(J))
        calls = iter(range(len(J)))
        initial: list = []

        def shuffle(grads: list) -> None:  # it shuffles the same list in place each time: index the first order
            initial[:] = initial or list(grads)
            i = next(calls)
            grads[:] = [initial[i]] + [initial[j] for j in orders[i]]

        module.random.shuffle = shuffle
        module.PCGrad(optimizer, reduction="sum").pc_backward(losses)
        return x.grad.detach().clone()

    return run


def libmtl(sources: Path, method: str, class_name: str) -> type:
    root = checkout(sources, method)
    for package in ("LibMTL", "LibMTL.weighting"):  # bare packages: the real __init__ imports the whole library
        sys.modules.setdefault(package, types.ModuleType(package))
    load_file(root / "LibMTL/weighting/abstract_weighting.py", "LibMTL.weighting.abstract_weighting")
    module = load_file(root / SOURCES[method][2], f"reference_{method}")
    weighting = getattr(module, class_name)

    class Host(weighting):  # type: ignore[misc, valid-type]
        """What LibMTL's trainer gives a weighting: the task count, the shared parameters, no representation grads."""

        def __init__(self, x: torch.Tensor, n_tasks: int) -> None:
            super().__init__()
            self.x, self.task_num, self.device, self.rep_grad = x, n_tasks, torch.device("cpu"), False
            self.init_param()

        def get_share_params(self) -> list[torch.Tensor]:
            return [self.x]

        def zero_grad_share_params(self) -> None:
            self.x.grad = torch.zeros_like(self.x)

    Host.module = module  # type: ignore[attr-defined]
    return Host


def gradvac(sources: Path) -> Callable[[list[torch.Tensor], float], list[torch.Tensor]]:
    """LibMTL's ``GradVac.backward`` over several steps (its EMA targets carry over), group type 0 (the whole model),
    ``random.shuffle`` replaced by our seed-0 orders (it shuffles the other tasks)."""
    host_class = libmtl(sources, "gradvac", "GradVac")

    def run(steps: list[torch.Tensor], beta: float) -> list[torch.Tensor]:
        x = torch.zeros(steps[0].shape[1], dtype=F64, requires_grad=True)
        host = host_class(x, steps[0].shape[0])
        generator = torch.Generator().manual_seed(0)
        from mtbert.aggregators._base import draw_orders

        out = []
        for J in steps:
            orders = draw_orders(len(J), generator)
            calls = iter(range(len(J)))
            host_class.module.random.shuffle = lambda index, orders=orders, calls=calls: index.__setitem__(
                slice(None), orders[next(calls)]
            )
            x.grad = None
            host.backward([1.0 + J[t] @ x for t in range(len(J))], GradVac_beta=beta, GradVac_group_type=0)
            out.append(x.grad.detach().clone())
        return out

    return run


def imtlg(sources: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """LibMTL's ``IMTL.backward`` (the gradient part; its loss part ``exp(s) L - s`` starts at ``s = 0``: the losses
    as they are)."""
    host_class = libmtl(sources, "imtlg", "IMTL")

    def run(J: torch.Tensor) -> torch.Tensor:
        x, losses = linear_losses(J)
        host = host_class(x, len(J))
        host.loss_scale = torch.nn.Parameter(torch.zeros(len(J), dtype=F64))
        host.backward(torch.stack(losses))
        return x.grad.detach().clone()

    return run


def mgda(sources: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Sener & Koltun's ``MinNormSolverNumpy.find_min_norm_element`` (the numpy twin of the solver their training
    calls, the same steps; their constants: 250 iterations, stop at a change below 1e-6). Its methods still call the
    class by its torch twin's name, ``MinNormSolver``: that name is bound to it."""
    module = load_file(checkout(sources, "mgda") / SOURCES["mgda"][2], "reference_mgda")
    module.MinNormSolver = module.MinNormSolverNumpy

    def run(J: torch.Tensor) -> torch.Tensor:
        weights, _ = module.MinNormSolverNumpy.find_min_norm_element([row.numpy() for row in J])
        return torch.as_tensor(weights, dtype=F64) @ J

    return run


def cagrad(sources: Path) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The authors' ``cagrad(grads, alpha, rescale=1)`` (nested in ``multi_task_mgd_trainer``; taken out with
    ``ast``), times 3 as their ``overwrite_grad`` does. It is written for 3 tasks (``np.ones(3)``)."""
    source = (checkout(sources, "cagrad") / SOURCES["cagrad"][2]).read_text()
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "cagrad")
    from scipy.optimize import minimize

    namespace = {"np": np, "torch": torch, "minimize": minimize}
    exec(compile(ast.Module([node], []), "cagrad", "exec"), namespace)

    def run(J: torch.Tensor, c: float) -> torch.Tensor:
        return namespace["cagrad"](J.T.clone(), alpha=c, rescale=1) * 3

    return run


def nashmtl(sources: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The authors' ``NashMTL.backward`` (cvxpy/ECOS, 20 iterations, then ``clip_grad_norm_`` to ``max_norm`` 1)."""
    with on_path(checkout(sources, "nashmtl"), "methods"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module("methods.weight_methods")

    def run(J: torch.Tensor) -> torch.Tensor:
        x, losses = linear_losses(J)
        method = module.NashMTL(n_tasks=len(J), device=torch.device("cpu"), max_norm=1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method.backward(torch.stack(losses), shared_parameters=[x])
        return x.grad.detach().clone()

    return run


def fairgrad(sources: Path) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The authors' ``FairGrad.get_weighted_loss`` (scipy's ``least_squares``, then ``overwrite_grad``: × tasks)."""
    with on_path(checkout(sources, "fairgrad"), "methods"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module("methods.weight_methods")

    def run(J: torch.Tensor, alpha: float) -> torch.Tensor:
        x, losses = linear_losses(J)
        module.FairGrad(n_tasks=len(J), device=torch.device("cpu"), alpha=alpha).get_weighted_loss(losses, [x])
        return x.grad.detach().clone()

    return run


def config(sources: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The authors' ``ConFIG_update`` with its defaults (EqualWeight, ProjectionLength, least squares)."""
    with on_path(checkout(sources, "config"), "conflictfree"):
        module = importlib.import_module("conflictfree.grad_operator")
    return lambda J: module.ConFIG_update(J.clone())


def alignedmtl(sources: Path) -> Callable[[torch.Tensor, str], torch.Tensor]:
    """The authors' ``ProcrustesSolver.apply`` and their balancer's sum of the aligned gradients. ``torch.symeig`` (in
    their code) was removed from PyTorch: ``torch.linalg.eigh`` stands in (the same decomposition, ascending)."""
    module = load_file(checkout(sources, "alignedmtl") / SOURCES["alignedmtl"][2], "reference_alignedmtl")
    torch.symeig = lambda M, eigenvectors=True: torch.linalg.eigh(M)  # absent from torch since 2.0

    def run(J: torch.Tensor, scale_mode: str) -> torch.Tensor:
        grads, _, _ = module.ProcrustesSolver.apply(J.T.unsqueeze(0), scale_mode)
        return grads[0].sum(-1)

    return run


def famo(sources: Path) -> Callable[[list[torch.Tensor], float, float], list[torch.Tensor]]:
    """The authors' ``FAMO``: ``get_weighted_loss`` of each step's losses, ``update`` with the next step's (this
    project measures the fall between consecutive steps' losses); the weights are the gradient of their loss."""
    module = load_file(checkout(sources, "famo") / "famo.py", "reference_famo")

    def run(losses: list[torch.Tensor], lr: float, gamma: float) -> list[torch.Tensor]:
        method = module.FAMO(n_tasks=len(losses[0]), device=torch.device("cpu"), gamma=gamma, w_lr=lr)
        method.w.data = method.w.data.double()
        method.w_opt = torch.optim.Adam([method.w], lr=lr, weight_decay=gamma)
        method.min_losses = method.min_losses.double()
        out = []
        for k, step in enumerate(losses):
            if k:
                method.update(step)
            values = step.clone().requires_grad_(True)
            (weights,) = torch.autograd.grad(method.get_weighted_loss(values), values)
            out.append(weights.detach())
        return out

    return run


# --- the cases ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def float64_defaults() -> Iterator[None]:
    """The references' ``torch.Tensor(...)`` and ``torch.ones(...)`` in float64, as if the code were run on float64
    gradients throughout (their float32 defaults would round the inputs)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def tensor_list(t: torch.Tensor) -> list:
    return t.detach().to(F64).tolist()


def member_cases(run: Callable[[torch.Tensor], torch.Tensor], only_tasks: int | None = None) -> list[dict]:
    cases = []
    for name, J in family():
        if only_tasks is not None and J.shape[0] != only_tasks:
            continue
        try:
            with float64_defaults():
                out = run(J)
        except Exception as err:  # the reference's own failure is recorded, not hidden
            cases.append({"member": name, "checksum": float(J.sum()), "error": f"{type(err).__name__}: {err}"})
            continue
        cases.append({"member": name, "checksum": float(J.sum()), "output": tensor_list(out)})
    return cases


def sequences() -> list[tuple[str, list[torch.Tensor]]]:
    """Three steps of Jacobians for the stateful methods: a member, then two other members of the same kind."""
    from _family import member

    return [
        (f"{kind}-T{n}", [member(kind, n, seed) for seed in range(3)])
        for kind in ("generic", "conflicting", "spread")
        for n in (2, 3, 5)
    ]


def build(sources: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    out["pcgrad"] = {"options": {"seed": 0}, "cases": member_cases(pcgrad(sources))}
    vac = gradvac(sources)
    with float64_defaults():
        vac_cases = [
            {
                "member": name,
                "checksum": float(sum(J.sum() for J in steps)),
                "steps": [tensor_list(o) for o in vac(steps, 0.5)],
            }
            for name, steps in sequences()
        ]
    out["gradvac"] = {"options": {"beta": 0.5, "seed": 0}, "cases": vac_cases}
    out["imtlg"] = {"options": {}, "cases": member_cases(imtlg(sources))}
    out["mgda"] = {"options": {}, "cases": member_cases(mgda(sources))}
    ca = cagrad(sources)
    out["cagrad"] = {"options": {"c": 0.4, "rescale": 1}, "cases": member_cases(lambda J: ca(J, 0.4), only_tasks=3)}
    out["nashmtl"] = {"options": {"max_norm": 1.0}, "cases": member_cases(nashmtl(sources))}
    fair = fairgrad(sources)
    out["fairgrad"] = {"options": {"alpha": 2.0}, "cases": member_cases(lambda J: fair(J, 2.0))}
    out["config"] = {"options": {}, "cases": member_cases(config(sources))}
    aligned = alignedmtl(sources)
    out["alignedmtl"] = {"options": {"scale_mode": "min"}, "cases": member_cases(lambda J: aligned(J, "min"))}
    fam = famo(sources)
    generator = torch.Generator().manual_seed(7)
    famo_cases = []
    for n in (2, 3, 5):
        losses = [torch.rand(n, dtype=F64, generator=generator) * 3 + 0.1 for _ in range(6)]
        famo_cases.append(
            {
                "member": f"losses-T{n}",
                "losses": [tensor_list(step) for step in losses],
                "steps": [tensor_list(w) for w in fam(losses, 0.025, 0.001)],
            }
        )
    out["famo"] = {"options": {"lr": 0.025, "gamma": 0.001}, "cases": famo_cases}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, required=True, help="folder of <owner>+<name> checkouts")
    args = parser.parse_args()
    random.seed(0)
    torch.manual_seed(0)
    for method, data in build(args.sources).items():
        repository, commit, path, licence = SOURCES[method]
        record = {
            "method": method,
            "source": {"repository": repository, "commit": commit, "path": path, "licence": licence},
            "generated_by": "tests/reference/generate.py",
            **data,
        }
        (HERE / f"{method}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(method, len(data["cases"]), "cases")


if __name__ == "__main__":
    main()
