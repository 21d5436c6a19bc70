"""The simulator from Python: shapes and ground-truth consistency, physics against
independent numpy computations (line-of-sight phase, blocking), impairment statistics
measured from the CSI, determinism, errors, and the .npz writer."""

from __future__ import annotations

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import dsp, sim

C = 299_792_458.0


def clean(**extra):
    """An empty-room description with every impairment off and only the line of sight."""
    d = {
        "duration_s": 0.5,
        "fps": 100,
        "channel": {"line_of_sight": True, "reflections": False},
        "impairments": {"enabled": False},
        "placement": {"tx_position": [0.5, 2.0, 1.2], "rx_position": [5.0, 3.0, 1.0]},
    }
    d.update(extra)
    return d


def test_named_scenarios_and_devices():
    names = sim.scenarios()
    for n in ["empty", "walk", "two_people", "sit_stand", "fall", "fall_recover", "enter_leave"]:
        assert n in names
    assert {"intel5300", "atheros", "esp32", "nexmon"} <= set(sim.devices())
    desc = sim.describe("walk", seed=5, duration_s=3)
    assert desc["seed"] == 5 and desc["duration_s"] == 3 and len(desc["people"]) == 1


def test_walk_shapes_and_truth_consistency():
    d = sim.generate(scenario="walk", seed=0, duration_s=4, device="intel5300", fps=100)
    n = len(d["timestamps"])
    assert 370 < n <= 400  # ~1 % packet loss
    assert d["csi"].dtype == np.complex64 and d["csi"].shape == (n, 3, 3, 30)
    assert d["keypoints_3d"].shape == (n, 1, 17, 3)
    assert d["keypoints_2d"].shape == (n, 1, 17, 2)
    assert d["boxes"].shape == (n, 1, 4)
    assert d["dense_part"].shape == (n, 32, 32)
    # 2-D is the top-down projection of 3-D, normalised by the room.
    w, depth, _ = d["room_size"]
    np.testing.assert_allclose(d["keypoints_2d"][..., 0], d["keypoints_3d"][..., 0] / w, rtol=1e-6)
    np.testing.assert_allclose(d["keypoints_2d"][..., 1], d["keypoints_3d"][..., 1] / depth, rtol=1e-6)
    # Boxes hold every keypoint; occupancy counts the present people.
    k = d["keypoints_2d"]
    b = d["boxes"]
    assert np.all(k[..., 0] >= b[..., None, 0]) and np.all(k[..., 0] <= b[..., None, 2])
    assert np.all(k[..., 1] >= b[..., None, 1]) and np.all(k[..., 1] <= b[..., None, 3])
    np.testing.assert_array_equal(d["occupancy"], d["present"].sum(axis=1))
    assert set(np.unique(d["activity"])) == {sim.ACTIVITIES.index("walking")}
    # Sequence gaps are the lost packets; timestamps increase.
    assert np.all(np.diff(d["timestamps"]) > 0)
    assert len(d["sequence"]) == n and d["sequence"][-1] < d["n_packets_sent"]
    # Dense pose: parts 1..24 exactly where a person is; U, V in [0, 1].
    part, person = d["dense_part"], d["dense_person"]
    assert part.max() <= 24 and np.array_equal(part > 0, person >= 0)
    assert np.all((d["dense_u"] >= 0) & (d["dense_u"] <= 1) & (d["dense_v"] >= 0) & (d["dense_v"] <= 1))
    assert np.all((part > 0).reshape(n, -1).any(axis=1))
    # Raw card units: 8-bit I/Q words.
    assert np.all(np.abs(d["csi"].real) <= 127) and np.all(d["csi"].real == np.round(d["csi"].real))


def test_line_of_sight_phase_matches_path_length():
    d = sim.generate(clean(), dense_pose_grid=0)
    freqs = d["frequencies"]
    spacing = 0.5 * C / 5.18e9  # half a wavelength at the Intel 5300 carrier
    tx = np.array([0.5, 2.0, 1.2]) + np.outer(np.arange(3) - 1, [0, spacing, 0])
    rx = np.array([5.0, 3.0, 1.0]) + np.outer(np.arange(3) - 1, [0, spacing, 0])
    dist = np.linalg.norm(tx[:, None, :] - rx[None, :, :], axis=-1)  # (3, 3)
    expect_phase = -2 * np.pi * freqs[None, None, :] * dist[..., None] / C
    expect_amp = C / freqs[None, None, :] / (4 * np.pi * dist[..., None])
    h = d["csi"][0]
    err = np.angle(h * np.exp(-1j * expect_phase))
    assert np.max(np.abs(err)) < 2e-3
    np.testing.assert_allclose(np.abs(h), expect_amp, rtol=1e-4)
    # Static scene: every packet identical.
    assert np.all(d["csi"] == d["csi"][0])


