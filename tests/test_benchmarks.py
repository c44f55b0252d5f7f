"""benchmarks/common.py: the one `met` rule, run records that cannot lie, equal time, git, FLOPs, the
validator over every committed result file, mark_invalid.py and readme_table.py."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
import mark_invalid  # noqa: E402
import readme_table  # noqa: E402

SHA = "0123456789abcdef0123456789abcdef01234567"


def run(name: str, seed: int, value: float, train_seconds: float = 100.0, **extra) -> dict:
    return {"id": common.run_id(name, seed), "name": name, "seed": seed, "stopped_by": "budget", "steps": 50,
            "train_seconds": train_seconds, "wall_seconds": train_seconds + 5.0, "budget_seconds": 100.0,
            "value": value, **extra}


def doc(targets: list[dict], runs: list[dict]) -> dict:
    return {"benchmark": "demo", "date": "2026-12-01T00:00:00+0000", "git": SHA, "git_dirty": False,
            "hardware": {"device": "cpu", "cpu": "test CPU", "threads": 2}, "command": "python benchmarks/demo.py",
            "targets": targets, "runs": runs}


# ---- rules ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, measured, expected", [
    (">= 0.93", 0.93, True), (">= 0.93", 0.9299, False), ("<= 1.50", 1.5, True), ("<= 1.50", 1.5001, False),
    ("> 1", 1.0, False), ("> 1", 1.01, True), ("< 0.95", 0.95, False), ("<0.95", 0.9, True),
    (">= 1.005", 1.005, True), (">= 1e-3", 0.001, True), (">= 0.5", None, False), (">= 0.5", float("nan"), False),
])
def test_met_from_the_rule(rule, measured, expected):
    assert common.met(rule, measured) is expected


@pytest.mark.parametrize("rule", ["n/a", "<= 1.6 within 180 s", "== 1", ">= ", "0.93", ">= x", None])
def test_rules_that_cannot_be_recomputed_are_refused(rule):
    with pytest.raises(ValueError, match="is not '<op> <number>'"):
        common.met(rule, 1.0)


def test_targets_from_runs_and_ratios_validate_and_catch_tampering():
    ours = [run("ours", s, v, 100.0 + s) for s, v in enumerate([0.90, 0.94, 0.92])]
    peer = [run("peer", s, v, 99.0 + s) for s, v in enumerate([0.88, 0.91, 0.89])]
    t1 = common.target_from_runs("acc", ">= 0.93", ours)
    t2 = common.ratio_target("acc_ratio_vs_peer_equal_time", ">= 1.03", ours, peer)
    assert t1["measured"] == pytest.approx(0.92) and t1["met"] is False
    assert t2["measured"] == pytest.approx(0.92 / 0.89) and t2["met"] is True
    assert t2["equal_time"]["spread"] == pytest.approx((102 - 99) / 102) and t2["equal_time"]["within"]
    good = doc([t1, t2], ours + peer)
    assert common.validate_result(good) == []

    def problems(edit) -> list[str]:
        d = copy.deepcopy(good)
        edit(d)
        return common.validate_result(d)

    def flip(d):
        d["targets"][0]["met"] = True

    def inflate(d):
        d["targets"][0].update(measured=0.95, met=True)

    def change_run(d):
        d["runs"][0]["value"] = 0.99

    def drop_peer_seed(d):
        d["targets"][1]["denominator"]["runs"].pop()

    def stretch(d):
        d["runs"][3]["train_seconds"] = 80.0
        d["runs"][3]["wall_seconds"] = 85.0

    assert any("met is True" in p for p in problems(flip))
    assert any("its runs give" in p for p in problems(inflate))
    assert any("its runs give" in p for p in problems(change_run))
    assert any("3 runs of ours against 2" in p for p in problems(drop_peer_seed))
    assert any("not within 5%" in p for p in problems(stretch))


def test_a_target_off_its_nominal_budget_is_not_comparable_and_never_met():
    ours = [run("ours", s, 0.95, 100.0) for s in range(3)]
    peer = [run("peer", s, 0.90, 100.0) for s in range(3)]
    same = common.at_budget(common.target_from_runs("acc_100s", ">= 0.93", ours), 100.0, 100.0)
    assert same["met"] is True and same["budget_seconds"] == 100.0 and "comparable" not in same
    short = common.at_budget(common.ratio_target("ratio_100s", ">= 1.0", ours, peer), 100.0, 5.0)
    assert short["measured"] is None and short["met"] is False and short["comparable"] is False
    assert short["measured_at_budget"] == pytest.approx(0.95 / 0.90) and "5 s" in short["reason"]
    assert "numerator" not in short and "numerator" in short["computed_from"]
    quick = common.at_budget(common.target_from_runs("quick_acc", ">= 0.9", ours), None, 3.0)
    skipped = common.not_run("other", ">= 1.0", "--no-peers")
    assert quick["met"] is False and skipped["met"] is False and skipped["reason"] == "--no-peers"
    assert common.validate_result(doc([same, short, quick, skipped], ours + peer)) == []


def test_ratio_refuses_unequal_time_and_unequal_seeds():
    ours = [run("ours", s, 0.9, 100.0) for s in range(3)]
    with pytest.raises(common.BenchmarkError, match="differ by more than 5%"):
        common.ratio_target("r", ">= 1", ours, [run("peer", s, 0.9, 94.0) for s in range(3)])
    with pytest.raises(common.BenchmarkError, match="as many seeds as ours"):
        common.ratio_target("r", ">= 1", ours, [run("peer", 0, 0.9, 100.0)])
    # a comparison that is not at equal time says so and skips the check
    t = common.ratio_target("r", ">= 1", ours, [run("peer", s, 0.9, 50.0) for s in range(3)], equal_time=False)
    assert "equal_time" not in t and t["measured"] == pytest.approx(1.0)


def test_run_records_must_say_how_they_stopped():
    for stopped_by in ("signal", "timeout", "error", ""):
        with pytest.raises(common.BenchmarkError, match="not a measurement"):
            common.check_run(run("x", 0, 1.0, stopped_by=stopped_by))
    with pytest.raises(common.BenchmarkError, match="lacks wall_seconds"):
        common.check_run({k: v for k, v in run("x", 0, 1.0).items() if k != "wall_seconds"})
    bad = doc([common.target("t", ">= 0", 1.0)], [run("x", 0, 1.0, stopped_by="signal"), run("y", 0, 1.0)])
    bad["runs"][1]["wall_seconds"] = 50.0
    found = common.validate_result(bad)
    assert any("stopped by 'signal'" in p for p in found)
    assert any("wall_seconds 50.0 < train_seconds" in p for p in found)


def test_validator_checks_git_top_level_and_flops():
    d = doc([common.target("t", ">= 0", 1.0)], [run("x", 0, 1.0, **common.flops_utilisation(1e6, 100.0, 1e9))])
    assert d["runs"][0]["flops_utilisation"] == pytest.approx(0.1)
    assert common.validate_result(d) == []
    d["runs"][0]["flops_utilisation"] = 0.2
    d.update(git=SHA[:7] + "+dirty", git_dirty=True)
    del d["command"]
    found = common.validate_result(d)
    assert any("flops_utilisation 0.2" in p for p in found)
    assert any("not the full 40-character hash" in p for p in found)
    assert any("git_dirty without allow_dirty" in p for p in found)
    assert any("top level lacks command" in p for p in found)


# ---- the peer loop and our runs ---------------------------------------------------------------------------

def test_timed_loop_counts_steps_and_excludes_evaluation():
    evaluations = []
    loop = common.timed_loop(lambda fraction: time.sleep(0.01), 0.1, evaluate=lambda: (evaluations.append(1), time.sleep(0.05)),
                             eval_every_seconds=0.05)
    assert loop["stopped_by"] == "budget" and 5 <= loop["steps"] <= 11
    assert loop["train_seconds"] >= 0.1 and loop["wall_seconds"] >= loop["train_seconds"] + 0.05 * len(evaluations)
    assert len(evaluations) >= 1
    record = common.peer_run("plain loop", 0, loop, 0.9, "test_acc")
    assert record["id"] == "plain loop/seed0" and record["kind"] == "peer"
    fractions = []
    assert common.timed_loop(fractions.append, 10.0, max_steps=7)["steps"] == 7
    assert fractions[0] == 0.0 and all(0 <= f < 0.01 for f in fractions)
    assert common.timed_loop(lambda f: None, math.inf, max_steps=3)["stopped_by"] == "steps"


def test_timed_loop_stopped_by_a_signal_is_rejected():
    count = [0]

    def step(fraction):
        count[0] += 1
        if count[0] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    loop = common.timed_loop(step, 10.0)
    assert loop["stopped_by"] == "signal" and loop["steps"] == 3
    with pytest.raises(common.BenchmarkError, match="stopped by 'signal'"):
        common.peer_run("peer", 0, loop, 0.5, "acc")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


@pytest.mark.slow
def test_run_ours_through_the_cli_reads_summary_json(tmp_path):
    toy = [sys.executable, str(ROOT / "tests" / "engine_toy.py")]
    record = common.run_ours("toy", 1, 2.0, program=toy, env={"PYTHONPATH": str(ROOT / "tests")}, runs_root=tmp_path)
    summary = json.loads((Path(record["run_dir"]) / "summary.json").read_text())
    assert record["stopped_by"] == summary["fit"]["stopped_by"] in common.VALID_STOPS
    assert record["steps"] == summary["fit"]["step"] > 0
    assert record["train_seconds"] == summary["fit"]["train_seconds"]
    assert record["wall_seconds"] == summary["fit"]["wall_seconds"] >= record["train_seconds"]
    assert record["value"] == summary["headline"]["value"] and record["id"] == "toy/seed1"
    assert record["process_seconds"] > record["wall_seconds"] and "--max-time 2" in record["command"]
    with pytest.raises(common.BenchmarkError, match="stopped by 'error'"):
        common.run_ours("toymissing", 0, 1.0, program=toy, env={"PYTHONPATH": str(ROOT / "tests")})


@pytest.mark.parametrize("script, expect", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "stopped by 'signal'"),
    ("raise SystemExit(143)", "stopped by 'signal'"),
    ("raise SystemExit(1)", "stopped by 'error'"),
    ("import time; time.sleep(30)", "stopped by 'timeout'"),
])
def test_run_ours_rejects_signal_error_and_timeout(script, expect):
    with pytest.raises(common.BenchmarkError, match=expect):
        common.run_ours("classify", 0, 1.0, program=[sys.executable, "-c", script], timeout=3)


# ---- git, FLOPs, writing ------------------------------------------------------------------------------------

def test_git_state_refuses_a_dirty_tree(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("commit", "-qm", "a")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert common.git_state(root=tmp_path) == {"git": sha, "git_dirty": False}
    (tmp_path / "b.py").write_text("untracked\n")
    with pytest.raises(common.BenchmarkError, match="1 uncommitted change"):
        common.git_state(root=tmp_path)
    state = common.git_state(allow_dirty=True, root=tmp_path)
    assert state["git_dirty"] and state["allow_dirty"] and state["git_status"] == ["?? b.py"]
    outside = tmp_path / "copy"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("NEURALSIGHT_GIT_COMMIT", sha)
    with pytest.raises(common.BenchmarkError, match="uncommitted"):
        common.git_state(root=outside)
    assert common.git_state(allow_dirty=True, root=outside)["git"] == sha
    monkeypatch.delenv("NEURALSIGHT_GIT_COMMIT")
    with pytest.raises(common.BenchmarkError, match="cannot name the commit"):
        common.git_state(allow_dirty=True, root=outside)


def test_training_flops_per_item_of_a_linear_layer_by_hand():
    import torch

    model = torch.nn.Linear(10, 20)
    x = torch.randn(4, 10)
    # forward 2*B*10*20 = 1600; backward: input grad 1600 + weight grad 1600 (the input needs no grad,
    # so torch skips it: 1600 forward + 1600 weight grad)
    flops = common.training_flops_per_item(model, [x])
    assert flops == pytest.approx((1600 + 1600) / 4)
    assert all(p.grad is None for p in model.parameters())
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    # forward 2 * B*H*W * 8 * 3*3*3 with B=2, 5x5: 2*50*8*27 = 21600; weight grad the same
    assert common.training_flops_per_item(conv, [torch.randn(2, 3, 5, 5)]) == pytest.approx(2 * 21600 / 2)


def test_matmul_peak_is_a_median_of_timed_matmuls():
    peak = common.matmul_peak(size=128, repeats=3, dtype="float32")
    assert peak["size"] == 128 and len(peak["samples"]) == 3
    assert peak["flops_per_second"] == sorted(peak["samples"])[1] > 0


def _args(tmp_path, **kw) -> Namespace:
    return Namespace(hardware="cpu", write=False, out=None, allow_dirty=False, **kw)


def test_benchmark_writes_elsewhere_unless_asked_and_refuses_invalid(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "UNSAVED", tmp_path / "unsaved")
    monkeypatch.setattr(common, "git_state", lambda allow_dirty=False, root=None: {"git": SHA, "git_dirty": False})
    bench = common.Benchmark("demo", _args(tmp_path), torch.device("cpu"), argv=["--seeds", "1"])
    runs = [run("ours", 0, 0.95)]
    path = bench.write([common.target_from_runs("acc", ">= 0.93", runs)], runs, budget_seconds=100.0)
    assert path == tmp_path / "unsaved" / "demo-cpu.json"
    written = json.loads(path.read_text())
    assert written["git"] == SHA and written["command"].endswith("--seeds 1") and "loadavg_end" in written["hardware"]
    assert common.validate_result(written) == []
    assert not (tmp_path / "results").exists()
    bench.args.write = True
    assert bench.write([common.target("acc", ">= 0.93", 0.95)], runs) == tmp_path / "results" / "demo-cpu.json"
    lying = common.target("acc", ">= 0.93", 0.90)
    lying["met"] = True
    with pytest.raises(common.BenchmarkError, match="refusing to write"):
        bench.write([lying], runs)
    with pytest.raises(common.BenchmarkError, match="refusing to write"):
        bench.write([common.target("acc", ">= 0.93", 0.95)], [run("ours", 0, 0.95, stopped_by="signal")])
    assert json.loads((tmp_path / "results" / "demo-cpu.json").read_text())["targets"][0]["met"] is True


def test_main_exits_non_zero_on_a_benchmark_error(capsys):
    def fails():
        raise common.BenchmarkError("run x stopped by 'signal'")

    with pytest.raises(SystemExit) as info:
        common.main(fails)
    assert info.value.code == 2 and "stopped by 'signal'" in capsys.readouterr().err
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_parser_help_says_what_it_compares():
    p = common.parser("Title line.\n\nDetails.", "ours against a plain loop at equal time, by test accuracy")
    text = p.format_help()
    assert "Compares: ours against a plain loop at equal time" in text
    args = p.parse_args(["--seeds", "2", "--write", "--allow-dirty"])
    assert (args.seeds, args.write, args.allow_dirty, args.out) == (2, True, True, None)


# ---- the committed result files, mark_invalid.py, readme_table.py --------------------------------------------

def test_every_committed_result_is_valid_or_marked_invalid_with_its_recomputed_problems():
    results = common.load_results()
    assert results, "benchmarks/results/ holds no result file"
    for path, d in results.items():
        problems = common.validate_result({k: v for k, v in d.items() if k not in mark_invalid.MARK_KEYS})
        if "invalid" in d:
            assert isinstance(d["invalid"], str) and d["invalid"].strip(), path
            # the recorded problems are what the validator finds now (flags recomputed, not typed)
            assert d["invalid_problems"] == problems, path
        else:
            assert problems == [], f"{path.name}: {problems}"


def test_mark_invalid_keeps_the_measurements(tmp_path):
    original = doc([{"name": "acc", "target": ">= 0.9", "measured": 0.8, "met": True}], [run("x", 0, 0.8)])
    path = tmp_path / "demo-cpu.json"
    path.write_text(json.dumps(original))
    assert mark_invalid.main(["--reason", "met edited by hand", str(path)]) == 0
    marked = json.loads(path.read_text())
    assert list(marked)[:4] == ["benchmark", "invalid", "invalid_problems", "invalidated"]
    assert marked["invalid"] == "met edited by hand"
    assert marked["invalid_problems"] == ["target acc: met is True but 0.8 >= 0.9 is False"]
    assert {k: v for k, v in marked.items() if k not in mark_invalid.MARK_KEYS} == original
    mark_invalid.main(["--reason", "again", str(path)])
    assert json.loads(path.read_text())["invalid"] == "again"


def test_readme_table_rows_and_check(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    ours = [run("ours", s, v) for s, v in enumerate([0.94, 0.95, 0.93])]
    peer = [run("peer", s, v, 101.0) for s, v in enumerate([0.92, 0.90, 0.91])]
    valid = doc([common.target_from_runs("test_acc_100s", ">= 0.93", ours),
                 common.ratio_target("ratio_vs_peer", ">= 1.005", ours, peer)], ours + peer)
    (results / "demo-cpu.json").write_text(json.dumps(valid))
    (results / "demo-h200.json").write_text(json.dumps(mark_invalid.mark(valid, "no GPU to re-run", "x", SHA)))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_table.BEGIN}\nold table\n{readme_table.END}\nafter\n")
    args = ["--readme", str(readme), "--results", str(results)]
    assert readme_table.main([*args, "--check"]) == 1
    assert readme_table.main(args) == 0
    text = readme.read_text()
    assert readme_table.main([*args, "--check"]) == 0
    assert text.startswith("intro\n") and text.endswith("after\n") and "old table" not in text
    row = next(line for line in text.splitlines() if "test_acc_100s" in line)
    assert "| 0.94 | >= 0.93 | yes | 100 s budget, 100.0 s trained | cpu: test CPU, 2 threads | 3 |" in row
    ratio = next(line for line in text.splitlines() if "ratio_vs_peer" in line)
    assert f"| {0.94 / 0.91:.4g} | >= 1.005 | yes |" in ratio and "| 3 vs 3 |" in ratio and "spread 1.0%" in ratio
    assert "`demo-h200.json`: no GPU to re-run" in text and text.count("test_acc_100s") == 1
    (results / "broken-cpu.json").write_text(json.dumps({**valid, "git": "unknown"}))
    with pytest.raises(SystemExit, match="not a valid result and not marked invalid"):
        readme_table.main([*args, "--check"])
    readme.write_text("no markers\n")
    (results / "broken-cpu.json").unlink()
    with pytest.raises(SystemExit, match="exactly one"):
        readme_table.main(args)


def test_readme_matches_the_result_files():
    assert readme_table.main(["--check"]) == 0, "run: python benchmarks/readme_table.py"


BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py")
                    if p.stem not in ("common", "readme_table", "mark_invalid", "__init__"))


def test_there_are_benchmarks():
    assert {p.stem for p in BENCHMARKS} >= {"fashion_mnist", "textgen", "segmentation", "segment3d", "forecast",
                                            "engine_overhead"}


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_every_benchmark_help_says_what_it_compares(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr
    assert "Compares: " in out.stdout and " against " in out.stdout.split("Compares: ", 1)[1].split("\n\n")[0]
    for flag in ("--write", "--allow-dirty", "--seeds", "--hardware", "--out"):
        assert flag in out.stdout, flag


# ---- every benchmark script, smoke-run for a few seconds -------------------------------------------------------
# A tiny configuration of each script, written to a temporary file (never benchmarks/results/) from this tree as it
# is (--allow-dirty): the file validates and holds every target of issue 13 by its exact name. The budgets are far
# below the nominal ones, so the budget-named targets are recorded as not comparable (met false, with the reason).

SMOKE = {
    "fashion_mnist": (["--seeds", "1", "--budget", "4", "--presets", "fashion", "--no-probe", "--quick-budget", "3"],
                      ["test_acc_120s", "acc_ratio_vs_plain_loop_equal_time", "quick_test_acc", "real_photos_acc"],
                      ["fashion-mnist"], ["fashion-photos"], []),
    "segmentation": (["--seeds", "1", "--budget", "5", "--long-budget", "0", "--quick-budget", "3", "--datasets",
                      "pets", "--peer-features", "4", "4", "8", "8", "16", "4", "--set", "data.image_size=32",
                      "--set", "data.max_train=24", "--set", "data.max_val=8", "--set", "data.max_test=8", "--set",
                      "model.depth=2", "--set", "model.base_channels=4", "--set", "train.batch_size=4"],
                     ["pets_fg_iou_ratio_vs_monai_75s", "pets_fg_iou_ratio_vs_monai_600s", "pets_fg_iou_600s",
                      "pets_quick_fg_iou", "liver_dice_ratio_vs_monai_75s", "dental_iou_ratio_vs_monai_75s",
                      "dental_xray_dice_ratio_vs_monai_75s"], ["oxford-pets"], [], ["monai"]),
    "segment3d": (["--seeds", "1", "--budget", "6", "--limit", "12", "--set", "data.patch_size=[16,16,16]", "--set",
                   "model.base_channels=4", "--set", "eval.roi_size=[32,32,32]"],
                  ["vnet_dice_ratio_vs_monai_unet_300s", "best_dice_mean_300s"], ["msd-hippocampus"], [],
                  ["monai", "nibabel"]),
    "textgen": (["--seeds", "1", "--budget", "5", "--cells", "", "--romeo-budget", "0", "--set",
                 "model.hidden_size=32", "--set", "data.eval_streams=256", "--set", "train.eval_every=50",
                 "--peer-set", "n_layer=1", "--peer-set", "n_head=2", "--peer-set", "n_embd=32", "--peer-set",
                 "block_size=32"],
                ["tinyshakespeare_val_loss_180s", "lstm_vs_char_transformer_equal_time"], ["tinyshakespeare"], [], []),
    "forecast": (["--seeds", "1", "--budget", "2"],
                 ["lstm_mase_h7_ratio_vs_best_classical", "lstm_relative_mae_h7_vs_seasonal_naive",
                  "interval_coverage_80"], ["covid-hu"], [], ["statsmodels"]),
    "engine_overhead": (["--seeds", "1", "--steps", "5", "--batch-size", "16"], ["engine_throughput_vs_bare_loop"],
                        [], [], []),
}


def test_every_benchmark_has_a_smoke_run():
    assert set(SMOKE) == {p.stem for p in BENCHMARKS}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMOKE))
def test_benchmark_smoke_run_writes_a_valid_file_with_its_targets(name, tmp_path):
    from conftest import shared_data, shared_folder

    args, names, datasets, folders, modules = SMOKE[name]
    for module in modules:
        pytest.importorskip(module)
    for dataset in datasets:
        shared_data(dataset)
    for folder in folders:
        shared_folder(folder)
    out = tmp_path / f"{name}-cpu.json"
    before = sorted(common.RESULTS.glob("*.json"))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--device", "cpu",
                           "--hardware", "cpu", "--allow-dirty", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert common.validate_result(doc) == [], common.validate_result(doc)
    targets = {t["name"]: t for t in doc["targets"]}
    assert set(names) <= set(targets), sorted(set(names) - set(targets))
    for t in targets.values():
        # a target measured off its nominal budget (or not run) never claims to be met
        if t.get("comparable") is False:
            assert t["measured"] is None and t["met"] is False and t["reason"]
    assert doc["runs"] and all(r["stopped_by"] in common.VALID_STOPS for r in doc["runs"])
    assert sorted(common.RESULTS.glob("*.json")) == before           # nothing written to benchmarks/results
