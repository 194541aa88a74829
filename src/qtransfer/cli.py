"""The ``qtransfer`` command line.

Parsing and ``--help`` import nothing heavy (no torch, no torchvision, no PennyLane):
each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from qtransfer import __version__
from qtransfer.errors import EXIT_BROKEN_PIPE, EXIT_CODES, QTransferError, UsageError

__all__ = ["main", "build_parser", "run"]

_EXIT_TEXT = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())

_TRAIN_EXAMPLES = """examples:
  qtransfer train --out runs/published                   # the published experiment (ResNet18, Hymenoptera)
  qtransfer train --data ../shared/data/hymenoptera_train --backbone mobilenet_v2 \\
      --weights ../shared/weights/mobilenet_v2-b0353104.pth --out runs/mnv2   # offline
  qtransfer train --config experiment.toml --out runs/exp # settings from a file, flags override
  qtransfer train --resume runs/mnv2                      # continue an interrupted run
"""

#: flag -> (TrainConfig field, type, help). Defaults are TrainConfig's, shown in --help.
_TRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--data", "data", str, "'hymenoptera' (the published data set: cache, else download), a folder of class folders "
     "(a stratified val split is drawn from it), or a root with train/ and optional val/ and test/"),
    ("--features", "features", str, "precomputed features instead of images (no backbone runs): .npz/.npy (arrays "
     "features, labels, optional names and split), .csv or .parquet (a label column, optional name and split columns, "
     "every other column a numeric feature)"),
    ("--label-column", "label_column", str, "--features .csv/.parquet: the column of labels"),
    ("--name-column", "name_column", str, "--features .csv/.parquet: the optional column of row names"),
    ("--split-column", "split_column", str, "--features .csv/.parquet: the optional column of train/val/test "
     "(without it a val split is drawn as for --data)"),
    ("--backbone", "backbone", str, "frozen feature extractor (see `qtransfer backbones`), or timm:NAME for any timm "
     "model (pip install 'qtransfer[timm]'; --weights FILE, none, DEFAULT or a pretrained tag from the local cache)"),
    ("--weights", "weights", str, "backbone weights: a torchvision name (DEFAULT, IMAGENET1K_V1, ...), a local .pth "
     "state-dict file, or none (random)"),
    ("--transform", "transform", str, "image preprocessing: 'weights' (the weights' own) or 'published' "
     "(Resize 256, CenterCrop 224, ImageNet normalisation); default: the weights' own for named weights, published otherwise"),
    ("--augment", "augment", int, "K: train on K seeded augmented views of each training image (the paper notebooks' "
     "commented-out RandomResizedCrop(224) + RandomHorizontalFlip, then the preprocessing), epoch e on view "
     "(e-1) mod K, each view extracted once and cached; validation and test stay centre crops; 0: centre crops "
     "only, as the published runs"),
    ("--augment-seed", "augment_seed", int, "seed of the augmented views (part of their cache key)"),
    ("--head", "head", str, "the head to train: {heads}"),
    ("--qubits", "n_qubits", int, "number of qubits"),
    ("--depth", "depth", int, "variational layers"),
    ("--q-delta", "q_delta", float, "scale of the initial circuit weights (q_delta * randn)"),
    ("--embedding", "embedding", str, "hadamard_ry (published) | ry | rx"),
    ("--layer", "layer", str, "cnot_ry (published) | ry (no CNOTs) | rot_ring (Rot + CNOT ring)"),
    ("--circuit", "circuit", str, "a circuit file (TOML/YAML/JSON; examples/circuits/, docs/circuits.md): any "
     "embedding, ansatz and measurement instead of --qubits/--depth/--embedding/--layer"),
    ("--backend", "backend", str, "builtin (fast PyTorch simulator) or pennylane:DEVICE, e.g. pennylane:default.qubit"),
    ("--shots", "shots", int, "measurement shots per expectation value (default: exact)"),
    ("--noise", "noise", str, "run the circuit under noise, e.g. depolarizing:p1=0.001,p2=0.01,readout=0.02 "
     "(thermal relaxation: t1=,t2=,t_1q=,t_2q=); classical heads ignore it"),
    ("--epochs", "epochs", int, "training epochs"),
    ("--batch-size", "batch_size", int, "mini-batch size"),
    ("--lr", "lr", float, "Adam learning rate (head parameters only)"),
    ("--step-size", "step_size", int, "StepLR: epochs between learning-rate decays"),
    ("--gamma", "gamma", float, "StepLR: decay factor"),
    ("--seed", "seed", int, "seed of the head's initial weights, the shuffling and the val split"),
    ("--val-fraction", "val_fraction", float, "fraction of each class held out for validation when there is no val/ folder"),
    ("--device", "device", str, "cpu or cuda[:N]"),
]


def _heads_help() -> str:
    from qtransfer.heads.registry import HEADS  # no torch import

    return "; ".join(f"{name} ({info.description})" for name, info in HEADS.items())


def _defaults() -> dict[str, Any]:
    from qtransfer.config import TrainConfig

    return TrainConfig().to_dict()


def _add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", help="feature and data-set cache (default: $QTRANSFER_CACHE, else the user cache directory)")


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_train_flags(p: argparse.ArgumentParser, defaults: dict[str, Any], skip: Sequence[str] = ()) -> None:
    """The TrainConfig flags; absent ones stay absent so a --config file's values survive."""
    for flag, name, typ, text in _TRAIN_FLAGS:
        if name not in skip:
            p.add_argument(flag, dest=name, type=typ, default=argparse.SUPPRESS,
                           help=f"{text.format(heads=_heads_help())} (default: {defaults[name]})")


