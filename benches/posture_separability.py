"""Can one link tell a still person's posture, given the empty room? (an experiment)

Issue 17 asks for activities (standing, walking, sitting, lying, falling) at balanced
accuracy 0.90. Motion tells walking from the rest; the pose model tells nothing of the
still postures (``docs/model.md``), and the dynamics of one link's channel carry nothing of
them either (``benches/sim_window_classifier.py``). What is left is the static channel: a
person standing, sitting or lying at a spot shadows and scatters different paths. This
asks whether that difference is there to find when everything else is given — the
room's empty channel (a calibration), the person's true floor position and the link's
placement — so it is an upper bound on what posture from one link can reach.

Per clip (its own room, placement, spot, heading and seed; 3 s of a still, breathing,
swaying person): ``delta`` = the mean channel with the person minus the mean channel of
the same room empty. Features:

- ``strength``: the person's share of the channel, ``10 log10(|delta|^2 / |empty|^2)``;
- ``height profile``: ``delta`` correlated with what a point scatterer at the person's
  true floor spot would give, at heights 0.1-1.9 m (every antenna pair and subcarrier,
  coherently): where on the body's vertical line the change comes from.

A multinomial logistic regression on them is trained on the first two thirds of the
clips and scored on the rest (rooms, placements and seeds it never saw). Conditions:
the card's impairments off (``clean``: the phase of every packet is the channel's own, so
the empty room can be subtracted exactly) and on (``impaired``: each packet is first fitted
to the empty room by one complex gain and one phase slope across subcarriers, as the
localizer does). With ``--position-error M`` the floor spot the profile is taken at is off
by M metres in a random direction (the localizer's median error is about 0.4 m).

    python benches/posture_separability.py            # about 4 minutes
    python benches/posture_separability.py --clips 240 --json benches/results/posture_separability.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from wifi_densepose import sim
from wifi_densepose.sensing_eval import random_placement

POSTURES = ("standing", "sitting", "lying")
ACTION = {"standing": "stand", "sitting": "sit", "lying": "lie"}
HEIGHTS = np.arange(0.1, 2.0, 0.1)
C = 299_792_458.0
SEED_BASE = 640_000
N_SCALAR = 6  # features before the height profile


def clip_spec(i: int, duration_s: float, clean: bool, link: int = 0) -> tuple[dict, dict]:
    """(scenario with the person, the same room empty) of clip ``i`` seen by its ``link``-th
    link (each link its own transmitter and receiver placement; same room and person)."""
    rng = np.random.default_rng(SEED_BASE + i)
    w, d = float(rng.uniform(3.5, 8.0)), float(rng.uniform(3.0, 7.0))
    posture = POSTURES[i % 3]
    person = {"start": [float(rng.uniform(0.7, w - 0.7)), float(rng.uniform(0.7, d - 0.7))],
              "heading_deg": float(rng.uniform(0, 360)), "posture": posture,
              "actions": [{"type": ACTION[posture], "duration_s": duration_s + 1}]}
    placement = random_placement(rng, w, d)
    if link:
        placement = random_placement(np.random.default_rng([SEED_BASE + i, link]), w, d)
    spec = {"name": f"posture_{i}", "room": {"size": [w, d, 3.0]},
            "placement": placement, "people": [person], "max_people": 1}
    # Person and empty room are two recordings compared per chain: the Intel 5300's
    # quarter-turn chain steps (docs/sensing.md) would leave each its own quarter per chain.
    # They are the card's, not the room's: off here, as a calibration by amplitude would
    # not see them either.
    spec["impairments"] = {"enabled": False} if clean else {"rx_chain_steps": False}
    empty = dict(spec, people=[])
    return spec, empty


def aligned_mean(csi: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    """The mean channel, each packet first fitted to ``ref`` (one complex gain and one phase
    slope across subcarriers, shared by every antenna pair) when given."""
    h = csi.astype(np.complex128)
    if ref is None:
        return h.mean(axis=0)
    k = np.arange(h.shape[-1])
    out = np.empty_like(h)
    for n, frame in enumerate(h):
        prod = (frame * ref.conj()).sum(axis=(0, 1))  # per subcarrier
        slope = np.angle((prod[1:] * prod[:-1].conj()).sum())
        frame = frame * np.exp(-1j * slope * k)
        gain = (frame * ref.conj()).sum() / (np.abs(ref) ** 2).sum()
        out[n] = frame / gain
    return out.mean(axis=0)


def features(data: dict, empty: dict, clean: bool, spot: np.ndarray) -> np.ndarray:
    ref = aligned_mean(np.asarray(empty["csi"]), None)
    if not clean:
        # The empty room's own packets are offset too: fit them to their first packet,
        # then everything to that mean.
        ref = aligned_mean(np.asarray(empty["csi"]), np.asarray(empty["csi"])[0])
    mean = aligned_mean(np.asarray(data["csi"]), None if clean else ref)
    delta = mean - ref
    share = (np.abs(delta) ** 2).sum() / (np.abs(ref) ** 2).sum()
    strength = 10 * np.log10(max(share, 1e-12))
    tx = np.asarray(data["tx_antennas"], dtype=np.float64)
    rx = np.asarray(data["rx_antennas"], dtype=np.float64)
    f = np.asarray(data["frequencies"], dtype=np.float64)
    profile = []
    for h in HEIGHTS:
        p = np.array([spot[0], spot[1], h])
        d1 = np.linalg.norm(tx - p, axis=1)[:, None]  # (n_tx, 1)
        d2 = np.linalg.norm(rx - p, axis=1)[None, :]  # (1, n_rx)
        path = (d1 + d2)[:, :, None]
        s = np.exp(-2j * np.pi * f[None, None, :] * path / C) / (d1 * d2)[:, :, None]
        profile.append(np.abs((delta * s.conj()).sum())
                       / (np.linalg.norm(delta) * np.linalg.norm(s) + 1e-30))
    prof = np.asarray(profile)
    prof = prof / (prof.max() + 1e-30)
    # Non-coherent cues: how much of the change is the static channel dimmed (blocking)
    # rather than new paths (scattering), how frequency-selective it is, and where the
    # person is against the link (the same posture changes a link less far from it).
    blocking = np.abs((delta * ref.conj()).sum()) ** 2 / (
        (np.abs(delta) ** 2).sum() * (np.abs(ref) ** 2).sum() + 1e-30)
    mag = np.abs(delta)
    selectivity = float((mag.std(axis=-1) / (mag.mean(axis=-1) + 1e-30)).mean())
    a, b = tx.mean(axis=0)[:2], rx.mean(axis=0)[:2]
    u = (b - a) / (np.linalg.norm(b - a) + 1e-9)
    off = spot - a
    from_line = abs(off[0] * u[1] - off[1] * u[0])
    heights = (tx.mean(axis=0)[2] + rx.mean(axis=0)[2]) / 2
    return np.concatenate([[strength, blocking, selectivity, np.log(from_line + 0.1),
                            strength + 20 * np.log10(from_line + 0.1), heights], prof])


def fit_logistic(x: np.ndarray, y: np.ndarray, n_class: int, l2: float = 1e-2,
                 steps: int = 3000, lr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by gradient descent, balanced classes."""
    w = np.zeros((x.shape[1], n_class))
    b = np.zeros(n_class)
    onehot = np.eye(n_class)[y]
    weight = 1.0 / np.bincount(y, minlength=n_class)[y]
    weight = weight / weight.sum()
    for _ in range(steps):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * weight[:, None]
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    return w, b


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, n_class: int) -> float:
    return float(np.mean([(pred[y == c] == c).mean() for c in range(n_class) if (y == c).any()]))


