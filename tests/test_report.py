"""The HTML report: built from a run of the command (hostile class names included, a scripted
model: see fake_training.py), offline and inert; still built for failed, one-trial, interrupted
and old-format runs; and its facts."""

import base64
import copy
import html.parser
import io
import json
import os
import random
import re
import shutil
import subprocess

import numpy as np
import pytest
from helpers import write_folder
from PIL import Image

import autoprep
from autoprep import cli
from autoprep.cli import tune as cli_tune
from autoprep.report import Refresher, build_report, facts, sections

HOSTILE = "<script>"  # a class folder name that must stay text
CLASSES = [HOSTILE, '$x$ & "q"', "plain"]


class Page(html.parser.HTMLParser):
    """The parts of a page the tests check: section ids, tags, image sources, links."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.tags, self.images, self.links = [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.ids.append(attrs.get("id"))
        if "src" in attrs:
            self.images.append(attrs["src"])
        if "href" in attrs:
            self.links.append(attrs["href"])


def check_page(text) -> Page:
    """Every section present, every image an embedded PNG that decodes, nothing external."""
    page = Page(text)
    assert page.ids == [anchor for anchor, _, _ in sections.SECTIONS]
    assert "script" not in page.tags and "iframe" not in page.tags and "link" not in page.tags
    assert page.images, "no image"
    for source in page.images:
        assert source.startswith("data:image/png;base64,"), source[:40]
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        image.load()
        assert image.format == "PNG" and min(image.size) > 10
    assert all(link.startswith("#") for link in page.links), page.links
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "url(" not in text and "@import" not in text
    return page


def hostile_folder(root):
    """Tiny 8x8 images in three classes named like an attack on the page."""
    data = write_folder(root, [12, 12, 6])
    for c, name in enumerate(CLASSES):
        os.rename(os.path.join(data, f"class_{c}"), os.path.join(data, name))
    return data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An `autoprep tune` (2 trials) of the scripted model (fake_training.py) whose report is
    refreshed after every trial."""
    from fake_training import FakeTraining

    root = tmp_path_factory.mktemp("report")
    data = hostile_folder(root / "data")
    run_dir = str(root / "runs" / "run")
    with pytest.MonkeyPatch.context() as patch:
        FakeTraining().install(patch)
        patch.setattr(cli_tune, "REPORT_REFRESH_SECONDS", 0)
        code = cli.main(["tune", data, "--model", "fake_training:model_fn", "--out", run_dir,
                         "--max-trials", "2", "--epochs", "1", "--final-repeats", "2",
                         "--tuner", "random", "--seed", "1"])
    assert code == 0
    return run_dir


def test_tune_writes_a_complete_offline_report_with_inert_class_names(run, capsys):
    with open(os.path.join(run, "report.html"), encoding="utf-8") as handle:
        text = handle.read()
    check_page(text)
    assert "section-error" not in text
    # All three confusion matrices were recorded and their recalls shown.
    result = autoprep.load_result(run)
    assert set(result.confusion) == {"validation", "test", "baseline_test"}
    assert np.sum(result.confusion["test"]) == 2 * result.data["test_size"]
    # The winner was chosen after re-evaluations: the page gives their mean and the reason.
    assert result.selection and "validation (chosen)" in text
    assert f"chosen: trial {result.best_trial}" in text
    assert sections.NOT_RECORDED not in text
    # The hostile class name is text, never markup.
    assert HOSTILE not in text and "&lt;script&gt;" in text
    assert "&quot;q&quot;" in text
    # Refreshed after each trial (interval 0), once more at the end; each states its time.
    with open(os.path.join(run, "autoprep.log"), encoding="utf-8") as handle:
        reports = [line for line in handle if "report: " in line]
    assert len(reports) == 3 and all(re.search(r"written in \d+\.\d s\)$", r) for r in reports)
    # `show` says where the report is; `autoprep report -o` writes another copy.
    assert cli.main(["show", run]) == 0
    assert f"report: {os.path.join(run, 'report.html')} (written" in capsys.readouterr().out
    other = os.path.join(os.path.dirname(run), "copy.html")
    assert cli.main(["report", run, "-o", other]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {other}"
    check_page(open(other, encoding="utf-8").read())


def test_a_rewrite_during_the_search_leaves_the_random_state_alone(run):
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.rand())
    random.seed(1)
    np.random.seed(1)
    assert Refresher(interval=0).write(autoprep.load_result(run)).startswith("report: ")
    assert (random.random(), np.random.rand()) == expected  # Keras layers seed from `random`


