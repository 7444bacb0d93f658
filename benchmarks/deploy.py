"""Deployment table of a config: per graph and per task, parameters, FLOPs, eager PyTorch vs ONNX Runtime
latency and peak memory (``tools/benchmark.py deploy CONFIG [CHECKPOINT]``).

Rows for a :class:`MultiTaskBEVModel`: the camera encoder (eager: ``model.camera_encoder`` with its
``index_add`` pooling; ONNX: the plan-based graph), the LiDAR encoder (one sample's voxels), and the
fuser + decoder + head graph once per task (``bev_heads[det]``...) and with all tasks; image models
have one row. Inputs are the first sample of the config's test set (batch 1). Latency is the median of
``--repeats`` timed runs after one warm-up, eager and ONNX Runtime timed in turn, round after round, so
load changes on a shared machine hit both alike; ``ort_vs_eager`` is their ratio in the same run.
FLOPs come from mmengine.analysis on the eager module (one multiply-add = one FLOP; "n/a" when its
tracer fails). Peak memory is the peak RSS growth of one run, measured in a forked child per row (so
rows do not inherit each other's peaks). CPU only (ONNX Runtime's CPU provider; its CUDA provider is
used when present and ``--cuda`` is given). Without a checkpoint the model is randomly initialised.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
import time
import warnings

import torch
from mmengine.config import DictAction

from . import track

DESCRIPTION = "deploy: params, FLOPs, eager PyTorch vs ONNX Runtime latency and peak memory per graph / task"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", nargs="?", help="checkpoint (default: random initialisation)")
    parser.add_argument("--onnx-dir", help="an existing export of CONFIG (default: export to a temporary dir)")
    parser.add_argument("--fixed-rig", action="store_true", help="export the camera graph with the plan baked in")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row and backend (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    parser.add_argument("--cuda", action="store_true", help="ONNX Runtime CUDA provider and torch on CUDA")
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--markdown", help="also write the table as markdown here")
    parser.add_argument("--no-flops", action="store_true", help="skip FLOP counting")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb(fn) -> float:
    """Peak RSS growth (MB) of one ``fn()`` call, in a forked child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            before = _rss_mb()
            fn()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
            os.write(write, f"{max(0.0, peak - before):.1f}".encode())
        finally:
            os._exit(0)
    os.close(write)
    data = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    return float(data) if data else float("nan")


def _flops(module, args) -> float | str:
    from mmengine.analysis import FlopAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer = FlopAnalyzer(module, args)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            return float(analyzer.total())
    except Exception:  # noqa: BLE001 - the tracer does not cover every op; the row says n/a
        return "n/a"


class _Call(torch.nn.Module):
    """A callable as a module (for FlopAnalyzer)."""

    def __init__(self, fn, owner: torch.nn.Module):
        super().__init__()
        self.fn, self.owner = fn, owner

    def forward(self, *args):
        return self.fn(*args)


