"""What each ``derain`` command does, given the arguments :func:`derain_lib.cli.check_args`
passed; imports torch (:func:`derain_lib.cli.main` imports this module only when needed)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from argparse import Namespace
from pathlib import Path

from tqdm import tqdm

from . import device, inference, labels
from .backends import export_onnx, select
from .config import Config, check_tile, config_from_dict, load_config
from .data import catalog, datasets, embedded, fetch, io, patches, sources
from .errors import DerainError
from .fsutil import shown_path, special_entries
from .info import FETCH_TARGETS, RELEASED, cache_dir
from .metrics import json_safe, score_folder, score_pair, summarize
from .precision import choose_auto
from .runs import get_or_run, list_runs, open_run, results_root, run_state
from .study.claims import recompute
from .study.pipeline import run_pipeline
from .train import TENSORBOARD_DIR, dist_info, planned_steps, steps_per_epoch, training_patches
from .weights import load_model, weight_items


def _err(line: str) -> None:  # what a command chose and why, a note or a failure
    print(line, file=sys.stderr)


def _cmd_data_list(args: Namespace) -> None:
    for e in catalog.CATALOG.values():
        print(f"{e.name:<17} {e.title}")
        for split, s in e.splits.items():
            man = f"manifest {s.manifest}" if s.manifest else "no manifest"
            print(f"  {split:<5} {s.pairs:>6} pairs, {s.pairs + s.clean:>6} files, "
                  f"{s.image_size}; folder {s.folder}; {man}")  # fmt: skip
        print(f"  layout: {e.layout}: {e.description}")
        for src in e.sources:
            print(f"  source: {src.label}: {src.url}")


def _cmd_data_prepare(args: Namespace) -> None:
    if args.name.lower() != "embedded":
        report = catalog.prepare(args.name, args.source, args.split, args.index_out,
                                 args.allow_mismatch, decode=not args.headers_only)  # fmt: skip
        print("\n".join(report.lines()))
        return
    root = Path(args.source) if args.source else None
    for size in [args.size] if args.size else list(embedded.SIZES):
        t = time.perf_counter()
        folder = embedded.build_embedded(size, root)
        print(f"embedded {size}: {folder} ready in {time.perf_counter() - t:.1f} s")
        for preset, split in [(p, s) for p in ("light", "heavy") for s in ("train", "test")]:
            ds = embedded.embedded_dataset(preset, split, size, root)
            psnr = sum(score_pair(*ds.load(i))[0] for i in range(len(ds))) / len(ds)
            print(f"  {preset} {split} {len(ds)} pairs, mean Input PSNR {psnr:.2f} dB")


def _cmd_data_scan(args: Namespace) -> None:
    problems = io.scan_images(Path(args.folder), decode=not args.headers_only)
    if problems:
        print("\n".join(msg for _, msg in problems))
        raise DerainError(f"{args.folder}: {len(problems)} unreadable image file(s)")
    print(f"{args.folder}: every image reads")


def _cmd_data_patches(args: Namespace) -> None:
    stride = args.stride or patches.PAPER_STRIDES.get(args.paper, 40)
    hflip = args.hflip or patches.PAPER_HFLIP.get(args.paper, False)
    ds, size = datasets.open_dataset(args.folder), args.patch or patches.PAPER_PATCH
    print(patches.PatchSet(ds, size, stride, hflip).summary())


def _cmd_fetch(args: Namespace) -> None:
    try:  # a summary line per target, verified
        for t in FETCH_TARGETS if args.target == "all" else (args.target,):
            if t != "weights":
                print(catalog.fetch_dataset(t))
                continue
            n = fetch.fetch_items(weight_items(), cache_dir(), print)
            print(f"weights: {n} downloaded, all {len(RELEASED)} verified in {cache_dir()}")
    except fetch.Offline as e:
        if not args.stand_ins:
            raise fetch.Offline(f"offline: {e}; point {fetch.MIRROR_ENV} at a local mirror (a "
                                "folder or URL), or pass --stand-ins to go on with the embedded "
                                "stand-ins instead") from None  # fmt: skip
        print(f"offline: {e}; going on with the embedded stand-ins (--stand-ins)")


def _run(cfg: Config, args: Namespace, **options: object) -> None:
    """Get or run ``cfg`` and print its scores (rank 0 only); a run done before: a cache hit."""
    started = time.time()
    run = get_or_run(cfg, args.results, not args.no_progress, wait=args.wait, **options)
    if dist_info()[0] != 0:
        return
    m, cached = run.metrics, (run.dir / "metrics.json").stat().st_mtime < started
    print(f"run {run.key}: {run.dir}" + (" (from the run cache: nothing recomputed)" * cached))
    for r in run.per_image.itertuples():
        print(f"  {r.name:<28} {r.psnr:9.4f} {r.ssim:7.4f}")
    print(f"  {'mean of ' + str(m['n']):<28} {m['psnr']:9.4f} {m['ssim']:7.4f}")


def _cmd_train(args: Namespace) -> None:
    overrides = ([f"dataset={args.dataset}"] if args.dataset else []) + list(args.set or [])
    cfg = load_config(args.config, overrides)
    t = cfg.train
    n = t.max_steps and len(training_patches(cfg, sources.open_data(cfg.data.train, cfg.data.root)))
    if t.max_steps and (total := planned_steps(cfg, n)) < t.max_steps:  # refused if set here
        why = (f"train.max_steps={t.max_steps} is more than train.epochs={t.epochs} allow: "
               f"{steps_per_epoch(cfg, n)} steps per epoch ({n} patches, batch {t.batch_size}), "
               f"{total} in all; raise train.epochs or lower train.max_steps")  # fmt: skip
        if any(o.split("=")[0].strip() == "train.max_steps" for o in overrides):
            raise DerainError(why)
        _err(f"derain: note: {why}; training {total} steps")
    root = Path(cfg.data.root).expanduser()  # the data as named: a folder, or the embedded set
    train, test = (s if s.startswith("embedded:") else shown_path(root / Path(s).expanduser())
                   for s in (cfg.data.train, cfg.data.test))  # fmt: skip
    _err(f"data: training {train}, test {test}")
    _run(cfg, args)


def _cmd_evaluate(args: Namespace) -> None:
    if args.precision == "auto":  # scores follow the table protocol
        args.precision, why = choose_auto("cpu", protocol=True)
        _err(f"precision auto: {args.precision} ({why})")
    name = args.model or load_model(args.weights, weights_dir=args.weights_dir,
                                    strict_config=args.strict_config).model_name  # fmt: skip
    evals = ("tile", "overlap", "max_images", "precision", "stages")
    cfg = config_from_dict({
        "name": "evaluate", "dataset": args.data, "data": {"test": args.data, "root": "."},
        "model": {"name": name, "weights": args.weights}, "train": {"device": args.device},
        "eval": {k: getattr(args, k) for k in evals}}, args.set)  # fmt: skip
    ds = None if args.data.startswith("embedded:") else datasets.open_dataset(args.data)
    if ds is not None and ds.unpaired and not args.ignore_unpaired:  # before a run starts
        n, names = len(ds.unpaired), ", ".join(p.name for p in ds.unpaired[:5])
        raise DerainError(
            f"{ds.root}: {n} image(s) without a pair ({names}{', ...' if n > 5 else ''}); pass "
            f"--ignore-unpaired to score the {len(ds)} pair(s) anyway"
        )
    _run(cfg, args, weights_dir=args.weights_dir, backend=args.backend)


def _cmd_runs(args: Namespace) -> None:
    if args.action == "show":
        run = open_run(args.key, args.results)
        shown = {"dir": str(run.dir), "status": run.status, **run_state(run),
                 "metrics": run.metrics, "provenance": run.provenance}  # fmt: skip
        print(json.dumps(shown, indent=1))
        return
    runs = list_runs(args.results)
    if not runs:
        print(f"no runs under {results_root(args.results) / 'runs'}")
        return
    if args.action == "prune":
        if not args.stale:
            raise DerainError("runs prune: say what to remove: --stale")
        stale = [r for r in runs if r.stale]
        for r in stale:
            shutil.rmtree(r.dir)
            print(f"removed stale run {r.key}: {r.dir}")
        print(f"{len(stale)} stale runs removed, {len(runs) - len(stale)} kept")
        return
    print("run          status     code        PSNR    SSIM  profile · data · model · loss · seed")
    for r, label in zip(runs, labels.run_labels(runs, status=False), strict=True):
        if r.damage:
            print(f"{r.key:<12} {'damaged':<10} {r.damage}")
            continue
        m, code = r.metrics, "stale" if r.stale else "current"
        ps, ss = (f"{m['psnr']:8.3f}", f"{m['ssim']:7.4f}") if m else (f"{'-':>8}", f"{'-':>7}")
        why = r.degenerate  # a property that reads the run's logs
        print(f"{r.key:<12} {'degenerate' if why else r.status:<10} {code:<7} {ps} {ss}  {label}")
        if why:
            print(f"{'':<12} degenerate: {why}")
    if any((r.dir / TENSORBOARD_DIR).is_dir() for r in runs):
        where = shown_path(results_root(args.results) / "runs")
        print(f"training curves: tensorboard --logdir {where}   (each run's {TENSORBOARD_DIR}/)")


def _cmd_derain(args: Namespace) -> None:
    check_tile(args.tile, 0, "--")
    files = inference.expand_inputs(args.inputs)
    odd = [m for item in args.inputs if Path(item).is_dir() for m in special_entries(item)]
    for problem in odd:  # named and counted as failures, never opened (a FIFO would block)
        _err(f"derain: error: {problem}")
    # the outputs' refusals (an input as output, an existing file) before the model loads
    targets = inference.output_paths(files, args.output, args.overwrite or args.skip_existing)
    if args.skip_existing:  # the same outputs, less those already written
        files = [f for f, t in zip(files, targets, strict=True) if not t.exists()]
        _err(f"{len(targets) - len(files)} skipped: output exists (--skip-existing)")
        if not files:
            return
    skipped = len(targets) - len(files)
    lw = load_model(args.weights, args.model, weights_dir=args.weights_dir,
                    strict_config=args.strict_config, device=args.device)  # fmt: skip
    _err(f"model: {lw.describe()} on {device.device_name(inference.model_device(lw.model))}")
    model, precision = select(lw.model, lw.sha256, args.backend, args.precision, args.stages, _err)
    done, failed, first = 0, len(odd), odd[0] if odd else ""
    batch = inference.derain_files(model, files, args.output, args.quantize, args.tile,
                                   args.overwrite, stages=args.stages,
                                   precision=precision)  # fmt: skip
    bar = tqdm(batch, total=len(files), desc="derain", unit="image", disable=args.no_progress)
    for _, written, problem in bar:
        if written is not None:
            bar.write(str(written), file=sys.stdout)  # each output named as it is written
            sys.stdout.flush()
            done += 1
        else:
            bar.write(f"derain: error: {problem}", file=sys.stderr)
            failed, first = failed + 1, first or problem
    _err(f"{done} derained, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        raise DerainError(f"{failed} of {done + failed} input image(s) could not be derained "
                          f"(first: {first})")  # fmt: skip


def _cmd_export(args: Namespace) -> None:
    lw = load_model(args.weights, args.model, weights_dir=args.weights_dir,
                    strict_config=args.strict_config)  # fmt: skip
    inference.check_inference_options(lw.model, args.stages, "fp32")
    m = export_onnx(lw.model, args.output, args.stages, lw.sha256)
    print(f"{args.output}: {lw.describe()}; opset {m['opset']}, dynamic height and width, "
          f"max abs vs eager {m['max_abs_vs_eager']:.1e} ({m['checked_with']}); manifest "
          f"{args.output}.json")  # fmt: skip


def _cmd_score(args: Namespace) -> None:
    rows, pairing = score_folder(args.pred_dir, args.gt_dir, quantize_mode="round")
    skipped, lists = pairing.skipped, ("unpaired_pred", "unpaired_gt", "skipped")
    summary = summarize(rows) | {k: getattr(pairing, k) for k in lists}
    if args.json:
        print(json.dumps(json_safe(summary), indent=1, allow_nan=False, default=str))
    elif rows:  # no table and no NaN mean when nothing was scored
        print(f"{'image':<28} {'ground truth':<28} {'PSNR':>9} {'SSIM':>7}")
        for r in rows:
            print(f"{r.name:<28} {r.gt:<28} {r.psnr:9.4f} {r.ssim:7.4f}")
        print(f"{'mean of ' + str(summary['n']):<57} {summary['psnr']:9.4f} {summary['ssim']:7.4f}")
    for p in [] if args.json else pairing.unpaired_pred + pairing.unpaired_gt:
        print(f"unpaired: {p}")
    for why in skipped:
        _err(f"derain: error: skipped: {why}")
    if not rows:
        raise DerainError(f"no image pairs scored between {args.pred_dir} and {args.gt_dir}")
    if skipped:
        raise DerainError(f"{len(skipped)} pair(s) skipped, {len(rows)} scored")
    if gt := pairing.unpaired_gt:
        raise DerainError(f"{gt[0]}: ground truth with no prediction in {args.pred_dir} "
                          f"({len(gt)} such file(s); {len(rows)} pair(s) scored)")  # fmt: skip


def _cmd_reproduce(args: Namespace) -> None:
    device.resolve_device(args.device)  # a CUDA device that is not there fails before any notebook
    os.environ["DERAIN_BACKEND"] = args.backend  # the notebooks' kernels inherit it
    run_pipeline(args.profile, args.data_root, args.weights_dir, args.set,
                 use_prepared=args.use_prepared, wait=args.wait, device=args.device,
                 launcher=args.launcher, launcher_options=args.launcher_set)  # fmt: skip


def _cmd_claims(args: Namespace) -> None:
    md = recompute(args.profile)
    where = shown_path(md.parent)
    print(f"claims.csv and {md.name} recomputed from {where}/scores: {where}")


#: ``args.command`` -> its ``_cmd_<name>`` (``data scan``: ``_cmd_data_scan``).
COMMANDS = {k[5:].replace("_", " "): f for k, f in globals().items() if k.startswith("_cmd_")}
