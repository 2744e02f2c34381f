"""Layer data from anyone's measurements: the CSV format, NeuralPower and nn-Meter/DeepEn2023 importers,
held-out evaluation and the constant baseline that replaces a model which cannot beat it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import UsageError
from mlee.predict.evaluate import evaluate, split_points
from mlee.predict.importers import load_points, read_neuralpower, read_nnmeter_csv
from mlee.predict.kernels import KernelConfig
from mlee.predict.layerdata import make_point, read_layer_csv, write_layer_csv
from mlee.predict.training import fit_predictor, replacement_warnings

ENV = {"NO_COLOR": "1", "COLUMNS": "160"}


def _fc_points(n=40, seed=0, noise=0.02, power=lambda macs: 30.0 + 1e-6 * macs):
    rng = np.random.default_rng(seed)
    pts = []
    for i in range(n):
        fin, fout = int(rng.integers(16, 2048)), int(rng.integers(16, 1024))
        cfg = KernelConfig.make("fc", batch=1, fin=fin, fout=fout)
        macs = fin * fout
        t = (2e-6 + 1e-9 * macs) * (1 + noise * rng.standard_normal())
        pts.append(make_point(cfg, t, power(macs) * (1 + noise * rng.standard_normal()), None, "counter",
                              "Test GPU", "lab", f"row{i}"))
    return pts


def test_a_model_that_cannot_beat_the_median_is_replaced_with_a_warning():
    rng = np.random.default_rng(1)
    # power unrelated to the features, plus one outlier: any fitted curve chases noise
    pts = _fc_points(power=lambda macs: float(120.0 + rng.standard_normal()))
    pts[3] = make_point(pts[3].config, pts[3].time_s, 44.6, None, "counter", "Test GPU", "lab", "outlier")
    pred = fit_predictor(pts)
    km = pred.kinds["fc"]
    q = km.power_w.quality
    assert q["model"] == "constant" and q["replaced"] and q["cv_rmspe"] == q["baseline_cv_rmspe"]
    assert km.power_w.model.predict([[1.0, 1.0]])[0] == pytest.approx(np.median([p.power_w for p in pts]))
    assert km.time_s.quality["model"] != "constant"  # runtime really depends on the MACs
    (warning,) = replacement_warnings(pred)
    assert warning.startswith("fc power:") and "constant median" in warning
    assert km.baseline["time_s"] == pytest.approx(np.median([p.time_s for p in pts]))


def test_held_out_split_and_evaluation_beside_the_baseline():
    pts = _fc_points(n=50)
    train, test = split_points(pts, 0.3, seed=4)
    assert len(test) == 15 and len(train) == 35 and not {p.record_id for p in train} & {p.record_id for p in test}
    again, _ = split_points(pts, 0.3, seed=4)
    assert [p.record_id for p in again] == [p.record_id for p in train]
    other, _ = split_points(pts, 0.3, seed=5)
    assert [p.record_id for p in other] != [p.record_id for p in train]
    scores = {s.target: s for s in evaluate(fit_predictor(train), test)}
    assert set(scores) == {"runtime", "power", "energy"}
    rt = scores["runtime"]
    assert rt.n == 15 and rt.mape < 0.05 and rt.baseline_mape > 0.3 and rt.beats_baseline is True
    assert scores["energy"].mape < 0.1 and scores["energy"].beats_baseline
    with pytest.raises(UsageError, match="between 0 and 1"):
        split_points(pts, 1.0)


def test_layer_csv_round_trip_and_bad_rows(tmp_path):
    pts = _fc_points(n=5)
    path = write_layer_csv(pts, tmp_path / "layers.csv")
    back = read_layer_csv(path)
    key = lambda p: p.record_id  # noqa: E731
    for a, b in zip(sorted(pts, key=key), sorted(back, key=key)):
        assert a.config == b.config and a.time_s == b.time_s and a.power_w == pytest.approx(b.power_w)
        assert b.energy_method == "counter" and b.environment == "lab" and b.fingerprint["device"] == "Test GPU"
    header = path.read_text().splitlines()[0].split(",")
    assert header[:2] == ["kind", "batch"] and "energy_j" in header
    # energy only: power is energy / runtime; energy without a method is refused, naming the line
    (tmp_path / "e.csv").write_text("kind,batch,fin,fout,time_s,energy_j,energy_method\nfc,1,8,4,0.002,0.1,counter\n")
    (p,) = read_layer_csv(tmp_path / "e.csv")
    assert p.power_w == pytest.approx(50.0) and p.environment == "unknown"
    (tmp_path / "bad.csv").write_text("kind,batch,fin,fout,time_s,power_w\nfc,1,8,4,0.002,30\n")
    with pytest.raises(UsageError, match=r"bad.csv line 2: energy_method None"):
        read_layer_csv(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("kind,batch,fin,time_s\nfc,1,8,0.002\n")
    with pytest.raises(UsageError, match=r"line 2: fc configuration: missing \['fout'\]"):
        read_layer_csv(tmp_path / "bad2.csv")


def test_neuralpower_parsed_files(tmp_path):
    # parser_raw_data.py's res_conv.txt: output NHWC, filter kh kw cin cout, strides 1 s s 1, input NHWC,
    # runtime ms, power W
    conv = tmp_path / "res_conv.txt"
    conv.write_text("64, 55, 55, 96, 11, 11, 3, 96, 1, 4, 4, 1, 64, 227, 227, 3, 12.5, 121.8\n"
                    "64, 27, 27, 256, 5, 5, 96, 256, 1, 1, 1, 1, 64, 27, 27, 96, 20.0, 44.6\n\n")
    a, b = read_neuralpower(conv, "Titan X")
    assert a.config.as_dict() == {"batch": 64, "cin": 3, "h": 227, "w": 227, "cout": 96, "kh": 11, "kw": 11,
                                  "stride": 4, "ph": 0, "pw": 0}
    assert a.config.output_shape() == (64, 96, 55, 55)
    assert b.config.get("ph") == 2 and b.config.output_shape() == (64, 256, 27, 27)  # SAME padding derived
    assert a.time_s == pytest.approx(0.0125) and a.power_w == 121.8 and a.energy_method == "power_integration"
    assert a.environment == "Titan X" and a.record_id == "res_conv.txt:1"
    fc = tmp_path / "res_fc.txt"
    fc.write_text("64, 4096, 6, 6, 256, 3.2, 110.0\n")
    (f,) = read_neuralpower(fc, "Titan X")
    assert f.config.as_dict() == {"batch": 64, "fin": 9216, "fout": 4096} and f.time_s == pytest.approx(0.0032)
    (tmp_path / "res_conv_bad.txt").write_text("1, 2, 3\n")
    with pytest.raises(UsageError, match="line 1: 3 numbers where a conv row has 18"):
        read_neuralpower(tmp_path / "res_conv_bad.txt", "x")
    (tmp_path / "res_pool.txt").write_text("1, 2\n")
    with pytest.raises(UsageError, match="cannot tell conv from fc"):
        read_neuralpower(tmp_path / "res_pool.txt", "x")


def test_nnmeter_deepen_kernel_csv(tmp_path):
    path = tmp_path / "dwconv-bn-relu.csv"
    path.write_text("HW,CIN,COUT,KERNEL_SIZE,STRIDES,latency (ms),power (mW),energy (mJ)\n"
                    "112,32,32,3,1,1.5,3000,4.5\n56,64,64,3,2,0.5,2500,\n")
    a, b = read_nnmeter_csv(path, "Jetson Xavier", energy_method="counter")
    assert a.config.as_dict() == {"batch": 1, "c": 32, "h": 112, "w": 112, "mult": 1, "kh": 3, "kw": 3,
                                  "stride": 1, "ph": 1, "pw": 1}
    assert a.time_s == pytest.approx(1.5e-3) and a.power_w == pytest.approx(3.0)
    assert b.power_w == pytest.approx(2.5) and b.config.output_shape() == (1, 64, 28, 28)
    conv = tmp_path / "kernels.csv"
    conv.write_text("kernel,HW,CIN,COUT,KS,STRIDE,latency,energy\nconv-bn-relu,28,16,32,1,1,0.2,0.6\n"
                    "fc,1,1280,1000,1,1,0.3,0.9\n")
    c, f = load_points(conv, "nn-meter", "phone")[0]
    assert c.config.kind == "conv-bn-relu" and c.config.get("ph") == 0 and c.power_w == pytest.approx(3.0)
    assert f.config.as_dict() == {"batch": 1, "fin": 1280, "fout": 1000}
    (tmp_path / "se.csv").write_text("HW,CIN,latency\n7,32,0.1\n")
    with pytest.raises(UsageError, match="kernel 'se' has no mlee kind"):
        read_nnmeter_csv(tmp_path / "se.csv", "x")
    (tmp_path / "fc.csv").write_text("CIN,COUT,power\n8,4,100\n")
    with pytest.raises(UsageError, match=r"line 2: no latency \(ms\) column"):
        read_nnmeter_csv(tmp_path / "fc.csv", "x")


def test_fit_with_test_fraction_and_evaluate_cli(tmp_path):
    data = write_layer_csv(_fc_points(n=40), tmp_path / "layers.csv")
    pred = tmp_path / "pred.json"
    res = CliRunner().invoke(app, ["fit", str(data), "-o", str(pred), "--test-fraction", "0.3", "--seed", "2",
                                   "--json"], env=ENV)
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    held = {s["target"]: s for s in body["held_out"]}
    assert held["runtime"]["n"] == 12 and held["runtime"]["beats_baseline"] is True
    saved = json.loads(pred.read_text())
    assert saved["kernels"]["fc"]["n_points"] == 28 and saved["kernels"]["fc"]["baseline"]["energy_j"] > 0
    assert saved["fingerprint"]["device"] == "Test GPU" and saved["basis"]["energy_method"] == "counter"
    res = CliRunner().invoke(app, ["evaluate", str(pred), str(data)], env=ENV)
    assert res.exit_code == 0, res.output
    assert "baseline MAPE" in res.stdout and "energy" in res.stdout and "yes" in res.stdout
    # a predictor without the kind lists it; bad inputs are one line and exit 2
    np_file = tmp_path / "res_conv.txt"
    np_file.write_text("1, 55, 55, 96, 11, 11, 3, 96, 1, 4, 4, 1, 1, 227, 227, 3, 12.5, 121.8\n")
    res = CliRunner().invoke(app, ["evaluate", str(pred), str(np_file), "--device", "x", "--json"], env=ENV)
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["note"] == "no model in the predictor"
    res = CliRunner().invoke(app, ["fit", str(data), "-o", str(pred), "--test-fraction", "2"], env=ENV)
    assert res.exit_code == 2 and "between 0 and 1" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["evaluate", str(pred), str(data), "--format", "paleo"], env=ENV)
    assert res.exit_code == 2 and "unknown data format" in res.output


def test_auto_chooses_a_family_per_kind_and_an_energy_route(tmp_path):
    pytest.importorskip("sklearn")
    from mlee.predict import predictor as P
    from mlee.predict.evaluate import predict_point

    pts = _fc_points(n=40, noise=0.01)
    pred = fit_predictor(pts, "auto")
    km = pred.kinds["fc"]
    q = km.time_s.quality
    assert set(q["cv_rmspe_by_family"]) == {"polynomial", "lasso", "huber", "random-forest", "gbm", "polynomial+shape"}
    assert set(q["cv_mape_by_family"]) == set(q["cv_rmspe_by_family"])
    finite = {k: v for k, v in q["cv_mape_by_family"].items() if v is not None}
    assert q["model"] == min(finite, key=finite.get) and q["cv_mape"] == finite[q["model"]]  # chosen by CV MAPE
    assert q["cv_rmspe"] == q["cv_rmspe_by_family"][q["model"]] and q["cv_rmspe"] >= q["cv_mape"]
    assert km.energy_choice in ("direct", "product") and km.energy_j is not None
    eq = km.energy_j.quality
    best = min(eq["cv_mape_direct"], eq["cv_mape_product"])  # the route is chosen by CV MAPE, as families are
    assert eq[f"cv_mape_{km.energy_choice}"] == best and eq["cv_rmspe_direct"] is not None
    # the file keeps family, choice and CV errors, and predicts the same after a round trip
    path = pred.save(tmp_path / "auto.json")
    again, _ = P.load(path)
    assert again.model_type == "auto" and again.kinds["fc"].energy_choice == km.energy_choice
    assert predict_point(again.kinds["fc"], pts[0]) == pytest.approx(predict_point(km, pts[0]))
    t, w = predict_point(km, pts[0])
    assert t == pytest.approx(pts[0].time_s, rel=0.15) and w == pytest.approx(pts[0].power_w, rel=0.15)


def test_robust_and_sparse_families_fit_what_they_claim():
    pytest.importorskip("sklearn")
    from mlee.predict.families import fit_forest, fit_huber, fit_lasso

    rng = np.random.default_rng(0)
    X = rng.uniform(1, 100, size=(60, 3))
    y = 2.0 * X[:, 0] ** 1.5 * X[:, 1] ** 0.5  # the third feature is irrelevant
    y_out = y.copy()
    y_out[5] *= 0.3  # one outlier
    huber = fit_huber(X, y_out)
    assert huber.predict(X[6:7])[0] == pytest.approx(y[6], rel=0.02)
    lasso = fit_lasso(X, y)
    assert any(c == 0.0 for c in lasso.coefficients)  # terms dropped
    third = dict(zip(lasso.exponents, lasso.coefficients))[(0, 0, 1)]
    assert abs(third) < 0.05  # the irrelevant feature is (nearly) left out
    assert lasso.predict(X[:5]) == pytest.approx(y[:5], rel=0.05)
    forest = fit_forest(X, y)
    assert len(forest.trees) == 100 and forest.predict(X[:1])[0] == pytest.approx(y[0], rel=0.3)


def test_auto_ranks_families_by_cv_mape_and_keeps_their_rmspe(monkeypatch):
    """One family misses a single point badly (low MAPE, high RMSPE), the other every point a little:
    the MAPE ranks the first ahead, where RMSPE would have chosen the second."""
    pytest.importorskip("sklearn")
    from mlee.predict import families as FA

    y = np.linspace(1.0, 2.0, 40)
    X = np.arange(40, dtype=float)[:, None]  # the point's index: the fakes look their answer up

    class Off:
        def __init__(self, factor):
            self.factor = factor

        def predict(self, Z):
            return y[Z[:, 0].astype(int)] * self.factor(Z[:, 0].astype(int))

    one_miss = lambda XX, yy, seed: Off(lambda i: np.where(i == 7, 2.0, 1.0))  # noqa: E731
    all_a_little = lambda XX, yy, seed: Off(lambda i: np.full(len(i), 1.1))  # noqa: E731
    monkeypatch.setattr(FA, "fitters", lambda degrees: {"polynomial": all_a_little, "lasso": one_miss})
    family, _, scores, _ = FA.choose_family(X, y, (1,))
    assert family == "lasso"
    assert scores["cv_mape"]["lasso"] == pytest.approx(1 / 40) and scores["cv_mape"]["polynomial"] == pytest.approx(0.1)
    assert scores["cv_rmspe"]["lasso"] > scores["cv_rmspe"]["polynomial"]  # RMSPE would have ranked them the other way
