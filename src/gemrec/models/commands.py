"""``gemrec train``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from gemrec._cli_util import (
    QUIET_TTY_HELP,
    add_command,
    add_quiet,
    add_tracking,
    show_progress,
    tracked,
)
from gemrec.data.store import Dataset
from gemrec.errors import ConfigError, GemrecError, ParameterError
from gemrec.models import MODELS, get_model_class
from gemrec.models._distributed import DEFAULT_TIMEOUT_S, launch_local, launched_world
from gemrec.models.base import Recommender
from gemrec.models.fitting import FitResult, fit_on_dataset, make_configured
from gemrec.settings import load_config, parse_assignments
from gemrec.tracking import active_run

__all__ = [
    "AUTO_TUNE_CAP_S",
    "AUTO_TUNE_MIN_FITS",
    "AUTO_TUNE_MIN_TRIALS",
    "AUTO_TUNE_MULTIPLE",
    "add_parser",
    "fit_dataset",
    "params_from_args",
    "save_fitted",
    "train_model",
]

HELP = "train a model on a dataset directory"
DESCRIPTION = (
    "Fit a recommender on the train (+ valid) split of DATASET_DIR and save it. Training-free "
    "models (graphfilter, rp3beta, itemknn, userknn) first tune the knobs not set with --set or "
    "--config on the validation split (never test) for about a fit's time."
)

EXAMPLE = """example:
  gemrec train data/gowalla --model graphfilter -o models/gf    # its knobs tuned on valid first
  gemrec train data/gowalla --model graphfilter --no-tune -o models/gf    # the shipped defaults
  gemrec train data/gowalla --model rp3beta --set alpha=0.8 --set beta=0.3 -o models/rp3
  gemrec train data/shop --model lightgcn --config lightgcn.toml -o models/lgn
  gemrec train data/shop --model lightgcn --set device=cuda -o models/lgn
  gemrec train data/shop --model lightgcn --nproc 4 -o models/lgn    # 4 local workers
  gemrec train data/big --model graphfilter --engine dask --scheduler tcp://HOST:8786 -o models/gf
  torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
      --rdzv-id shop1 -m gemrec train data/shop --model lightgcn -o models/lgn"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "train", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    p.add_argument("dataset", metavar="DATASET_DIR")
    # not argparse ``choices``: an unknown name must be a one-line error, not a usage dump
    p.add_argument(
        "--model", required=True, metavar="NAME", help=f"model name: {', '.join(sorted(MODELS))}"
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="hyperparameter (repeatable)"
    )
    p.add_argument("--config", metavar="FILE", help="TOML file of hyperparameters")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR")
    p.add_argument(
        "--tune",
        metavar="BUDGET",
        help="search the model's hyperparameters for this long first (e.g. 10m; see gemrec tune)",
    )
    p.add_argument(
        "--no-tune",
        dest="auto_tune",
        action="store_false",
        help="training-free models (graphfilter, rp3beta, itemknn, userknn) keep their defaults "
        "instead of tuning their knobs on a split carved from train for about a fit's time",
    )
    p.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        help="keep an early-stopped model as it stopped (trained on train only) instead of "
        "refitting it on train + valid for its best number of epochs",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train data-parallel in N local worker processes (torchrun standalone; lightgcn, "
        "mf, ncf, item2vec): the global batch is split across them and their gradients summed, "
        "so N workers train the same model as one; gloo on CPUs, NCCL on GPUs (one per worker)",
    )
    p.add_argument(
        "--dist-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="data-parallel runs: how long a worker waits for the others (rank 0's validation "
        "included) before the run fails (default: %(default)g)",
    )
    p.add_argument(
        "--engine",
        choices=["memory", "dask"],
        default="memory",
        help="memory: fit in this process (default); dask: fit from blocks of users on a Dask "
        "cluster, with the knobs given (no tuning; graphfilter; docs/scaling.md)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask: scheduler address, e.g. tcp://HOST:8786 (default: a local cluster)",
    )
    add_quiet(p, QUIET_TTY_HELP)
    add_tracking(p)
    p.set_defaults(func=_run)


#: a default search stops after this many times one fit (shared work + the fastest trial) ...
AUTO_TUNE_MULTIPLE = 6.0
#: ... or after this many seconds, whichever comes first ...
AUTO_TUNE_CAP_S = 30.0
#: ... a cap that grows to this many times one fit where that is longer (a large catalogue:
#: the defaults, then half a fit's time or so for the first starting points) ...
AUTO_TUNE_MIN_FITS = 1.5
#: ... but not before this many trials (within the cap)
AUTO_TUNE_MIN_TRIALS = 40


def train_model(
    dataset: Dataset,
    model_name: str,
    params: dict[str, object],
    output: str | Path | None = None,
    *,
    refit: bool = True,
    tune: bool = True,
    progress: bool = False,
) -> Recommender:
    """Fit ``model_name`` on ``dataset`` and (optionally) save it with its training record.

    :func:`fit_dataset` with the fitted model alone; see there.
    """
    return fit_dataset(
        dataset, model_name, params, output, refit=refit, tune=tune, progress=progress
    ).model


def fit_dataset(
    dataset: Dataset,
    model_name: str,
    params: dict[str, object],
    output: str | Path | None = None,
    *,
    refit: bool = True,
    tune: bool = True,
    progress: bool = False,
) -> FitResult:
    """Fit ``model_name`` on ``dataset`` (tuning it first when it is training-free) and save it.

    The validation split is handled as the model declares (:func:`gemrec.models.fitting.fit_model`):
    the saved model has trained on train + valid, early-stopping models after a refit for their
    best number of epochs (unless ``refit`` is False). A model that declares
    ``tags.tune_by_default`` (graphfilter, rp3beta, itemknn, userknn) first searches the knobs
    not given in ``params`` (:func:`gemrec.models.tuning.tune`) on a split carved from train,
    never test, for :data:`AUTO_TUNE_MULTIPLE` times one fit or :data:`AUTO_TUNE_CAP_S`
    seconds, whichever is shorter (at least :data:`AUTO_TUNE_MIN_TRIALS` trials within the cap;
    the cap is at least :data:`AUTO_TUNE_MIN_FITS` times one fit);
    the record's ``tuning`` says what was tried and the saved
    parameters are the chosen ones.

    Parameters
    ----------
    dataset : Dataset
    model_name : str
        A key of :data:`gemrec.models.MODELS`.
    params : dict
        Keyword hyperparameters of the model (kept fixed when tuning).
    output : path, optional
        Model directory to write (``manifest.json``, ``arrays.npz``, ``training.json``).
    refit : bool
        Refit early-stopping models on train + valid.
    tune : bool
        Tune a training-free model first (False: its defaults and ``params``, as given).
    progress : bool
        Show a stage bar (fit, save) on stderr; epoch-based models add their own.

    Returns
    -------
    FitResult
        The fitted model and its record (``tuning`` when it was tuned).
    """
    klass = get_model_class(model_name)
    if tune and klass.tags.tune_by_default:
        from gemrec.models.tuning import SEARCH_SPACES, tuning_split
        from gemrec.models.tuning import tune as search

        searched = set(SEARCH_SPACES.get(model_name, {})) - set(params)
        # data too small to hold any edge out is fitted with the defaults
        if searched and tuning_split(dataset)[1].nnz > 0:
            result = search(
                dataset,
                model_name,
                budget_s=AUTO_TUNE_CAP_S,
                fit_multiple=AUTO_TUNE_MULTIPLE,
                min_fits=AUTO_TUNE_MIN_FITS,
                min_trials=AUTO_TUNE_MIN_TRIALS,
                fixed=dict(params),
                progress=False,
            ).fit
            if output is not None:
                save_fitted(result, output)
            return result
    model = make_configured(model_name, params, progress=progress)
    bar = _Stages(f"train {model_name}", ["fit", "save"], enabled=progress)
    try:
        result = fit_on_dataset(dataset, model, refit=refit)
        # what the user asked for: retrain fits again with these, not with the refit's epochs
        result.record["params"] = {k: v for k, v in params.items() if k != "progress"}
        bar.next()
        if output is not None:
            save_fitted(result, output)
    finally:
        bar.close()
    return result


def save_fitted(result: FitResult, output: str | Path) -> Path:
    """Write the fitted model and its ``training.json`` record to ``output``."""
    try:
        out = result.model.save(output)
    except OSError as exc:
        raise ConfigError(
            f"-o {output}: cannot write the model directory: {exc.strerror or exc}"
        ) from None
    (out / "training.json").write_text(json.dumps(result.record, indent=2))
    run = active_run()
    if run is not None:
        run.set_tags({"gemrec.model_dir": str(out.resolve())})
    return out


class _Stages:
    """A stage-level progress bar on stderr (the fit itself is one call)."""

    def __init__(self, desc: str, stages: list[str], *, enabled: bool) -> None:
        self.stages = stages
        self.done = 0
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(stages), desc=desc, unit="stage", leave=False)
            self.bar.set_postfix_str(stages[0])

    def next(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            if self.done < len(self.stages):
                self.bar.set_postfix_str(self.stages[self.done])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def params_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Hyperparameters from ``--config`` and ``--set``, checked before any data is read."""
    klass = get_model_class(args.model)
    allowed = set(klass._param_names())
    params: dict[str, object] = {}
    if args.config:
        cfg = load_config(args.config, allowed | {"model"})
        cfg_model = cfg.pop("model", args.model)
        if cfg_model != args.model:
            raise ConfigError(
                f"{args.config}: model = {cfg_model!r} does not match --model {args.model}; "
                "use the config's model or drop its 'model' key"
            )
        params.update(cfg)
    overrides = parse_assignments(args.set)
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(
            f"--set: model '{args.model}' has no parameter {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(allowed))}"
        )
    params.update(overrides)
    try:  # fail on a bad value before loading (possibly large) data
        klass(**params)._validate_params()
    except GemrecError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"model '{args.model}': invalid hyperparameters ({exc})") from None
    return params


class _StderrLines(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to whatever ``sys.stderr`` is when the line is emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def log_progress_lines(args: argparse.Namespace) -> None:
    """Without a terminal (CI, nohup, a scheduler) epochs are reported as lines on stderr."""
    log = logging.getLogger("gemrec.training")
    ours = [h for h in log.handlers if isinstance(h, _StderrLines)]
    if getattr(args, "quiet", False) or sys.stderr.isatty():
        for h in ours:  # an earlier command of this process asked for lines; this one does not
            log.removeHandler(h)
        return
    if not ours:
        handler = _StderrLines()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def _run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    log_progress_lines(args)
    if args.scheduler is not None and args.engine != "dask":
        raise ParameterError.invalid("--scheduler", "only with --engine dask", args.scheduler)
    if args.engine == "dask":
        return _run_dask(args, params)
    klass = get_model_class(args.model)
    world = launched_world()
    if args.nproc > 1 or (world is not None and world.size > 1):
        _check_distributed(args, klass.tags.distributed, world is not None)
    if args.tune is not None:
        if args.nproc > 1:
            raise ConfigError("--tune and --nproc go separately: tune first, then train")
        from gemrec.models.commands_tune import run_tuning

        return run_tuning(args, params, budget=args.tune)
    if args.nproc > 1:  # this process only starts the workers, which run this command again
        Dataset.open(args.dataset)  # a wrong path fails here, once, not in every worker
        return launch_local(args.nproc, _worker_argv(args))
    if world is not None and world.size > 1:
        return _run_worker(args, params)
    dataset = Dataset.open(args.dataset)
    start = time.perf_counter()
    with tracked(args, "train", args.model):
        result = fit_dataset(
            dataset,
            args.model,
            params,
            args.output,
            refit=args.refit,
            tune=args.auto_tune,
            progress=show_progress(args),
        )
    model = result.model
    tuning = result.record.get("tuning")
    if tuning is not None:
        chosen = ", ".join(f"{k}={_short(v)}" for k, v in sorted(result.record["params"].items()))
        print(
            f"tuned {args.model}: {chosen} ({tuning['n_trials']} trials in "
            f"{tuning['seconds']:.1f}s on {tuning['split']}: recall@20 "
            f"{tuning['default_value']:.4f} with the defaults, {tuning['best_value']:.4f} tuned; "
            "--no-tune keeps the defaults)"
        )
    print(
        f"trained {args.model} on {dataset.path} ({model.n_users} users, {model.n_items} items) "
        f"in {time.perf_counter() - start:.1f}s -> {args.output}"
    )
    return 0


def _run_dask(args: argparse.Namespace, params: dict[str, object]) -> int:
    """``--engine dask``: the model's Dask fitter, with the knobs as given, saved as any model."""
    from gemrec.scale import DASK_FITTERS

    fitter = DASK_FITTERS.get(args.model)
    if fitter is None:
        raise ConfigError(
            f"--engine dask: model '{args.model}' fits in one process; on Dask: "
            f"{', '.join(sorted(DASK_FITTERS))}"
        )
    for flag, given in (("--nproc", args.nproc != 1), ("--tune", args.tune is not None)):
        if given:
            raise ConfigError(f"{flag} and --engine dask go separately: {flag} fits in memory")
    from gemrec.data.import_dask import dask_client

    dataset = Dataset.open(args.dataset)  # a wrong path fails here, not on the workers
    if args.auto_tune and get_model_class(args.model).tags.tune_by_default:
        print(
            f"--engine dask fits {args.model} with the knobs given, untuned (tune on a sample "
            "in memory with `gemrec tune`, then pass them with --set or --config)",
            file=sys.stderr,
        )
    start = time.perf_counter()
    with tracked(args, "train", args.model), dask_client(args.scheduler) as client:
        result = fitter(dataset.path, client=client, **params)
        result.record["params"] = dict(params)
        save_fitted(result, args.output)
    model = result.model
    print(
        f"trained {args.model} on {dataset.path} ({model.n_users} users, {model.n_items} items) "
        f"on Dask in {time.perf_counter() - start:.1f}s -> {args.output}"
    )
    return 0


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _check_distributed(args: argparse.Namespace, supported: bool, in_worker: bool) -> None:
    if args.nproc < 1:
        raise ConfigError(f"--nproc: expected a positive number of workers, got {args.nproc}")
    if not args.dist_timeout > 0:
        raise ConfigError(f"--dist-timeout: expected a positive number, got {args.dist_timeout}")
    if not supported:
        names = ", ".join(sorted(n for n in MODELS if get_model_class(n).tags.distributed))
        raise ConfigError(
            f"model '{args.model}' trains in one process; data-parallel training (--nproc, "
            f"torchrun) is for {names}"
        )
    if in_worker and args.nproc > 1:
        raise ConfigError(
            "--nproc inside torchrun: torchrun has already started the workers; drop --nproc"
        )


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """This ``train`` command as each worker runs it (without ``--nproc``)."""
    argv = ["train", args.dataset, "--model", args.model, "-o", args.output]
    for assignment in args.set or []:
        argv += ["--set", assignment]
    if args.config:
        argv += ["--config", args.config]
    if not args.refit:
        argv.append("--no-refit")
    if args.quiet:
        argv.append("--quiet")
    if args.tracking_uri:
        argv += ["--tracking-uri", args.tracking_uri]
    if args.no_track:
        argv.append("--no-track")
    return [*argv, "--dist-timeout", repr(float(args.dist_timeout))]


def _run_worker(args: argparse.Namespace, params: dict[str, object]) -> int:
    """One worker of a data-parallel run: every worker trains, rank 0 alone saves and reports."""
    from gemrec.models._device import resolve_device
    from gemrec.models._distributed import process_group

    device = resolve_device(str(params.get("device", "auto")))
    with process_group(timeout_s=args.dist_timeout, cuda=device.type == "cuda") as world:
        dataset = Dataset.open(args.dataset)
        start = time.perf_counter()
        output = args.output if world.is_main else None
        progress = show_progress(args) and world.is_main
        # rank 0 records the run; the other workers record nothing
        with tracked(args, "train", args.model) if world.is_main else nullcontext():
            model = train_model(
                dataset, args.model, params, output, refit=args.refit, progress=progress
            )
        if world.is_main:
            print(
                f"trained {args.model} on {dataset.path} ({model.n_users} users, "
                f"{model.n_items} items) with {world.size} workers on {device.type} in "
                f"{time.perf_counter() - start:.1f}s -> {args.output}"
            )
    return 0