def _add_inference_flags(p: argparse.ArgumentParser, json_help: str) -> None:
    """Options shared by the commands that run a trained model (evaluate, predict)."""
    p.add_argument("--weights", help="the backbone weights file, if it moved since training")
    p.add_argument("--device", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--json", action="store_true", help=json_help)
    _add_cache_dir(p)
    _add_progress(p)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (importable for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="qtransfer",
        description="Hybrid classical-quantum transfer learning (Mari et al., Quantum 4, 340, 2020): a frozen "
        "ImageNet backbone's features feed a trainable dressed quantum circuit.",
        epilog=_EXIT_TEXT, formatter_class=_FMT,
    )
    parser.add_argument("--version", action="version", version=f"qtransfer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    defaults = _defaults()
    _add_train_parser(sub, defaults)
    _add_inference_parsers(sub)
    _add_compare_parser(sub, defaults)
    _add_sweep_parser(sub, defaults)
    _add_tool_parsers(sub)
    _add_paper_parser(sub)
    return parser


_FMT = argparse.RawDescriptionHelpFormatter


def _add_train_parser(sub, defaults: dict[str, Any]) -> None:
    fmt = _FMT
    train = sub.add_parser("train", help="train a head on a folder of images and write a run directory",
                           description="Train a head on cached backbone features; write RUN_DIR with the model, "
                           "metrics.json and report.html. Defaults are the published protocol.",
                           epilog=_TRAIN_EXAMPLES + "\n" + _EXIT_TEXT, formatter_class=fmt)
    train.add_argument("--out", metavar="RUN_DIR", help="run directory to create (required unless --resume)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last completed epoch")
    train.add_argument("--config", metavar="FILE", help="TOML, YAML or JSON file of settings (keys as below, e.g. "
                       "n_qubits, batch_size); flags given on the command line win")
    _add_train_flags(train, defaults)
    train.add_argument("--strict", dest="strict", action="store_true", default=argparse.SUPPRESS,
                       help="fail on any unusable image instead of skipping it with a warning")
    train.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_cache_dir(train)
    _add_progress(train)


def _add_inference_parsers(sub) -> None:
    fmt = _FMT
    ev = sub.add_parser("evaluate", help="evaluate a trained run on labelled images",
                        description="Accuracy, loss, per-class accuracy and confusion matrix of RUN_DIR's model on DIR.",
                        epilog=_EXIT_TEXT, formatter_class=fmt)
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--data", metavar="DIR",
                    help="a folder of class folders (all images used), or a root with train/val/test folders")
    ev.add_argument("--features", metavar="FILE", help="labelled precomputed features (for a run trained with "
                    "--features; same formats and column names), instead of --data")
    ev.add_argument("--split", choices=("train", "val", "test"),
                    help="which split of a root with split folders (default: test, else val, else train)")
    ev.add_argument("--noise", help="run the trained circuit under this noise model instead of the one it was trained "
                    "with (e.g. depolarizing:p1=0.001,p2=0.01,readout=0.02; none: the ideal circuit)")
    ev.add_argument("--shots", type=int, help="measurement shots instead of the trained setting (default: as trained)")
    _add_inference_flags(ev, "print one JSON object instead of a table")

    pr = sub.add_parser("predict", help="classify images with a trained run",
                        description="Print the predicted class and its probability for each image.",
                        epilog=_EXIT_TEXT, formatter_class=fmt)
    pr.add_argument("run_dir", metavar="RUN_DIR")
    pr.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="image files or folders (searched recursively)")
    pr.add_argument("--features", metavar="FILE", help="precomputed features to classify instead of images (for a "
                    "run trained with --features; labels not needed)")
    _add_inference_flags(pr, "print JSON lines instead of a table")