def _variant(run, change):
    """A copy of the run's results, changed by `change(state)`, loaded as a TuneResult."""
    with open(os.path.join(run, "results.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    change(state)
    return autoprep.TuneResult.from_dict(copy.deepcopy(state), run_dir=run)


def _failed(state):
    reason = 'ValueError: boom <img src=x onerror="alert(1)">'
    state["trials"] += [
        {"trial_id": "9", "status": "FAILED", "score": None, "config": None,
         "model_hyperparameters": {}, "message": f"Traceback ...\n{reason}\n"},
        {"trial_id": "10", "status": "FAILED", "score": None,
         "config": state["trials"][0]["config"], "model_hyperparameters": {},
         "message": "The process died twice while running this trial; it is not retried."},
    ]


def _one_trial(state):
    state["trials"] = state["trials"][:1]
    state["best_trial_id"] = state["trials"][0]["trial_id"]


def _interrupted(state):
    state.update(state="interrupted", test_score=None, test_scores=None, baseline_score=None,
                 baseline_scores=None, confusion={})


def _nothing_completed(state):
    _interrupted(state)
    for trial in state["trials"]:
        trial.update(status="FAILED", score=None, message="RuntimeError: out of memory")
    state.update(best_config=None, best_score=None, best_trial_id=None)


def _old_format(state):
    del state["confusion"]


def _not_re_evaluated(state):
    state["selection"] = None


def _augmenting_winner(state):
    state["best_config"]["augmentation"] = [{"name": "rotation", "intensity": 0.2},
                                           {"name": "mixup", "intensity": 0.4}]
    state["best_config"]["imbalance"] = {"name": "oversample"}


@pytest.mark.parametrize("change, expected", [
    (_failed, ["Failed trials (2)", "ValueError: boom &lt;img src=x onerror=&quot;alert(1)"]),
    (_one_trial, ["No ranking: it needs at least 4 completed trials (1 so far)"]),
    (_interrupted, ["search interrupted", "Test score: not recorded"]),
    (_nothing_completed, ["No trial has completed yet", "Failed trials (2)"]),
    (_old_format, ["Confusion matrix not recorded: best pipeline, validation split"]),
    (_augmenting_winner, ["beside 5 random draws", "images drawn in one epoch"]),
    (_not_re_evaluated, ["validation (best trial)", "the best of 2"]),
])
def test_the_report_still_builds_for_unusual_runs(run, change, expected):
    text = build_report(_variant(run, change), doctor=None)
    check_page(text)
    assert "section-error" not in text
    for phrase in expected:
        assert phrase in text
    assert "onerror=\"" not in text


def test_a_broken_section_is_reported_and_the_page_still_builds(monkeypatch):
    def broken(ctx):
        raise KeyError("best_config")

    monkeypatch.setattr(sections, "SECTIONS", [("answer", "The answer", broken)])
    result = autoprep.TuneResult(best_config=None, best_score=None, objective="accuracy",
                                 trials=[], data={}, epochs=1, run_dir="/nowhere")
    text = build_report(result, doctor=None)
    assert "This section could not be built: KeyError: &#x27;best_config&#x27;" in text


def test_refresher_waits_its_interval_and_never_raises(tmp_path):
    result = autoprep.TuneResult(best_config=None, best_score=None, objective="accuracy",
                                 trials=[], data=None, epochs=1, run_dir=str(tmp_path / "gone"))
    refresher = Refresher(interval=3600)
    assert refresher.trial_ended(result) is None  # too soon
    line = Refresher(interval=0).trial_ended(result)
    assert line.startswith("report not written: FileNotFoundError")


# -- facts, without a run --------------------------------------------------------------------
def _trials(n, seed=0):
    """`n` synthetic trials whose score depends on the normalization only."""
    rng = np.random.default_rng(seed)
    gains = {"none": 0.0, "rescale_01": 0.3, "per_channel": 0.35}
    trials = []
    for i in range(n):
        name = list(gains)[i % 3]
        config = {"normalization": {"name": name},
                  "augmentation": [{"name": "rotation", "intensity": float(rng.uniform(0, .5))}],
                  "imbalance": {"name": ["none", "oversample"][int(rng.integers(2))]}}
        trials.append({"trial_id": str(i), "status": "COMPLETED", "config": config,
                       "score": 0.5 + gains[name] + float(rng.normal(0, 0.01))})
    return trials


def test_importance_ranks_the_dimension_that_drives_the_score_first():
    found = facts.importance(facts.trial_table(_trials(60)))
    assert found.ranking[0][0] == "normalization" and not found.uncertain
    assert found.ranking[0][1] > 5 * max(m for _, m, _ in found.ranking[1:])
    few = facts.importance(facts.trial_table(_trials(8)))
    assert few.uncertain and few.ranking


# Winners whose "Use it" lines differ from the plain ones: one-hot labels and a callback in
# FIT_KWARGS, the search's loss, the post-hoc adjusted prediction.
USE_IT = [
    {"normalization": "rescale_01", "augmentation": [{"name": "mixup", "intensity": 0.2}],
     "imbalance": {"name": "deferred_reweighting", "beta": 0.99, "start": 0.5}},
    {"normalization": "per_channel", "augmentation": [{"name": "cutmix", "intensity": 0.5}],
     "imbalance": {"name": "logit_adjusted_loss", "tau": 1.5}},
    {"normalization": "robust", "augmentation": [], "imbalance": "posthoc_logit_adjustment"},
]


@pytest.mark.parametrize("config", USE_IT, ids=lambda c: c["imbalance"].get("name", c["imbalance"])
                         if isinstance(c["imbalance"], dict) else c["imbalance"])
def test_the_use_it_lines_run_with_the_exported_module(tmp_path, monkeypatch, config):
    import importlib.util
    import sys

    import keras

    from autoprep.choices.pipeline import Pipeline
    from autoprep.data.decode import read_image_folder

    data_dir = write_folder(tmp_path / "data", [6, 6, 3])
    folder = read_image_folder(data_dir)
    pipeline = Pipeline(**config).fit(folder.images, folder.labels, 3)
    if hasattr(pipeline.imbalance, "tau_"):
        pipeline.imbalance.tau_ = 2.5  # as tuned on validation predictions: a large shift
    data = {"data_dir": data_dir, "class_names": folder.class_names, "class_counts": [6, 6, 3],
            "image_size": [8, 8], "channels": 1}
    result = autoprep.TuneResult(best_config=pipeline.get_config(), best_score=0.5,
                                 objective="balanced_accuracy", trials=[], data=data, epochs=1,
                                 run_dir=str(tmp_path / "run"))
    page = sections.answer(sections.Context(result, doctor=None))
    export_command, lines = [html.unescape(block) for block in
                             re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)[:2]]
    assert export_command.endswith("-o pipeline.py")
    path = result.export(tmp_path / "pipeline.py")
    spec = importlib.util.spec_from_file_location("pipeline", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pipeline", module)  # what `import pipeline` finds
    spec.loader.exec_module(module)
    # The user's model, compiled as usual for integer labels.
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = folder.images[:5]
    namespace = {"model": model, "uint8_images": images}
    exec(lines, namespace)  # noqa: S102 (the lines the report tells users to run)
    name = pipeline.imbalance.name
    if name == "posthoc_logit_adjustment":
        predicted = np.argmax(pipeline.imbalance.adjust(
            model.predict(module.preprocess(images), verbose=0)), axis=-1)
        np.testing.assert_array_equal(namespace["predicted"], predicted)
    else:
        assert namespace["probabilities"].shape == (5, 3)
    if name == "logit_adjusted_loss":
        assert type(model.loss).__name__ == "LogitAdjustedLoss" and model.loss.tau == 1.5
    # The module's own docstring shows the same lines (but for the data folder and epochs).
    same = [line for line in lines.splitlines() if "compile" in line or "predict" in line]
    assert same and all(f"    {line}\n" in module.__doc__ for line in same)


def test_trial_table_history_and_recall():
    trials = _trials(3)
    trials[1]["config"]["augmentation"] = []  # rotation off
    trials[2]["config"]["imbalance"] = {"name": "effective_number", "beta": 0.99}
    trials.append({"trial_id": "3", "status": "FAILED", "score": None, "config": None,
                   "message": "Traceback\nValueError: nan loss\n"})
    table = facts.trial_table(trials)
    assert table.columns["rotation"][1] == 0.0
    beta = table.columns["imbalance beta"]
    assert np.isnan(beta[0]) and beta[2] == 0.99
    hist = facts.history(trials, "accuracy")
    assert hist.failures == [(4, "FAILED", "ValueError: nan loss")]  # trial id "3": trial 4
    assert hist.numbers == [1, 2, 3, 4]
    assert hist.best_so_far == sorted(hist.best_so_far)
    assert facts.recall([[3, 1], [0, 0]]) == [0.75, None]


# -- in a browser ----------------------------------------------------------------------------
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])),
                None)