def _rows_for_bev(model, runner, data, tasks, args) -> list[dict]:
    from perception_mtl.deploy.bev_graphs import BEVHeadsGraph
    from perception_mtl.deploy.bev_pool_plan import PoolPlan

    inputs, samples = data["inputs"], data["data_samples"]
    rows = []
    specs = []  # (name, params module, eager fn, ort fn, flop module, flop args)
    feats = {}
    if "camera" in model.modalities:
        img, calib = inputs["img"], inputs["calib"]
        with torch.no_grad():
            feats["camera"] = model.camera_encoder(img, calib)[0]
        if runner.manifest.get("fixed_rig"):
            camera_feeds = {"img": img.numpy()}
        else:
            plan = runner.pool_plan(calib[0])
            camera_feeds = {"img": img.numpy()}
            camera_feeds.update({n: t.numpy() for n, t in zip(PoolPlan.input_names(len(plan.levels)), plan.tensors())})
        session = runner.sessions["camera_encoder"]
        specs.append(
            (
                "camera_encoder",
                model.encoders["camera"],
                lambda: model.camera_encoder(img, calib),
                lambda s=session, f=camera_feeds: s(f),
                _Call(lambda x: model.camera_encoder(x, calib)[0], model),
                (img,),
            )
        )
    if "lidar" in model.modalities:
        vox = inputs["voxels"]
        lidar_args = (vox["voxels"], vox["num_points"], vox["coors"])
        with torch.no_grad():
            feats["lidar"] = model.lidar_encoder(*lidar_args, 1)
        lidar_feeds = {k: t.numpy() for k, t in zip(("voxels", "num_points", "coors"), lidar_args)}
        session = runner.sessions["lidar_encoder"]
        specs.append(
            (
                "lidar_encoder",
                model.encoders["lidar"],
                lambda: model.lidar_encoder(*lidar_args, 1),
                lambda s=session, f=lidar_feeds: s(f),
                _Call(lambda *a: model.lidar_encoder(*a, 1), model),
                lidar_args,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        for group in [(t,) for t in tasks] + ([tuple(tasks)] if len(tasks) > 1 else []):
            specs.append(_heads_spec(model, runner, feats, samples, group, tmp, args.threads, BEVHeadsGraph))
        rows = _measure(specs, args)
    return rows


def _heads_spec(model, runner, feats, samples, group, tmp, threads, graph_cls):
    from perception_mtl.deploy.bev_graphs import HEAD_EXTRA_INPUTS
    from perception_mtl.deploy.export import export_graph
    from perception_mtl.deploy.ort_runner import GraphSession

    graph = graph_cls(model, group).eval()
    head_args = [feats[m] for m in model.modalities]
    for task in group:
        if "lidar2ego" in HEAD_EXTRA_INPUTS.get(task, ()):
            head_args.append(model.heads[task].batch_lidar2ego(samples, head_args[0]))
    names = [f"{m}_bev" for m in model.modalities] + graph.extra_input_names()
    outs = graph.output_names(*head_args)
    name = f"bev_heads[{','.join(group)}]"
    path = os.path.join(tmp, f"heads_{'_'.join(group)}.onnx")
    spec = export_graph(graph, tuple(head_args), path, names, outs, {n: {0: "batch"} for n in names + outs}, 17)
    session = GraphSession(name, path, spec)
    feeds = {n: a.numpy() for n, a in zip(names, head_args)}
    parts = torch.nn.ModuleList([m for m in (model.fuser, model.decoder, model.task_scaling) if m is not None])
    parts.extend(model.heads[t] for t in group)
    return name, parts, lambda: graph(*head_args), lambda: session(feeds), graph, tuple(head_args)


def _measure(specs, args) -> list[dict]:
    times = {name: {"eager": [], "ort": []} for name, *_ in specs}
    with torch.no_grad():
        for _, _, eager, ort_fn, _, _ in specs:  # warm-up (ORT builds its kernels, torch its caches)
            eager()
            ort_fn()
        for _ in track(range(args.repeats), f"timing {len(specs)} rows x {args.repeats} rounds"):
            for name, _, eager, ort_fn, _, _ in specs:
                for backend, fn in (("eager", eager), ("ort", ort_fn)):
                    start = time.perf_counter()
                    fn()
                    times[name][backend].append(time.perf_counter() - start)
    rows = []
    for name, params_module, eager, ort_fn, flop_module, flop_args in specs:
        eager_ms = 1e3 * statistics.median(times[name]["eager"])
        ort_ms = 1e3 * statistics.median(times[name]["ort"])
        with torch.no_grad():
            flops = "skipped" if args.no_flops else _flops(flop_module, flop_args)
        rows.append(
            {
                "graph": name,
                "params_M": sum(p.numel() for p in params_module.parameters()) / 1e6,
                "GFLOPs": flops / 1e9 if isinstance(flops, float) else flops,
                "eager_ms": eager_ms,
                "ort_ms": ort_ms,
                "ort_vs_eager": ort_ms / eager_ms,
                "eager_peak_MB": _peak_mb(lambda fn=eager: torch.no_grad()(fn)()),
                "ort_peak_MB": _peak_mb(ort_fn),
            }
        )
    return rows


def _markdown(rows: list[dict]) -> str:
    columns = list(rows[0])
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def run(args) -> list[dict]:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from perception_mtl.deploy.export import export, load_model, sample_batches
    from perception_mtl.deploy.ort_runner import GraphSession, ORTBEVRunner
    from perception_mtl.registry import MODELS

    if args.threads > 0:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # GraphSession reads it for ONNX Runtime
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get("default_scope", "perception_mtl"))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            model = MODELS.build(cfg.model)
            model.init_weights()
            checkpoint = os.path.join(tmp, "random.pth")
            torch.save({"state_dict": model.state_dict(), "meta": {}}, checkpoint)
        onnx_dir = args.onnx_dir or os.path.join(tmp, "onnx")
        if not args.onnx_dir:
            export(args.config, checkpoint, onnx_dir, fixed_rig=args.fixed_rig, cfg_options=args.cfg_options)
        model = load_model(cfg, checkpoint)
        data = model.data_preprocessor(sample_batches(cfg, [0])[0], False)
        if type(model).__name__ == "MultiTaskBEVModel":
            runner = ORTBEVRunner(model, onnx_dir, cfg)
            rows = _rows_for_bev(model, runner, data, runner.tasks, args)
        else:
            from perception_mtl.deploy.export import TensorForward
            from perception_mtl.deploy.ort_runner import load_manifest

            ((name, spec),) = load_manifest(onnx_dir)["graphs"].items()
            session = GraphSession(name, os.path.join(onnx_dir, spec["file"]), spec)
            x = data["inputs"] if isinstance(data["inputs"], torch.Tensor) else torch.stack(list(data["inputs"]))
            wrapper = TensorForward(model).eval()
            rows = _measure(
                [(name, model, lambda: wrapper(x), lambda: session({"inputs": x.numpy()}), wrapper, (x,))], args
            )
    for row in rows:
        row["config"] = os.path.basename(args.config)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(_markdown(rows) + "\n")
    return rows