def _add_compare_parser(sub, defaults: dict[str, Any]) -> None:
    from qtransfer.heads.registry import head_names  # no torch import

    fmt = _FMT
    cmp_ = sub.add_parser("compare", help="train several heads over several seeds and test the differences",
                          description="Train every head for every seed on the same split and the same cached features; "
                          "write results.json, results.csv, results.md and report.html with mean, 95%% CI and paired "
                          "significance tests against the quantum head.",
                          epilog=_EXIT_TEXT, formatter_class=fmt)
    cmp_.add_argument("--out", required=True, metavar="DIR", help="output directory")
    cmp_.add_argument("--heads", default=",".join(head_names()), help="comma-separated heads (default: %(default)s)")
    cmp_.add_argument("--seeds", type=int, default=10, help="number of seeds per head (default: %(default)s)")
    cmp_.add_argument("--config", metavar="FILE", help="TOML/YAML/JSON settings shared by every head")
    _add_train_flags(cmp_, defaults, skip=("head", "seed"))
    cmp_.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_cache_dir(cmp_)
    _add_progress(cmp_)


_SWEEP_EXAMPLES = """examples:
  qtransfer sweep examples/sweep.toml --out runs/sweep              # a process pool on every core
  qtransfer sweep examples/sweep.toml --out runs/sweep --workers 2  # rerun: finished trials are skipped
  qtransfer sweep examples/sweep.toml --out runs/sweep --ray local  # a local Ray instance
  qtransfer sweep examples/sweep.toml --out runs/sweep --ray auto   # join a running Ray cluster

sweep file (TOML, YAML or JSON):
  seeds = 10                     # a count (from [base] seed) or a list: [0, 1, 2]
  [base]                         # any train setting; flags given on the command line win
  data = "../shared/data/hymenoptera_train"
  [grid]                         # the trials are the cross product of these lists, times the seeds
  head = ["quantum", "linear"]
  depth = [2, 4, 6]
"""


def _add_sweep_parser(sub, defaults: dict[str, Any]) -> None:
    sw = sub.add_parser("sweep", help="train every combination of a grid of settings x seeds, in parallel, resumably",
                        description="Run the trials of a sweep file on cached features (extracted once per data set) "
                        "on a local process pool or on Ray; write DIR/trials/*.json, results.jsonl, sweep.json, "
                        "summary.md (mean, 95% CI, paired tests between heads per grid point) and report.html. "
                        "Rerunning skips finished trials.",
                        epilog=_SWEEP_EXAMPLES + "\n" + _EXIT_TEXT, formatter_class=_FMT)
    sw.add_argument("sweep_file", metavar="SWEEP_FILE", help="TOML, YAML or JSON sweep file")
    sw.add_argument("--out", required=True, metavar="DIR", help="output directory (rerun with the same DIR to resume)")
    sw.add_argument("--workers", type=int, help="processes of the local pool (default: the number of cores; "
                    "1 runs the trials in this process)")
    sw.add_argument("--ray", metavar="ADDRESS", help="run on Ray: 'local' starts a local instance, 'auto' or "
                    "HOST:PORT joins a cluster (needs: pip install 'qtransfer[ray]')")
    _add_train_flags(sw, defaults, skip=("seed",))
    sw.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_cache_dir(sw)
    _add_progress(sw)


def _add_tool_parsers(sub) -> None:
    fmt = _FMT
    rep = sub.add_parser("report", help="write report.html for a run, compare, sweep or paper directory",
                         description="Write a self-contained report.html (figures embedded) into the directory that "
                         "train, compare, sweep or paper wrote.",
                         epilog=_EXIT_TEXT, formatter_class=fmt)
    rep.add_argument("directory", metavar="DIR")

    cache = sub.add_parser("cache", help="list or clear the feature cache",
                           description="Inspect or empty the on-disk cache of backbone features.", formatter_class=fmt)
    cache.add_argument("action", choices=("list", "clear"))
    _add_cache_dir(cache)

    sub.add_parser("backbones", help="list the available backbones",
                   description="List the registered backbones with their feature width and default weights.")
    devices = sub.add_parser(
        "devices", help="list the calibrated device models for --noise (needs the hardware extra)",
        description="List the IBM fake backends --noise accepts (5 to 7 qubits) with their calibration date and "
        "median errors: two-qubit gate, single-qubit gate (sx), readout, and T1/T2. Needs "
        "pip install 'qtransfer[hardware]'.", epilog=_EXIT_TEXT, formatter_class=_FMT)
    devices.add_argument("--json", action="store_true", help="print one JSON object per device")