WINDOW = (1200, 16000)


def plot_blue(pixels):
    """Where the plots' blues are (figures.GOOD, blended, the Blues color map): the page's own
    styles use no blue."""
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    return (b > r + 50) & (b > g + 20)


def chromium(path, tmp_path):
    """Loads a file in headless Chromium; returns (screenshot, console lines)."""
    shot = tmp_path / f"{os.path.basename(path)}.png"
    process = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--hide-scrollbars", f"--screenshot={shot}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}",
         f"file://{os.path.abspath(path)}"],
        capture_output=True, text=True, timeout=180,
    )
    assert shot.exists(), process.stderr[-2000:]
    console = [line for line in process.stderr.splitlines() if ":CONSOLE" in line]
    return np.asarray(Image.open(shot).convert("RGB")), console


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed here and could not be "
                    "installed (.ci/run installs the Debian package chromium): browser check "
                    "skipped")
def test_chromium_renders_the_report_with_its_plots_and_no_console_error(run, tmp_path):
    pixels, console = chromium(os.path.join(run, "report.html"), tmp_path)
    assert console == []
    background = np.all(pixels == (250, 250, 250), axis=-1)
    height = int(np.flatnonzero(~background.all(axis=1))[-1]) + 1
    assert 3000 < height < WINDOW[1]  # the whole page fits in the shot and is long
    blue = plot_blue(pixels)
    # Plot colors appear all down the page: the answer, history, what mattered, classes (the
    # scripted trainings' answer and history plots are a few dots: tens of blue pixels).
    bands = [int(blue[top:top + height // 4].sum()) for top in range(0, height, height // 4)]
    assert sum(bands) > 20000 and sum(b > 20 for b in bands[:4]) == 4, bands
    # The check can fail: a page with a script error and a broken image is caught.
    bad = tmp_path / "bad.html"
    bad.write_text('<p>x</p><img src="missing.png"><script>console.error("boom")</script>')
    pixels, console = chromium(bad, tmp_path)
    assert any('"boom"' in line for line in console)
    assert not plot_blue(pixels).any()


def test_every_choice_is_described_by_its_whole_summary():
    from autoprep.choices import AUGMENTATIONS, IMBALANCE_STRATEGIES, NORMALIZATIONS
    from autoprep.report.sections import _summary

    for registry in (NORMALIZATIONS, AUGMENTATIONS, IMBALANCE_STRATEGIES):
        for name in registry:
            summary = _summary(registry, name)
            assert summary.endswith(".") and "\n" not in summary, (name, summary)
    # A summary over several docstring lines comes whole, not cut after its first line.
    assert _summary(IMBALANCE_STRATEGIES, "posthoc_logit_adjustment").endswith(
        "the exported module applies it in `adjust` and `predict`.")