def test_person_on_the_line_of_sight_blocks_it():
    def power(start):
        people = [{"start": start, "actions": []}]
        d = sim.generate(clean(people=people, channel={"line_of_sight": True, "reflections": False,
                                                        "body_attenuation_db": 15}), dense_pose_grid=0)
        return np.mean(np.abs(d["csi"]) ** 2)

    # The line of sight runs from (0.5, 2.0) to (5.0, 3.0); its midpoint is (2.75, 2.5).
    free = power([2.75, 0.8])
    blocked = power([2.75, 2.5])
    drop = 10 * np.log10(free / blocked)
    assert 8 < drop < 25, drop


def test_impairment_statistics_measured_from_csi():
    base = clean(duration_s=20, channel={"line_of_sight": True, "reflections": True})
    ref = sim.generate(base, dense_pose_grid=0)["csi"][0, 0, 0]
    imp = dict(base, impairments={"cfo": False, "chain_phase": False, "timing_offset_std_ns": 30,
                                   "frequency_ripple_db": 0,
                                   "gain_jitter_db": 0.8, "snr_db": None, "quantize": False,
                                   "packet_loss": 0.05, "timestamp_jitter_s": 0.001})
    d = sim.generate(imp, seed=3, dense_pose_grid=0)
    ratio = d["csi"][:, 0, 0, :] / ref[None, :]
    k = d["subcarriers"]
    # Fit phase = -2 pi k df tau per packet (unwrapped over the subcarriers).
    ph = np.unwrap(np.angle(ratio), axis=1)
    slope = np.polyfit(k, ph.T, 1)[0]
    tau_ns = -slope / (2 * np.pi * 312_500) * 1e9
    assert abs(tau_ns.mean()) < 3 and abs(tau_ns.std() - 30) < 2.5, (tau_ns.mean(), tau_ns.std())
    gain_db = 20 * np.log10(np.abs(ratio).mean(axis=1))
    assert abs(gain_db.std() - 0.8) < 0.06
    sent = d["n_packets_sent"]
    assert abs(1 - len(d["timestamps"]) / sent - 0.05) < 0.015
    jitter = d["timestamps"] - d["sequence"] / 100.0
    assert abs(jitter.std() - 0.001) < 1e-4


def test_noise_floor_matches_snr():
    base = clean(duration_s=5, channel={"line_of_sight": True, "reflections": True})
    ref = sim.generate(base, dense_pose_grid=0)["csi"]
    noisy = dict(base, impairments={"cfo": False, "chain_phase": False, "timing_offset_std_ns": 0,
                                     "frequency_ripple_db": 0,
                                     "gain_jitter_db": 0, "snr_db": 15, "quantize": False,
                                     "packet_loss": 0, "timestamp_jitter_s": 0,
                                     "rx_chain_steps": False})
    d = sim.generate(noisy, dense_pose_grid=0)["csi"]
    snr = 10 * np.log10(np.mean(np.abs(ref) ** 2) / np.mean(np.abs(d - ref) ** 2))
    assert abs(snr - 15) < 0.2


def test_same_seed_same_bytes():
    a = sim.generate("two_people", seed=7, duration_s=2, threads=1)
    b = sim.generate("two_people", seed=7, duration_s=2, threads=4)
    c = sim.generate("two_people", seed=8, duration_s=2)
    for key in ["csi", "timestamps", "keypoints_3d", "dense_part", "activity"]:
        assert a[key].tobytes() == b[key].tobytes(), key
    assert a["csi"].tobytes() != c["csi"].tobytes()