def _add_paper_parser(sub) -> None:
    from qtransfer.paper.common import EXPERIMENTS  # no torch import

    paper = sub.add_parser(
        "paper", help="reproduce the paper's experiments (spirals, qc, qq, cq, cifar, qpu) over seeds",
        description="Run the experiments of Mari et al., Quantum 4, 340 (2020) with the published settings over N "
        "seeds; write DIR/results.json, results.md and report.html (published | qtransfer mean and 95% CI | matched "
        "classical baseline, and the figures). 'all' runs what it can and says what to download for cq, cifar and qpu. "
        "qpu evaluates the trained ants/bees model on calibrated emulations of IBM devices (ideal, exact noisy, "
        "with shots, and with its ⟨Z⟩ calibrated per qubit) and trains it noise-aware on one.",
        epilog=_EXIT_TEXT, formatter_class=_FMT)
    paper.add_argument("experiment", choices=(*EXPERIMENTS, "all"), help="which experiment")
    paper.add_argument("--seeds", type=int, default=10,
                       help="number of seeds (default: %(default)s; with fewer than 3 the 95%% intervals say almost nothing)")
    paper.add_argument("--out", required=True, metavar="DIR", help="output directory (e.g. runs/paper)")
    paper.add_argument("--json", action="store_true", help="print results.json instead of the table")
    ants = paper.add_argument_group("cq and qpu (ants vs bees)")
    ants.add_argument("--data", help="data folder instead of the published Hymenoptera download (a root with "
                      "train/ and val/, or a folder of class folders, split 80/20)")
    ants.add_argument("--backbone", help="backbone instead of ResNet18 (qtransfer backbones lists them)")
    ants.add_argument("--weights", help="the backbone's weights file (or 'none')")
    ants.add_argument("--augment", type=int, help="cq: K augmented views per training image (the notebooks' "
                      "commented-out RandomResizedCrop + RandomHorizontalFlip); default 0, as the published runs")
    qpu = paper.add_argument_group("qpu")
    qpu.add_argument("--devices", help="calibrated devices, comma-separated (default: "
                     "fake_yorktown,fake_manila,fake_belem,fake_lima; any fake_* name that train --noise accepts)")
    qpu.add_argument("--shots", type=int, help="measurement shots per image on a device (default: 1024)")
    qpu.add_argument("--noise-aware", metavar="DEVICE", help="device to train noise-aware on (default: fake_yorktown; "
                     "'none' skips it)")
    _add_cache_dir(paper)
    _add_progress(paper)


def _train_config(args: argparse.Namespace, *, exclude: Sequence[str] = ()):
    from qtransfer.config import TrainConfig, load_config_file

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_config_file(args.config))
    flags = {name: getattr(args, name) for _, name, _, _ in _TRAIN_FLAGS if hasattr(args, name)}
    if hasattr(args, "strict"):
        flags["strict"] = True
    values.update(flags)
    for name in exclude:
        values.pop(name, None)
    weights = values.get("weights")
    if isinstance(weights, str) and weights.lower() != "none" and Path(weights).expanduser().is_file():
        values["weights"] = str(Path(weights).expanduser().resolve())
    data = values.get("data")
    if isinstance(data, str) and data != "hymenoptera":
        values["data"] = str(Path(data).expanduser().resolve())
    if isinstance(values.get("features"), str):
        values["features"] = str(Path(values["features"]).expanduser().resolve())
    return TrainConfig.from_dict(values, source=args.config or "command line")


