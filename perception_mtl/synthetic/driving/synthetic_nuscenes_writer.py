"""Writes a synthetic dataset in nuScenes' exact on-disk layout and schema.

Output under ``out_dir``::

    v1.0-mini/*.json                      13 tables (v1.0-trainval for more than 10 scenes)
    samples/LIDAR_TOP/*.pcd.bin           key-frame sweeps, N x 5 float32 (x, y, z, intensity, ring)
    sweeps/LIDAR_TOP/*.pcd.bin            non-key sweeps between key frames
    samples/CAM_*/*.jpg                   six cameras per key frame
    maps/expansion/<location>.json        map expansion (v1.3) per location used
    maps/<token>.png                      semantic prior (map table), 0.1 m per pixel
    gts/<scene>/<sample_token>/labels.npz Occ3D-nuScenes occupancy
    synthetic_info.json                   generator settings (not part of nuScenes)

Scene names come from the devkit's splits (``mini_train`` / ``mini_val``, or ``train`` / ``val``),
so the standard splits select them. Everything is a deterministic function of the seed; samples
are simulated independently, in parallel when ``workers > 1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass

import cv2
import numpy as np
from mmengine.utils import ProgressBar
from nuscenes.utils import splits

from perception_mtl.datasets.converters.nuscenes_schema import (
    ATTRIBUTES,
    CATEGORIES,
    TABLES,
    VISIBILITY,
    visibility_token,
)

from .city_map import LOCATIONS, CityMap
from .geometry import matrix_to_quaternion, yaw_to_quaternion
from .ground_raster import GroundRaster
from .map_expansion_encoder import MapExpansionEncoder
from .sample_simulator import ANNOTATION_RANGE, SampleSimulator
from .scene_plan import ScenePlan
from .scene_planner import plan_scene
from .sensor_rig import CAMERA_CHANNELS, LIDAR_CHANNEL


def scene_names(num_scenes: int) -> tuple[str, list[str]]:
    """The nuScenes version and scene names of a synthetic dataset with ``num_scenes`` scenes.

    Up to 10 scenes use v1.0-mini and its scene names, alternating so that any two scenes include
    one of each split; beyond, v1.0-trainval names with one validation scene in six.
    """
    if num_scenes <= 0:
        raise ValueError(f"num_scenes must be positive, got {num_scenes}")
    if num_scenes <= len(splits.mini_train) + len(splits.mini_val):
        train, val = list(splits.mini_train), list(splits.mini_val)
        order = train[:1] + val[:1] + train[1:4] + val[1:] + train[4:]
        return "v1.0-mini", order[:num_scenes]
    if num_scenes > len(splits.train) + len(splits.val):
        raise ValueError(f"at most {len(splits.train) + len(splits.val)} scenes (nuScenes train + val)")
    train, val = iter(splits.train), iter(splits.val)
    names = []
    for i in range(num_scenes):
        names.append(next(val, None) if i % 6 == 1 else next(train, None))
        if names[-1] is None:
            names[-1] = next(train, None) or next(val)
    return "v1.0-trainval", names


@dataclass
class _SampleResult:
    scene: int
    index: int
    lidar: list[tuple[float, np.ndarray, str, bool]]  # (time, ego2global, filename, is_key_frame), oldest first
    cameras: dict[str, tuple[float, np.ndarray, str]]
    actor_ids: np.ndarray
    distances: np.ndarray
    num_lidar_pts: np.ndarray
    visibility: np.ndarray
    num_points: int


# Worker state, set before the pool forks (plans and rasters are large: not pickled per job).
_STATE: dict = {}


def _token(seed: int, *parts) -> str:
    return hashlib.md5("/".join(str(p) for p in (seed, *parts)).encode()).hexdigest()


def _run_job(job: tuple[int, int]) -> _SampleResult:
    scene_idx, index = job
    state = _STATE
    plan: ScenePlan = state["plans"][scene_idx]
    sims = state.setdefault("simulators", {})
    if plan.location not in sims:
        sims[plan.location] = SampleSimulator(state["grounds"][plan.location], state["image_size"], state["occupancy"])
    out = sims[plan.location].simulate(plan, index)
    root = state["out_dir"]
    lidar = []
    for frame in [*out.sweeps, out.lidar]:
        is_key = frame is out.lidar
        folder = "samples" if is_key else "sweeps"
        name = f"{folder}/{LIDAR_CHANNEL}/{plan.log_name}__{LIDAR_CHANNEL}__{plan.timestamp_us(frame.time)}.pcd.bin"
        frame.data.points.astype(np.float32).tofile(osp.join(root, name))
        lidar.append((frame.time, frame.ego2global, name, is_key))
    cameras = {}
    for channel, frame in out.cameras.items():
        name = f"samples/{channel}/{plan.log_name}__{channel}__{plan.timestamp_us(frame.time)}.jpg"
        ok = cv2.imwrite(osp.join(root, name), frame.data.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise OSError(f"could not write {osp.join(root, name)}")
        cameras[channel] = (frame.time, frame.ego2global, name)
    if out.occupancy:
        sample_token = _token(state["seed"], "sample", scene_idx, index)
        folder = osp.join(root, "gts", plan.name, sample_token)
        os.makedirs(folder, exist_ok=True)
        np.savez_compressed(osp.join(folder, "labels.npz"), **out.occupancy)
    return _SampleResult(
        scene_idx,
        index,
        lidar,
        cameras,
        out.actor_ids,
        out.distances,
        out.num_lidar_pts,
        out.visibility,
        len(out.lidar.data.points),
    )


# Sweeps merged into each database object: the demo configs' sweeps_num (0.5 s at 6 Hz, nuScenes' span).
GT_DATABASE_SWEEPS = 3


class SyntheticNuScenesWriter:
    """Generates and writes the synthetic dataset, then its info files.

    Args:
        out_dir: dataset root to create.
        num_scenes: scenes (10 = nuScenes-mini's scene list).
        samples_per_scene: key frames per scene (2 Hz).
        seed: generator seed.
        sweeps_per_sample: non-key LiDAR sweeps between key frames, evenly spaced (2: 6 Hz; nuScenes: 9, 20 Hz).
        image_width: camera width in pixels (height = 9/16 of it).
        workers: parallel processes (default: up to 2).
        with_occupancy: write Occ3D labels.
        write_infos: run the info converter afterwards.
        with_gt_database: also write the training split's object database for copy-paste augmentation
            (``nuscenes_gt_database/`` + ``nuscenes_dbinfos_train.pkl``; needs ``write_infos``).
        progress: show a progress bar.
    """

    def __init__(
        self,
        out_dir: str,
        num_scenes: int = 10,
        samples_per_scene: int = 40,
        seed: int = 0,
        sweeps_per_sample: int = 2,
        image_width: int = 400,
        workers: int | None = None,
        with_occupancy: bool = True,
        write_infos: bool = True,
        with_gt_database: bool = True,
        progress: bool = True,
    ) -> None:
        if samples_per_scene < 2:
            raise ValueError("samples_per_scene must be at least 2 (annotations need neighbours for velocity)")
        self.out_dir = out_dir
        self.num_scenes, self.samples_per_scene, self.seed = num_scenes, samples_per_scene, seed
        self.sweeps_per_sample, self.image_width = sweeps_per_sample, image_width
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.with_occupancy, self.write_infos, self.progress = with_occupancy, write_infos, progress
        self.with_gt_database = with_gt_database and write_infos
        self.version, self.names = scene_names(num_scenes)

    def tok(self, *parts) -> str:
        return _token(self.seed, *parts)

    def plan(self) -> tuple[dict[str, CityMap], dict[str, GroundRaster], list[ScenePlan]]:
        """The cities, their ground rasters and the scene plans (deterministic; nothing is written)."""
        loc_order = np.random.default_rng(self.seed).permutation(len(LOCATIONS))
        scene_locations = [LOCATIONS[loc_order[i % len(LOCATIONS)]] for i in range(self.num_scenes)]
        cities = {loc: CityMap(loc, self.seed) for loc in dict.fromkeys(scene_locations)}
        grounds = {loc: GroundRaster(city) for loc, city in cities.items()}
        plans = [
            plan_scene(
                cities[loc], i, name, self.seed, self.samples_per_scene, self.sweeps_per_sample, self.image_width
            )
            for i, (loc, name) in enumerate(zip(scene_locations, self.names))
        ]
        return cities, grounds, plans

    def run(self) -> dict:
        """Writes everything; returns a summary (version, counts, seconds, bytes)."""
        start = time.time()
        root = self.out_dir
        for channel in (LIDAR_CHANNEL, *CAMERA_CHANNELS):
            os.makedirs(osp.join(root, "samples", channel), exist_ok=True)
        os.makedirs(osp.join(root, "sweeps", LIDAR_CHANNEL), exist_ok=True)
        os.makedirs(osp.join(root, "maps", "expansion"), exist_ok=True)
        os.makedirs(osp.join(root, self.version), exist_ok=True)

        cities, grounds, plans = self.plan()
        image_size = (plans[0].rig.image_width, plans[0].rig.image_height)
        _STATE.clear()
        _STATE.update(
            plans=plans,
            grounds=grounds,
            out_dir=root,
            image_size=image_size,
            seed=self.seed,
            occupancy=self.with_occupancy,
        )
        jobs = [(s, k) for s in range(len(plans)) for k in range(self.samples_per_scene)]
        results = self._simulate(jobs)
        _STATE.clear()

        tables = self._tables(plans, results, image_size)
        tables["map"] = self._write_maps(cities, grounds, plans)
        for name in TABLES:
            with open(osp.join(root, self.version, f"{name}.json"), "w") as f:
                json.dump(tables[name], f, indent=0)
        summary = {
            "version": self.version,
            "scenes": self.num_scenes,
            "samples": len(jobs),
            "sweeps_per_sample": self.sweeps_per_sample,
            "image_size": list(image_size),
            "annotations": len(tables["sample_annotation"]),
            "seed": self.seed,
            "locations": sorted(cities),
            "generation_seconds": round(time.time() - start, 1),
        }
        if self.write_infos:
            from perception_mtl.datasets.converters.nuscenes_info_converter import NuScenesInfoConverter

            NuScenesInfoConverter(root, self.version, root, progress=self.progress).run()
        if self.with_gt_database:
            from perception_mtl.datasets.converters.gt_database_writer import write_gt_database

            summary["gt_database_objects"] = write_gt_database(
                root, sweeps_num=GT_DATABASE_SWEEPS, progress=self.progress
            )
        summary["total_seconds"] = round(time.time() - start, 1)
        summary["bytes"] = _folder_size(root)
        with open(osp.join(root, "synthetic_info.json"), "w") as f:
            json.dump(summary, f, indent=2)
        return summary

    def _simulate(self, jobs: list[tuple[int, int]]) -> list[_SampleResult]:
        if self.progress:
            print(f"simulating {len(jobs)} synthetic nuScenes samples", flush=True)
        bar = ProgressBar(len(jobs), file=sys.stdout) if self.progress else None
        results = []
        if self.workers > 1:
            import multiprocessing as mp

            # fork shares the plans and rasters with the workers without pickling them.
            with mp.get_context("fork").Pool(self.workers) as pool:
                for result in pool.imap_unordered(_run_job, jobs, chunksize=1):
                    results.append(result)
                    if bar:
                        bar.update()
        else:
            for job in jobs:
                results.append(_run_job(job))
                if bar:
                    bar.update()
        if bar:
            sys.stdout.write("\n")
        return sorted(results, key=lambda r: (r.scene, r.index))

    # ----------------------------------------------------------------- tables
    def _tables(self, plans: list[ScenePlan], results: list[_SampleResult], image_size) -> dict[str, list]:
        tok = self.tok
        t: dict[str, list] = {name: [] for name in TABLES}
        t["category"] = [
            {"token": tok("category", n), "name": n, "description": d, "index": i}
            for i, (n, d) in enumerate(CATEGORIES)
        ]
        cat_token = {c["name"]: c["token"] for c in t["category"]}
        t["attribute"] = [{"token": tok("attribute", n), "name": n, "description": d} for n, d in ATTRIBUTES]
        attr_token = {a["name"]: a["token"] for a in t["attribute"]}
        t["visibility"] = [{"token": k, "level": lv, "description": d} for k, lv, d in VISIBILITY]
        channels = (LIDAR_CHANNEL, *CAMERA_CHANNELS)
        t["sensor"] = [
            {"token": tok("sensor", c), "channel": c, "modality": "lidar" if c == LIDAR_CHANNEL else "camera"}
            for c in channels
        ]
        by_scene: dict[int, list[_SampleResult]] = {}
        for r in results:
            by_scene.setdefault(r.scene, []).append(r)
        for plan in plans:
            s = plan.index
            log_token = tok("log", s)
            t["log"].append(
                {
                    "token": log_token,
                    "logfile": plan.log_name,
                    "vehicle": plan.vehicle,
                    "date_captured": plan.date_captured,
                    "location": plan.location,
                }
            )
            for c in channels:
                cal = plan.rig.sensors[c]
                t["calibrated_sensor"].append(
                    {
                        "token": tok("calibrated_sensor", s, c),
                        "sensor_token": tok("sensor", c),
                        "translation": [float(v) for v in cal.sensor2ego[:3, 3]],
                        "rotation": matrix_to_quaternion(cal.sensor2ego[:3, :3]),
                        "camera_intrinsic": [] if cal.intrinsic is None else cal.intrinsic.tolist(),
                    }
                )
            samples = by_scene[s]
            sample_tokens = [tok("sample", s, r.index) for r in samples]
            for k, r in enumerate(samples):
                t["sample"].append(
                    {
                        "token": sample_tokens[k],
                        "timestamp": plan.timestamp_us(plan.sample_times[r.index]),
                        "prev": sample_tokens[k - 1] if k > 0 else "",
                        "next": sample_tokens[k + 1] if k + 1 < len(samples) else "",
                        "scene_token": tok("scene", s),
                    }
                )
            t["scene"].append(
                {
                    "token": tok("scene", s),
                    "log_token": log_token,
                    "nbr_samples": len(samples),
                    "first_sample_token": sample_tokens[0],
                    "last_sample_token": sample_tokens[-1],
                    "name": plan.name,
                    "description": plan.description,
                }
            )
            self._sample_data(t, plan, samples, sample_tokens, image_size)
            self._annotations(t, plan, samples, sample_tokens, cat_token, attr_token)
        return t

    def _sample_data(self, t, plan: ScenePlan, samples, sample_tokens, image_size) -> None:
        tok, s = self.tok, plan.index
        chains: dict[str, list[dict]] = {c: [] for c in (LIDAR_CHANNEL, *CAMERA_CHANNELS)}
        for r, sample_token in zip(samples, sample_tokens):
            for time_s, ego, name, is_key in r.lidar:
                chains[LIDAR_CHANNEL].append(
                    {"sample_token": sample_token, "time": time_s, "ego": ego, "filename": name, "is_key_frame": is_key}
                )
            for channel, (time_s, ego, name) in r.cameras.items():
                chains[channel].append(
                    {"sample_token": sample_token, "time": time_s, "ego": ego, "filename": name, "is_key_frame": True}
                )
        for channel, chain in chains.items():
            tokens = [tok("sample_data", s, channel, i) for i in range(len(chain))]
            for i, rec in enumerate(chain):
                ts = plan.timestamp_us(rec["time"])
                ego = rec["ego"]
                # As in nuScenes, each sample_data has its own ego pose, with the same token.
                t["ego_pose"].append(
                    {
                        "token": tokens[i],
                        "timestamp": ts,
                        "rotation": matrix_to_quaternion(ego[:3, :3]),
                        "translation": [float(v) for v in ego[:3, 3]],
                    }
                )
                is_cam = channel != LIDAR_CHANNEL
                t["sample_data"].append(
                    {
                        "token": tokens[i],
                        "sample_token": rec["sample_token"],
                        "ego_pose_token": tokens[i],
                        "calibrated_sensor_token": tok("calibrated_sensor", s, channel),
                        "timestamp": ts,
                        "fileformat": "jpg" if is_cam else "pcd",
                        "is_key_frame": rec["is_key_frame"],
                        "height": image_size[1] if is_cam else 0,
                        "width": image_size[0] if is_cam else 0,
                        "filename": rec["filename"],
                        "prev": tokens[i - 1] if i > 0 else "",
                        "next": tokens[i + 1] if i + 1 < len(chain) else "",
                    }
                )

    def _annotations(self, t, plan: ScenePlan, samples, sample_tokens, cat_token, attr_token) -> None:
        tok, s = self.tok, plan.index
        actors = plan.actors
        reported: dict[int, dict[int, tuple]] = {}
        for k, r in enumerate(samples):
            for a, d, n, v in zip(r.actor_ids, r.distances, r.num_lidar_pts, r.visibility):
                reported.setdefault(int(a), {})[k] = (float(d), int(n), float(v))
        for a in sorted(reported):
            frames = reported[a]
            inside = [k for k, (d, _, _) in frames.items() if d <= ANNOTATION_RANGE]
            if not inside:
                continue
            # Annotate every key frame between the first and last one in range (no gaps in a track).
            ks = [k for k in range(min(inside), max(inside) + 1) if k in frames]
            ann_tokens = [tok("sample_annotation", s, a, k) for k in ks]
            attribute = actors.attributes[a]
            for j, k in enumerate(ks):
                centers, sizes, yaws = actors.boxes(float(plan.sample_times[samples[k].index]))
                _, num_pts, vis = frames[k]
                t["sample_annotation"].append(
                    {
                        "token": ann_tokens[j],
                        "sample_token": sample_tokens[k],
                        "instance_token": tok("instance", s, a),
                        "visibility_token": visibility_token(vis),
                        "attribute_tokens": [attr_token[attribute]] if attribute else [],
                        "translation": [float(v) for v in centers[a]],
                        "size": [float(sizes[a, 1]), float(sizes[a, 0]), float(sizes[a, 2])],
                        "rotation": yaw_to_quaternion(float(yaws[a])),
                        "prev": ann_tokens[j - 1] if j > 0 else "",
                        "next": ann_tokens[j + 1] if j + 1 < len(ks) else "",
                        "num_lidar_pts": num_pts,
                        "num_radar_pts": 0,
                    }
                )
            t["instance"].append(
                {
                    "token": tok("instance", s, a),
                    "category_token": cat_token[actors.categories[a]],
                    "nbr_annotations": len(ks),
                    "first_annotation_token": ann_tokens[0],
                    "last_annotation_token": ann_tokens[-1],
                }
            )

    def _write_maps(self, cities: dict[str, CityMap], grounds: dict[str, GroundRaster], plans) -> list[dict]:
        records = []
        for loc, city in cities.items():
            with open(osp.join(self.out_dir, "maps", "expansion", f"{loc}.json"), "w") as f:
                json.dump(MapExpansionEncoder(city, str(self.seed)).encode(), f)
            token = self.tok("map", loc)
            filename = f"maps/{token}.png"
            cv2.imwrite(osp.join(self.out_dir, filename), grounds[loc].semantic_prior_png())
            records.append(
                {
                    "token": token,
                    "log_tokens": [self.tok("log", p.index) for p in plans if p.location == loc],
                    "category": "semantic_prior",
                    "filename": filename,
                }
            )
        return records


def _folder_size(root: str) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        total += sum(osp.getsize(osp.join(folder, f)) for f in files)
    return total