def test_fall_truth():
    d = sim.generate("fall_recover", seed=0, duration_s=14)
    assert d["falls"].shape == (1, 4)
    person, start, impact, recovered = d["falls"][0]
    assert person == 0 and impact - start == pytest.approx(0.8) and recovered > impact
    t, act = d["timestamps"], d["activity"][:, 0]
    during = (t > start + 0.02) & (t < impact - 0.02)
    assert np.all(act[during] == sim.ACTIVITIES.index("falling"))
    lying = (t > impact + 0.1) & (t < impact + 3.9)
    assert np.all(act[lying] == sim.ACTIVITIES.index("lying"))
    head_z = d["keypoints_3d"][:, 0, 0, 2]
    assert head_z[t < start].min() > 1.4 and head_z[lying].max() < 0.4
    assert np.all(act[t > recovered + 0.1] != sim.ACTIVITIES.index("lying"))


def test_devices_shapes():
    for dev, shape in [("atheros", (3, 3, 56)), ("esp32", (1, 1, 64)), ("nexmon", (1, 1, 256)),
                       ("esp32_192", (1, 1, 192)), ("intel5300_40", (3, 3, 30)),
                       ("intel5300_2x2", (2, 2, 30)), ("intel5300_2g4", (3, 3, 30))]:
        d = sim.generate("walk", seed=0, duration_s=0.2, device=dev, dense_pose_grid=0)
        assert d["csi"].shape[1:] == shape
    # The 2.4 GHz Intel profile is on channel 6, which sets the sensor's band.
    assert sim.generate("walk", seed=0, duration_s=0.2, device="intel5300_2g4",
                        dense_pose_grid=0)["channel"] == 6
    d = sim.generate("walk", seed=0, duration_s=0.2, device="esp32", dense_pose_grid=0)
    nulls = (d["subcarriers"] == 0) | (np.abs(d["subcarriers"]) > 26)
    assert np.all(d["csi"][..., nulls] == 0) and np.all(d["csi"][..., ~nulls] != 0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"scenario": "walk", "duration_s": 0}, "duration_s"),
        ({"scenario": "walk", "device": "wrt54g"}, "wrt54g"),
        ({"scenario": "moonwalk"}, "moonwalk"),
        ({"scenario": {"fps": -1}}, "fps"),
        ({"scenario": {"room": {"size": [6, 5, -3]}}}, "room.size[2]"),
        ({"scenario": {"people": [{"actions": [{"type": "walk", "to": [], "speed": 1}]}]}},
         "people[0].actions[0].to"),
        ({"scenario": {"impairments": {"packet_loss": 2}}}, "impairments.packet_loss"),
        ({"scenario": {"rooom": {}}}, "rooom"),
    ],
)
def test_bad_input_raises_naming_the_field(kwargs, field):
    with pytest.raises(sim.SimulationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        sim.generate(**kwargs)


def test_scenario_object_toml_and_npz(tmp_path):
    s = sim.Scenario.named("sit_stand", duration_s=6)
    s.seed = 2
    d = sim.generate(s, dense_pose_grid=0)
    assert sim.ACTIVITIES.index("sitting") in d["activity"]
    toml = tmp_path / "s.toml"
    toml.write_text('duration_s = 1.0\nfps = 50.0\ndevice = "atheros"\n\n[[people]]\nstart = [2.0, 2.0]\n')
    d = sim.generate(str(toml), dense_pose_grid=0)
    assert d["csi"].shape[1:] == (3, 3, 56) and d["present"].all()
    out = sim.simulate_to_file("walk", 1, 1.0, tmp_path / "walk.npz")
    z = np.load(out)
    ref = sim.generate("walk", seed=1, duration_s=1.0)
    assert np.array_equal(z["csi"], ref["csi"]) and np.array_equal(z["keypoints_3d"], ref["keypoints_3d"])


def _same(a, b) -> bool:
    if isinstance(a, (dict, str, float, int, list)):
        return a == b
    return np.array_equal(np.asarray(a), np.asarray(b))


def test_a_run_written_to_npz_loads_back_as_generate_returned_it_without_pickle(tmp_path):
    two_nodes = {"name": "two", "room": {"size": [6.0, 5.0, 3.0]},
                 "nodes": [{"name": "a", "placement": {"tx_position": [0.2, 2.5, 1.2],
                                                       "rx_position": [5.8, 2.5, 1.2]}},
                           {"name": "b", "placement": {"tx_position": [0.2, 2.5, 1.2],
                                                       "rx_position": [3.0, 4.8, 1.2]}}],
                 "people": [{"start": [2.0, 2.0], "actions": [{"type": "walk", "to": [[4.0, 3.0]]}]}]}
    for scenario in ("walk", two_nodes):
        out = sim.simulate_to_file(scenario, 3, 2.0, tmp_path / "run.npz")
        with np.load(out, allow_pickle=False) as z:  # every entry a plain array
            for key in z.files:
                assert z[key].dtype != object, key
        back, ref = sim.load(out), sim.generate(scenario, seed=3, duration_s=2.0)
        assert sorted(back) == sorted(ref)
        for key, value in ref.items():
            if key == "nodes":
                assert len(back["nodes"]) == len(value) == 2
                for got, want in zip(back["nodes"], value):
                    assert sorted(got) == sorted(want)
                    assert all(_same(want[k], got[k]) for k in want), want["name"]
            else:
                assert _same(value, back[key]), key
        # ...and analyze reads it as it reads the run itself.
        assert len(wdp.analyze(back, model=None)) == len(wdp.analyze(ref, model=None))
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(wdp.InvalidArgumentError, match="not an .npz"):
        sim.load(tmp_path / "one.npy")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(wdp.InvalidArgumentError, match="not an .npz"):
        sim.load(tmp_path / "text.npz")
    with pytest.raises(wdp.PathNotFoundError, match="no such file"):
        sim.load(tmp_path / "missing.npz")


def _breathing_peak_bpm(d, fps):
    """Peak (per minute) of the 4-40/min band of the spectrum of the ratio of two receive
    chains (the per-packet carrier/timing offsets and gain cancel), summed over
    subcarriers; lost packets hold the previous value."""
    n_sent = int(d["n_packets_sent"])
    idx = np.searchsorted(d["sequence"], np.arange(n_sent), side="right") - 1
    # The simulated Intel 5300's receive chains step by quarter turns, as the real card's
    # do: taken out first, as the engine does.
    csi, _ = dsp.align_chains(d["csi"])
    r = csi[np.maximum(idx, 0), 0, 0, :] / csi[np.maximum(idx, 0), 0, 1, :]
    r = (r - r.mean(axis=0)) * np.hanning(n_sent)[:, None]
    m = 8 * n_sent
    spec = (np.abs(np.fft.fft(r, n=m, axis=0)) ** 2).sum(axis=1)
    k = np.arange(1, m // 2)
    p = spec[k] + spec[m - k]  # the ratio's moving part is complex: both signs
    f = k * fps * 60 / m
    sel = (f >= 4) & (f <= 40)
    return f[sel][np.argmax(p[sel])]


@pytest.mark.parametrize("posture, seed", [("sitting", 11), ("lying", 12), ("standing", 13)])
def test_still_person_breathes_at_the_true_rate(posture, seed):
    person = {"start": [3.0, 4.0], "heading_deg": -90, "posture": posture, "sway_mm": 0,
              "fidget_interval_s": 0}
    d = sim.generate({"people": [person], "max_people": 2}, seed=seed, duration_s=60, fps=20,
                     dense_pose_grid=0)
    truth = d["breathing_rate_bpm"]
    assert truth.shape == (2,) and np.isnan(truth[1]) and 6 <= truth[0] <= 30
    assert 4 <= d["breathing_depth_mm"][0] <= 12
    assert abs(_breathing_peak_bpm(d, 20) - truth[0]) <= 0.5
    # The scenario may fix the rate: the peak follows it.
    person["breathing_rate_bpm"] = 9.0
    d = sim.generate({"people": [person]}, seed=seed, duration_s=60, fps=20, dense_pose_grid=0)
    assert d["breathing_rate_bpm"][0] == 9.0
    assert abs(_breathing_peak_bpm(d, 20) - 9.0) <= 0.5



def _checkerboard_cell(room: list[float], pos: list[float], axis: list[float]) -> int | None:
    """The checkerboard cell ``sim.random_placement`` gave a wall device, read back from
    where it stands (mount, tenth of the wall, 0.4 m of height); None for a corner."""
    w, d, _ = room
    x, y, z = pos
    if abs(axis[0]) > 1e-9 and abs(axis[1]) > 1e-9:
        return None
    if abs(axis[1]) > 0.5:  # along y: on the wall x = 0 (mount 0) or x = W (mount 1)
        mount, along, extent = (0 if x < w / 2 else 1), y, d
    else:
        mount, along, extent = (2 if y < d / 2 else 3), x, w
    u = (along - 0.3) / (extent - 0.6)
    return mount + int(u * 10) + int(z / 0.4)

def test_random_placements_are_valid_varied_and_split():
    seen_mounts, heights = set(), []
    for seed in range(200):
        room = [3.0 + seed % 5, 3.0 + (seed * 7) % 4, 2.4 + 0.1 * (seed % 7)]
        p = sim.random_placement(room, seed)
        assert p == sim.random_placement(room, seed)
        tx, rx = np.array(p["tx_position"]), np.array(p["rx_position"])
        for pos in (tx, rx):
            assert np.all(pos >= 0) and np.all(pos <= room)
            # On a wall or in a corner: within 25 cm of at least one wall.
            gaps = np.minimum(pos[:2], np.array(room[:2]) - pos[:2])
            assert gaps.min() <= 0.25
            seen_mounts.add(int((gaps <= 0.25).sum()))
            heights.append(pos[2])
        assert np.linalg.norm(tx - rx) >= 1.5
        assert abs(np.linalg.norm(p["rx_axis"]) - 1) < 1e-9
    assert seen_mounts == {1, 2} and min(heights) < 0.6 and max(heights) > 2.0
    # The two halves of the checkerboard never share a cell: each wall device's (wall, tenth
    # of the wall, 0.4 m of height) is on its half's colour, and the corners, which have no
    # tenth of the wall to split them by, are all held out (half 1).
    for cells in (0, 1):
        corners = 0
        for s in range(200):
            p = sim.random_placement([5, 4, 3], s, cells=cells)
            for pos, axis in ((p["tx_position"], p["tx_axis"]), (p["rx_position"], p["rx_axis"])):
                cell = _checkerboard_cell([5, 4, 3], pos, axis)
                corners += cell is None
                assert cell is None or cell % 2 == cells, (cells, s, pos)
        assert (corners == 0) if cells == 0 else (corners > 100)
    # Any drawn placement runs, and the truth reports it with the antenna positions.
    p = sim.random_placement([5, 4, 3], 3)
    d = sim.generate({"placement": p, "people": [{"start": [2.5, 2.0]}]}, seed=1, duration_s=0.2)
    assert d["placement"]["tx_position"] == p["tx_position"]
    np.testing.assert_allclose(d["rx_antennas"].mean(axis=0), p["rx_position"], atol=1e-9)
    assert d["tx_antennas"].shape == (3, 3)


def test_multi_node_shape():
    nodes = sim.random_placement([6, 5, 3], 8, nodes=3, shared_tx=True)["nodes"]
    nodes[1]["device"] = "esp32"
    nodes[2].update(clock_offset_s=3.0, clock_drift_ppm=-25, impairments={"packet_loss": 0.1})
    scen = {"people": [{"start": [1.5, 1.0], "actions": [{"type": "walk", "to": [[4.0, 3.0]]}]}],
            "nodes": nodes}
    d = sim.generate(scen, seed=2, duration_s=2, fps=50)
    assert "csi" not in d and len(d["nodes"]) == 3
    assert d["keypoints_3d"].shape == (100, 1, 17, 3) and np.array_equal(d["sequence"], np.arange(100))
    np.testing.assert_allclose(d["timestamps"], np.arange(100) / 50)
    shapes = [n["csi"].shape[1:] for n in d["nodes"]]
    assert shapes == [(3, 3, 30), (1, 1, 64), (3, 3, 30)]
    assert all(n["placement"]["tx_position"] == nodes[0]["placement"]["tx_position"] for n in d["nodes"])
    n2 = d["nodes"][2]
    assert len(n2["timestamps"]) < 97 and n2["clock_drift_ppm"] == pytest.approx(-25)
    np.testing.assert_allclose(n2["timestamps"], 3.0 + n2["true_time"] * (1 - 25e-6), atol=1e-6)
    # The rows a node's packets point at carry the truth of (almost) the same instant.
    rows = d["nodes"][1]["sequence"].astype(int)
    assert np.all(np.abs(d["timestamps"][rows] - d["nodes"][1]["true_time"]) < 3e-3)  # jitter 0.5 ms sd
    # The same seed gives the same run.
    again = sim.generate(scen, seed=2, duration_s=2, fps=50)
    assert all(np.array_equal(x["csi"], y["csi"]) for x, y in zip(d["nodes"], again["nodes"]))


def test_background_events_are_truth_but_not_people():
    scen = clean(duration_s=6, fps=20, channel={"line_of_sight": True, "reflections": True},
                 room={"objects": [{"position": [3.0, 4.0, 0.45], "rcs_m2": 0.5}]},
                 events=[{"type": "door", "at_s": 1.0, "hinge": [0.0, 3.5], "from_deg": 90, "to_deg": 5,
                          "return_at_s": 3.0},
                         {"type": "move_object", "at_s": 4.5, "object": 0, "to": [2.0, 3.0, 0.45]}])
    d = sim.generate(scen, dense_pose_grid=0)
    t = d["timestamps"]
    np.testing.assert_array_equal(d["events"], [[0, 1.0, 2.0], [0, 3.0, 4.0], [1, 4.5, 5.5]])
    moving = ((t >= 1) & (t <= 2)) | ((t >= 3) & (t <= 4)) | ((t >= 4.5) & (t <= 5.5))
    np.testing.assert_array_equal(d["background_moving"], moving)
    assert d["occupancy"].max() == 0 and d["present"].shape[1] == 0
    csi = d["csi"]
    # Still between the changes; the door back shut gives back the first channel.
    assert np.array_equal(csi[0], csi[19])
    np.testing.assert_allclose(csi[85], csi[0], rtol=0, atol=1e-6 * np.abs(csi[0]).max())
    assert not np.array_equal(csi[0], csi[50]) and not np.array_equal(csi[85], csi[119])


def test_dataset_draws_are_recorded_valid_and_split():
    from wifi_densepose import sim_dataset

    a = sim_dataset.draw("train", 3, duration_s=60)
    assert a == sim_dataset.draw("train", 3, duration_s=60)
    train = sim_dataset.draws("train", 150, duration_s=120)
    test = sim_dataset.draws("test", 60, duration_s=120)
    seeds = {x["seed"] for x in train}
    assert len(seeds) == 150 and not seeds & {x["seed"] for x in test}
    rooms_train = {tuple(x["room_size"][:2]) for x in train}
    assert not rooms_train & {tuple(x["room_size"][:2]) for x in test}
    # Placements: every training device on a wall cell of half 0, every held-out one on
    # half 1 or in a corner (which training never uses).
    for draws_, half in ((train, 0), (test, 1)):
        for x in draws_:
            room, p = x["room_size"], x["placement"]
            for end in ("tx", "rx"):
                cell = _checkerboard_cell(room, p[f"{end}_position"], p[f"{end}_axis"])
                assert (cell is not None and cell % 2 == 0) if half == 0 else (cell is None or cell % 2 == 1)
    assert {x["n_people"] for x in train} == {0, 1, 2, 3}
    assert {x["device"] for x in train} == set(sim_dataset.DEVICES)
    assert any(x["scenario"]["events"] for x in train)
    assert any(o for x in train for o in x["scenario"]["room"]["objects"])
    # Still periods of tens of seconds and falls appear in the scripts.
    acts = [a for x in train for p in x["scenario"]["people"] for a in p["actions"]]
    assert any(a["type"] in ("stand", "sit", "lie") and a["duration_s"] >= 20 for a in acts)
    assert any(a["type"] == "fall" for a in acts)
    for x in train[:40] + test[:20]:
        desc = sim.describe(x["scenario"])  # every draw is a valid description
        assert desc["seed"] == x["seed"]
    # Runs on each device, and with several nodes.
    for dev in sim_dataset.DEVICES:
        x = sim_dataset.draw("val", 5, duration_s=1, devices=(dev,))
        d = sim.generate(x["scenario"], dense_pose_grid=0)
        assert d["device"] == dev and d["csi"].shape[0] > 90
    x = sim_dataset.draw("val", 6, duration_s=1, nodes=3)
    assert len(sim.generate(x["scenario"], dense_pose_grid=0)["nodes"]) == 3
    with pytest.raises(ValueError):
        sim_dataset.draw("holdout", 0)