def _cmd_train(args: argparse.Namespace) -> int:
    from qtransfer import api

    if args.resume:
        given = [flag for flag, name, _, _ in _TRAIN_FLAGS if hasattr(args, name)]
        if given or args.config:
            raise UsageError(f"--resume continues {args.resume} with its saved configuration; drop {', '.join(given) or '--config'}")
        config, out = None, Path(args.resume)
    else:
        if not args.out:
            raise UsageError("train needs --out RUN_DIR (or --resume RUN_DIR)")
        config, out = _train_config(args), Path(args.out)
    try:
        metrics = api.train(out=out, config=config, resume=bool(args.resume), cache_dir=args.cache_dir,
                            progress=not args.no_progress, report=not args.no_report)
    except KeyboardInterrupt:
        print(f"\nqtransfer: interrupted. Completed epochs are saved in {out / 'state.pt'}; "
              f"continue with: qtransfer train --resume {out}", file=sys.stderr)
        return 130
    print(json.dumps({"run_dir": str(out), "best_epoch": metrics.best_epoch,
                      **{f"{k}_accuracy": v.accuracy for k, v in metrics.final.items()}, "timing": metrics.timing.to_json()}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from qtransfer import api

    if (args.data is None) == (args.features is None):
        raise UsageError("evaluate needs --data DIR or --features FILE (one of them)")
    ev = api.evaluate(args.run_dir, args.data, features=args.features, split=args.split, cache_dir=args.cache_dir, weights=args.weights,
                      device=args.device, progress=not args.no_progress, noise=args.noise, shots=args.shots)
    if args.json:
        print(json.dumps(ev.to_json()))
        return 0
    m = ev.metrics
    device = f"; noise {ev.noise}" if ev.noise else ""
    if ev.device:
        device += f" (calibration {ev.device['calibration'][:10]}, layout {ev.device['layout']})"
    device += f"; {ev.shots} shots" if ev.shots else ""
    print(f"{ev.data} ({ev.split}): accuracy {m.accuracy:.4f}, loss {m.loss:.4f}, {m.n_images} images{device}")
    for name, acc in m.per_class_accuracy.items():
        print(f"  {name:<20} {'-' if acc is None else f'{acc:.4f}'}")
    from qtransfer.report.tables import confusion_text

    print("confusion matrix (rows: true class, columns: predicted class):")
    print(confusion_text(list(m.per_class_accuracy), m.confusion_matrix))
    for path, reason in ev.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from qtransfer import api

    if bool(args.inputs) == (args.features is not None):
        raise UsageError("predict needs image files or folders, or --features FILE (one of them)")
    records = api.predict(args.run_dir, args.inputs, features=args.features, cache_dir=args.cache_dir, weights=args.weights,
                            device=args.device, progress=not args.no_progress)
    for r in records:
        if args.json:
            print(json.dumps(r))
        elif "error" in r:
            print(f"{r['path']}\tskipped: {r['error']}")
        else:
            print(f"{r['path']}\t{r['pred']}\t{r['probability']:.4f}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from qtransfer import api

    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    results = api.compare(out=Path(args.out), heads=heads, seeds=args.seeds, config=_train_config(args),
                          cache_dir=args.cache_dir, progress=not args.no_progress, report=not args.no_report)
    from qtransfer.report.tables import markdown_summary

    print(markdown_summary(results))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from qtransfer import api

    flags = {name: getattr(args, name) for _, name, _, _ in _TRAIN_FLAGS if hasattr(args, name)}
    results = api.sweep(args.sweep_file, out=Path(args.out), workers=args.workers, ray=args.ray,
                        cache_dir=args.cache_dir, progress=not args.no_progress, report=not args.no_report, **flags)
    print((Path(args.out) / "summary.md").read_text(encoding="utf-8"), end="")
    failed = sum(not t.ok for t in results.trials)
    if failed:
        print(f"qtransfer sweep: {failed} trial(s) failed; see {Path(args.out) / 'summary.md'}; rerun the same "
              f"command to retry them", file=sys.stderr)
    return 7 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from qtransfer.outdir import check_writable
    from qtransfer.report import write_report

    if Path(args.directory).is_dir():
        check_writable(args.directory, "where report.html goes")
    print(write_report(Path(args.directory)))
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from qtransfer.features.extract import FeatureCache
    from qtransfer.paths import cache_dir

    cache = FeatureCache(cache_dir(args.cache_dir) / "features")
    if args.action == "clear":
        print(f"removed {cache.clear()} cache entries from {cache.root}")
        return 0
    stats = cache.stats()
    print(json.dumps({"root": str(cache.root), **stats}, default=str))
    return 0


def _cmd_paper(args: argparse.Namespace) -> int:
    from qtransfer import api

    options = {k: getattr(args, k) for k in ("data", "backbone", "weights", "augment", "devices", "shots", "noise_aware")}
    given = "".join(f" --{k.replace('_', '-')} {v}" for k, v in options.items() if v is not None)
    command = f"qtransfer paper {args.experiment} --seeds {args.seeds}{given}"
    results = api.run_paper(args.experiment, seeds=args.seeds, out=Path(args.out), cache_dir=args.cache_dir,
                            progress=not args.no_progress, command=command, **options)
    if args.json:
        print(json.dumps(results.to_json(), indent=2))
    else:
        from qtransfer.report.paper import markdown_summary

        print(markdown_summary(results))
        print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'report.html'}")
    return 0


def _cmd_backbones(args: argparse.Namespace) -> int:
    from qtransfer.features.backbones import BACKBONES

    for name, spec in BACKBONES.items():
        print(f"{name:<20} {spec.num_features:>5} features  DEFAULT={spec.default_weights:<14} {spec.description}")
    print(f"{'timm:NAME':<20} {'':>5}           any timm model (pip install 'qtransfer[timm]'); "
          f"preprocessing from its data config")
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from qtransfer.quantum.devices import FAKE_DEVICES, device_summary

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    summaries = {name: device_summary(name) for name in FAKE_DEVICES}  # first: without Qiskit, only the error
    if not args.json:
        print(f"{'device':<16} {'qubits':>6} {'calibration':<11} {'2q gate':>8} {'2q err':>7} {'1q err':>7} "
              f"{'readout':>7} {'T1 us':>6} {'T2 us':>6}")
    for name, d in summaries.items():
        if args.json:
            print(json.dumps(d))
            continue
        print(f"{name:<16} {d['qubits']:>6} {d['calibration'][:10]:<11} {d['two_qubit_gate'] or '-':>8} "
              f"{pct(d['median_2q_error']):>7} {pct(d['median_1q_error']):>7} {pct(d['median_readout_error']):>7} "
              f"{us(d['median_t1_us']):>6} {us(d['median_t2_us']):>6}")
    return 0


_COMMANDS = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "compare": _cmd_compare,
             "sweep": _cmd_sweep, "report": _cmd_report, "cache": _cmd_cache, "backbones": _cmd_backbones,
             "paper": _cmd_paper, "devices": _cmd_devices}


def _one_line_warnings() -> None:
    """qtransfer's own warnings (a skipped image, a split drawn from train) as one line each,
    without the source line Python adds; other libraries' warnings keep Python's format."""
    import warnings

    default = warnings.formatwarning
    if getattr(default, "one_line", False):  # already installed (main called again in one process)
        return

    def short(message, category, filename, lineno, line=None) -> str:
        if issubclass(category, UserWarning) and "qtransfer" in Path(filename).parts:
            return f"qtransfer: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    short.one_line = True  # type: ignore[attr-defined]
    warnings.formatwarning = short


def main(argv: Sequence[str] | None = None) -> int:
    """The command line on ``argv``; returns the exit code (:func:`run` is the console script)."""
    _one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except QTransferError as e:
        print(f"qtransfer {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except ImportError as e:
        if "pip install" not in str(e):  # not a missing optional extra: a bug
            raise
        print(f"qtransfer {args.command}: error: {e}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt:
        print("\nqtransfer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (qtransfer predict ... | head): stop quietly, as Unix tools do
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that what is still buffered does not fail again at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a file (redirected in-process)
        pass


def configure_process() -> None:
    """Settings the console script gives its own process before torch is imported.

    ``OMP_WAIT_POLICY=PASSIVE`` (unless already set): torch's OpenMP threads wait at a barrier
    by sleeping, not by spinning. On a machine where other processes keep cores busy, a
    spinning thread burns the time slices its descheduled partner needs: beside two busy
    processes on 2 cores, the worst of 5 cold ``qtransfer train`` runs took 48.8 s (21x idle)
    with spinning and 5.1 s with passive waiting (``python benchmarks/end_to_end.py
    --only-busy``); an idle cold run pays about 0.24 s for it (``benchmarks/cold_runs.py`` in
    alternation; README, "Speed"). libgomp reads the
    variable when torch loads it, so a Python session that imported torch first keeps its
    own setting: start Python with ``OMP_WAIT_POLICY=PASSIVE`` to get the same there.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run() -> None:
    """The ``qtransfer`` console script (and ``python -m qtransfer.cli``): :func:`main` in a process
    it owns, which exits when the command ends.

    Owning the process, it freezes what the first backbone build leaves alive out of Python's
    cyclic collector (:func:`qtransfer.collector.freeze_after_first_build`): a cold
    ``qtransfer train`` then spends no time re-scanning the imported torchvision.
    """
    configure_process()
    from qtransfer.collector import freeze_after_first_build

    freeze_after_first_build()
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        code = EXIT_BROKEN_PIPE
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
