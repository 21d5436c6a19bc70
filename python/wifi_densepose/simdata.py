"""Randomized simulated scenarios and model windows with targets, for training and evaluation.

Each clip is a random scenario (room size, people, waypoints, actions) drawn from a
seeded generator. The held-out split (``"eval"``) uses another generator stream, seeds
that training never uses, and room sizes from a disjoint set, so its rooms and motion
paths are never seen in training.
"""

from __future__ import annotations

import numpy as np

from . import sim
from .features import HOP_TRAIN, windows_from_recording

K = 2
#: Dense-pose targets: the simulator's top-down part map at GRID x GRID cells over the
#: room, cut into a PATCH x PATCH window of cells centred on each person's mid-hip.
GRID = 32
PATCH = 8
# Room sizes (width, depth) in metres: training and held-out sets are disjoint.
TRAIN_ROOMS = [(6.0, 5.0), (5.0, 4.0), (7.0, 5.5), (5.5, 5.5)]
EVAL_ROOMS = [(6.5, 4.5), (4.5, 5.0)]
SEED_BASE = {"train": 1_000, "eval": 900_000}


def _point(rng, w, d):
    return [float(rng.uniform(0.6, w - 0.6)), float(rng.uniform(0.6, d - 0.6))]


def random_scenario(rng, split: str, i: int, duration_s: float) -> dict:
    rooms = TRAIN_ROOMS if split == "train" else EVAL_ROOMS
    w, d = rooms[int(rng.integers(len(rooms)))]
    n_people = int(rng.choice([0, 1, 1, 1, 2, 2]))
    people = []
    for _ in range(n_people):
        acts = []
        t = 0.0
        while t < duration_s:
            r = rng.random()
            if r < 0.45:
                acts.append(
                    {
                        "type": "walk",
                        "to": [_point(rng, w, d) for _ in range(2)],
                        "speed": float(rng.uniform(0.7, 1.4)),
                    }
                )
                t += 5.0
            elif r < 0.6:
                acts.append({"type": "stand", "duration_s": float(rng.uniform(1, 3))})
                t += 2.0
            elif r < 0.75:
                acts += [
                    {"type": "sit_down"},
                    {"type": "sit", "duration_s": float(rng.uniform(1, 4))},
                    {"type": "stand_up"},
                ]
                t += 5.0
            elif r < 0.87:
                acts += [
                    {"type": "lie_down"},
                    {"type": "lie", "duration_s": float(rng.uniform(1, 4))},
                    {"type": "get_up"},
                ]
                t += 6.0
            else:
                acts += [
                    {"type": "fall"},
                    {"type": "lie", "duration_s": float(rng.uniform(1, 3))},
                    {"type": "get_up"},
                ]
                t += 5.0
        people.append(
            {
                "start": _point(rng, w, d),
                "heading_deg": float(rng.uniform(0, 360)),
                "height": float(rng.uniform(1.55, 1.9)),
                "actions": acts,
            }
        )
    return {
        "name": f"{split}_{i}",
        "room": {"size": [w, d, 3.0]},
        "placement": {"tx_position": [0.3, d * 0.45, 1.2], "rx_position": [w - 0.3, d * 0.55, 1.2]},
        "people": people,
        "max_people": K,
    }


def dense_patches(data: dict, ends: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Each person's dense-pose patch at the packets ``ends``: parts ``(n, k, PATCH,
    PATCH)`` uint8 (0 background, 1-24 DensePose parts of that person only) and U, V
    ``(n, k, 2, PATCH, PATCH)`` float32, cut from the simulator's ``GRID x GRID`` room
    map around the person's mid-hip cell (:func:`patch_origin`); zeros where absent."""
    part = data["dense_part"][ends]
    person = data["dense_person"][ends]
    uv = np.stack([data["dense_u"][ends], data["dense_v"][ends]], axis=1)  # (n, 2, G, G)
    grid = part.shape[-1]
    n = len(ends)
    parts = np.zeros((n, k, PATCH, PATCH), np.uint8)
    uvs = np.zeros((n, k, 2, PATCH, PATCH), np.float32)
    pad = PATCH
    part_p = np.pad(part, ((0, 0), (pad, pad), (pad, pad)))
    person_p = np.pad(person, ((0, 0), (pad, pad), (pad, pad)), constant_values=-1)
    uv_p = np.pad(uv, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kp = data["keypoints_2d"][ends]
    present = data["present"][ends]
    for j in range(min(k, kp.shape[1])):
        r0, c0 = patch_origin(np.nan_to_num(kp[:, j]), grid)
        for i in np.flatnonzero(present[:, j]):
            rs = slice(r0[i] + pad, r0[i] + pad + PATCH)
            cs = slice(c0[i] + pad, c0[i] + pad + PATCH)
            mine = person_p[i, rs, cs] == j
            parts[i, j] = np.where(mine, part_p[i, rs, cs], 0)
            uvs[i, j] = np.where(mine, uv_p[i, :, rs, cs], 0.0)
    return parts, uvs


def patch_origin(keypoints_uv: np.ndarray, grid: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of a patch's top-left cell for keypoints ``(..., 17, 2)`` (u, v):
    the patch is centred on the mid-hip's cell (rows along v, columns along u)."""
    hip = keypoints_uv[..., 11:13, :].mean(axis=-2)
    col = np.floor(np.clip(hip[..., 0], 0, 0.9999) * grid).astype(np.int64) - PATCH // 2
    row = np.floor(np.clip(hip[..., 1], 0, 0.9999) * grid).astype(np.int64) - PATCH // 2
    return row, col


def build(split: str, clips: int, duration_s: float, hop: int = HOP_TRAIN, seed_offset: int = 0,
          progress=None, dense: bool = False):
    """Simulates ``clips`` clips of ``split`` and cuts them into model windows; calls
    ``progress(done, clips)`` after each clip. With ``dense``, the targets include each
    person's dense-pose patch (:func:`dense_patches`: ``dense_part``, ``dense_uv``) and
    the room map at the window ends (``dense_room``, for evaluation)."""
    rng = np.random.default_rng(SEED_BASE[split] + seed_offset)
    xs: list = []
    log: list = []
    names = ["kp", "box", "present", "activity", "room"]
    if dense:
        names += ["dense_part", "dense_uv", "dense_room"]
    targets: dict[str, list] = {k: [] for k in names}
    for i in range(clips):
        spec = random_scenario(rng, split, i, duration_s)
        seed = SEED_BASE[split] + seed_offset + i
        data = sim.generate(spec, seed=seed, duration_s=duration_s, device="intel5300", fps=100,
                            dense_pose_grid=GRID if dense else 0)
        x, ends = windows_from_recording(data["csi"], data.get("rssi"), hop=hop)
        xs.append(x)
        targets["kp"].append(np.nan_to_num(data["keypoints_2d"][ends, :K]))
        targets["box"].append(np.nan_to_num(data["boxes"][ends, :K]))
        targets["present"].append(data["present"][ends, :K])
        targets["activity"].append(data["activity"][ends, :K])
        targets["room"].append(np.tile(np.float32(spec["room"]["size"][:2]), (len(ends), 1)))
        if dense:
            parts, uvs = dense_patches(data, ends)
            targets["dense_part"].append(parts)
            targets["dense_uv"].append(uvs.astype(np.float16))
            room = np.where(data["dense_person"][ends] < K, data["dense_part"][ends], 0)
            targets["dense_room"].append(room.astype(np.uint8))
        log.append({"seed": seed, "spec": spec})
        if progress is not None:
            progress(i + 1, clips)
    return (np.concatenate(xs), {k: np.concatenate(v) for k, v in targets.items()}, log)