def run_condition(clips: int, duration_s: float, clean: bool, position_error: float,
                  links: int = 1) -> dict:
    rows, labels = [], []
    skipped = 0
    for i in range(clips):
        per_link = []
        for link in range(links):
            spec, empty_spec = clip_spec(i, duration_s, clean, link)
            data = sim.generate(json.dumps(spec), seed=SEED_BASE + i, duration_s=duration_s,
                                device="intel5300")
            if not np.asarray(data["present"]).any():
                break  # the simulator left the person out (a lying body past a wall)
            empty = sim.generate(json.dumps(empty_spec), seed=SEED_BASE + i,
                                 duration_s=duration_s, device="intel5300")
            spot = np.asarray(spec["people"][0]["start"], dtype=np.float64)
            if position_error > 0:
                angle = np.random.default_rng(SEED_BASE + 7 * i).uniform(0, 2 * np.pi)
                spot = spot + position_error * np.array([np.cos(angle), np.sin(angle)])
            f = features(data, empty, clean, spot)
            # Several links: each link's scalar cues and its profile's peak height (the
            # whole profiles would give the regression more inputs than clips).
            per_link.append(f if links == 1 else np.concatenate(
                [f[:N_SCALAR], [HEIGHTS[np.argmax(f[N_SCALAR:])]]]))
        if len(per_link) < links:
            skipped += 1
            continue
        rows.append(np.concatenate(per_link))
        labels.append(i % 3)
    x = np.asarray(rows)
    y = np.asarray(labels)
    n_train = (2 * len(y)) // 3
    mu, sd = x[:n_train].mean(axis=0), x[:n_train].std(axis=0) + 1e-9
    xs = (x - mu) / sd
    w, b = fit_logistic(xs[:n_train], y[:n_train], 3)
    pred = np.argmax(xs @ w + b, axis=1)
    test = slice(n_train, None)
    train_pred = pred[:n_train]
    strength = {p: round(float(np.median(x[y == k, 0])), 1) for k, p in enumerate(POSTURES)}
    peak = {p: round(float(np.median(HEIGHTS[np.argmax(x[y == k, N_SCALAR:], axis=1)]
                                      if links == 1 else x[y == k, N_SCALAR])), 2)
            for k, p in enumerate(POSTURES)}
    confusion = np.zeros((3, 3), dtype=int)
    for t, p in zip(y[test], pred[test], strict=True):
        confusion[t, p] += 1
    return {"clips": clips, "skipped": skipped, "train": n_train, "test": len(y) - n_train,
            "held_out_balanced_accuracy": balanced_accuracy(y[test], pred[test], 3),
            "train_balanced_accuracy": balanced_accuracy(y[:n_train], train_pred, 3),
            "chance": 1 / 3, "confusion": confusion.tolist(),
            "median_strength_db": strength, "median_profile_peak_m": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=150)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    started = time.time()
    out = {"device": "intel5300", "duration_s": a.duration, "seed_base": SEED_BASE,
           "conditions": {}}
    for name, clean, err, links in (("clean, true position", True, 0.0, 1),
                                    ("clean, position off by 0.4 m", True, 0.4, 1),
                                    ("impaired, true position", False, 0.0, 1),
                                    ("impaired, position off by 0.4 m", False, 0.4, 1),
                                    ("clean, true position, three links", True, 0.0, 3),
                                    ("impaired, true position, three links", False, 0.0, 3)):
        r = run_condition(a.clips, a.duration, clean, err, links)
        out["conditions"][name] = r
        print(f"{name:34s} held-out BA {r['held_out_balanced_accuracy']:.2f} "
              f"(train {r['train_balanced_accuracy']:.2f}, chance 0.33, {r['test']} clips) "
              f"strength dB {r['median_strength_db']} peak m {r['median_profile_peak_m']}",
              flush=True)
    out["minutes"] = round((time.time() - started) / 60, 1)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
