"""Trains the bundled pose model on simulated windows and exports ONNX (run in /work/venv-train).

    python training/train.py --train /tmp/wdp_train.npz --out python/wifi_densepose/models/default.onnx

Set prediction over K person slots with Hungarian matching
(``scipy.optimize.linear_sum_assignment``) between slots and the people present.
Seeded: the same data and seed give the same weights (single thread).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

torch.set_num_threads(1)
K, J, A = 2, 17, 5
PARTS, PATCH = 25, 8  # background + 24 DensePose parts; patch of PATCH x PATCH cells
VERSION = "wdp-sim-cnn-0.2.0"


class PoseNet(nn.Module):
    def __init__(
        self, mean: np.ndarray, std: np.ndarray, f: int = 90, hidden: int = 96, dropout: float = 0.0
    ):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.conv = nn.Sequential(
            nn.Conv1d(2 * f, hidden, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2, stride=2),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 3, padding=1, stride=2),
            nn.GELU(),
        )
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * hidden + 2 * f, 256),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(256, 256),
            nn.GELU(),
        )
        self.head = nn.Linear(256, K * (1 + 3 * J + 4 + A))
        # Dense pose: per slot, a PATCH x PATCH patch of room cells around the person.
        self.dense_in = nn.Sequential(nn.Linear(256, K * 64), nn.GELU())
        self.dense = nn.Sequential(
            nn.Linear(64, 32 * 2 * 2),
            nn.Unflatten(1, (32, 2, 2)),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),
            nn.GELU(),
            nn.ConvTranspose2d(32, PARTS + 2, 4, stride=2, padding=1),
        )

    def raw(self, x):  # x (B, 2, W, F)
        x = (x - self.mean) / self.std
        b, c, w, f = x.shape
        last = x[:, :, -1, :].reshape(b, c * f)
        h = self.conv(x.permute(0, 1, 3, 2).reshape(b, c * f, w))
        h = torch.cat([h.mean(-1), h.amax(-1), last], dim=1)
        z = self.mlp(h)
        o = self.head(z).reshape(b, K, 1 + 3 * J + 4 + A)
        d = self.dense(self.dense_in(z).reshape(b * K, 64)).reshape(b, K, PARTS + 2, PATCH, PATCH)
        pres = o[..., 0]
        kp = o[..., 1 : 1 + 2 * J].reshape(b, K, J, 2)
        conf = o[..., 1 + 2 * J : 1 + 3 * J]
        box = o[..., 1 + 3 * J : 1 + 3 * J + 4]
        act = o[..., 1 + 3 * J + 4 :]
        return pres, kp, conf, box, act, d[:, :, :PARTS], d[:, :, PARTS:]

    def forward(self, x):
        pres, kp, conf, box, act, part, uv = self.raw(x)
        keypoints = torch.cat([kp, torch.sigmoid(conf).unsqueeze(-1)], dim=-1)
        return (
            torch.sigmoid(pres),
            keypoints,
            box,
            torch.softmax(act, dim=-1),
            torch.softmax(part, dim=2),
            torch.sigmoid(uv),
        )


OUTPUTS = ["presence", "keypoints", "boxes", "activity", "dense_part", "dense_uv"]


def match(kp_pred, kp_t, present):
    """Per sample: slot index assigned to each ground-truth person (-1 absent)."""
    b = kp_pred.shape[0]
    assign = np.full((b, K), -1, dtype=np.int64)  # assign[i, gt] = slot
    cost = np.abs(kp_pred[:, :, None] - kp_t[:, None, :]).mean(axis=(3, 4))  # (B, slot, gt)
    for i in range(b):
        gts = np.flatnonzero(present[i])
        if len(gts) == 0:
            continue
        rows, cols = linear_sum_assignment(cost[i][:, gts])
        assign[i, gts[cols]] = rows
    return assign


PART_WEIGHT = torch.ones(PARTS)
PART_WEIGHT[0] = 0.2  # background fills most of a patch


def loss_fn(model, x, kp_t, box_t, pres_t, act_t, part_t=None, uv_t=None):
    pres, kp, conf, box, act, part, uv = model.raw(x)
    assign = match(kp.detach().numpy(), kp_t.numpy(), pres_t.numpy())
    bi, gi = np.nonzero(assign >= 0)
    si = assign[bi, gi]
    slot_t = torch.zeros_like(pres)
    slot_t[bi, si] = 1.0
    loss = nn.functional.binary_cross_entropy_with_logits(pres, slot_t)
    if len(bi):
        kp_m, kt = kp[bi, si], kp_t[bi, gi]
        err = (kp_m - kt).norm(dim=-1)
        loss = (
            loss + 5.0 * (kp_m - kt).abs().mean() + 2.0 * (box[bi, si] - box_t[bi, gi]).abs().mean()
        )
        loss = loss + 0.3 * nn.functional.binary_cross_entropy_with_logits(
            conf[bi, si], (err.detach() < 0.1).float()
        )
        loss = loss + nn.functional.cross_entropy(act[bi, si], act_t[bi, gi].long().clamp(min=0))
        if part_t is not None and uv_t is not None:
            pt = part_t[bi, gi].long()
            loss = loss + 0.5 * nn.functional.cross_entropy(part[bi, si], pt, weight=PART_WEIGHT)
            fg = (pt > 0).unsqueeze(1).float()
            uv_err = ((torch.sigmoid(uv[bi, si]) - uv_t[bi, gi].float()).abs() * fg).sum()
            loss = loss + 0.5 * uv_err / fg.sum().clamp(min=1.0) / 2
    return loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--wd", type=float, default=1e-4)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = np.load(a.train)
    x = d["x"].astype(np.float32)
    mean = x.mean(axis=(0, 2), keepdims=True)[0]  # (2, 1, F)
    std = x.std(axis=(0, 2), keepdims=True)[0] + 1e-3
    model = PoseNet(mean, std, f=x.shape[-1], dropout=a.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{x.shape[0]} windows, {n_params} parameters")
    names = ["kp", "box", "present", "activity"]
    if "dense_part" in d.files:
        names += ["dense_part", "dense_uv"]
    print("targets:", names)
    t = [torch.from_numpy(np.ascontiguousarray(d[k])) for k in names]
    xt = torch.from_numpy(x)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=a.wd)
    t0, step, epoch = time.time(), 0, 0
    budget = a.minutes * 60
    total_steps_est = None
    while time.time() - t0 < budget:
        perm = rng.permutation(x.shape[0])
        for s in range(0, len(perm) - a.batch + 1, a.batch):
            idx = torch.from_numpy(perm[s : s + a.batch])
            frac = min(1.0, (time.time() - t0) / budget)
            for g in opt.param_groups:
                g["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * frac))
            loss = loss_fn(model, xt[idx], *(v[idx] for v in t))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 200 == 0:
                print(
                    f"epoch {epoch} step {step} loss {loss.item():.4f} t {time.time() - t0:.0f}s",
                    flush=True,
                )
            if time.time() - t0 >= budget:
                break
        epoch += 1
    del total_steps_est
    model.eval()
    dummy = xt[:2]
    torch.onnx.export(
        model,
        (dummy,),
        a.out,
        input_names=["csi"],
        output_names=OUTPUTS,
        dynamic_axes={n: {0: "batch"} for n in ("csi", *OUTPUTS)},
        opset_version=17,
        dynamo=False,
    )
    import onnx

    m = onnx.load(a.out)
    for k, v in {
        "wifi_densepose.version": VERSION,
        "wifi_densepose.contract": "2",
        "wifi_densepose.train_steps": str(step),
    }.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, a.out)
    print(f"saved {a.out} after {step} steps, {epoch} epochs, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
