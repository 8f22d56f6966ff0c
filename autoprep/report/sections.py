"""The sections of the report, in reading order; each returns HTML built with `page`."""

import functools
import os
import traceback

from autoprep._text import summarize
from autoprep.report import facts, figures
from autoprep.report.findings import DOCTOR_MAX_IMAGES, doctor_report
from autoprep.report.page import code, esc, image, num, para, table
from autoprep.run.convention import recorded
from autoprep.run.files import TENSORBOARD_DIR
from autoprep.run.trial import number_of, trial_text

NOT_RECORDED = "not recorded"


class Context:
    """The result and what several sections share, each computed once, on first use."""

    def __init__(self, result, *, doctor="auto"):
        self.result = result
        self.doctor = doctor
        self.objective = result.objective
        self.class_names = list((result.data or {}).get("class_names", []))

    @functools.cached_property
    def table(self) -> facts.TrialTable:
        return facts.trial_table(self.result.trials)

    @functools.cached_property
    def module(self) -> tuple:
        """(module, source) of the exported best pipeline."""
        from autoprep.report.preview import exported_module

        return exported_module(self.result)

    @property
    def data_dir(self):
        return (self.result.data or {}).get("data_dir")


def safely(builder, context) -> str:
    """The section's HTML, or a note saying why it could not be built."""
    try:
        return builder(context)
    except Exception as error:  # one broken section must not cost the whole page
        reason = "".join(traceback.format_exception_only(type(error), error)).strip()
        return para(f"This section could not be built: {reason}", "bad section-error")


# -- the answer --------------------------------------------------------------------------
def answer(ctx) -> str:
    result = ctx.result
    if result.best_config is None:
        return para("No trial has completed yet, so there is no best pipeline. "
                    f"{len(result.trials)} trial(s) finished without a score.", "warn")
    parts = [f'<div class="answer"><b>Best pipeline:</b> {esc(summarize(result.best_config))}'
             f"<ul>{''.join(f'<li>{esc(line)}</li>' for line in _words(result.best_config))}"
             "</ul></div>"]
    parts.append(_convention(result))
    tuned, base = facts.spread(result.test_scores), facts.spread(result.baseline_scores)
    if isinstance(result.selection, dict):  # chosen after re-evaluating the top ones
        rows = [("validation (chosen)", num(result.best_score),
                 f"chosen: {result.selection.get('reason', '')}")]
    else:
        rows = [("validation (best trial)", num(result.best_score),
                 f"trial {result.best_trial}, the best of {len(result.trials)}")]
    for label, stats in (("test, best pipeline", tuned), ("test, raw-pixel baseline", base)):
        rows.append((label, num(stats.get("mean")), _spread_text(stats)))
    if tuned and base:
        rows.append(("test difference", f"{tuned['mean'] - base['mean']:+.4f}",
                     "best pipeline minus baseline, means"))
    parts.append(table([f"{result.objective}", "score", "detail"], rows, numeric=(1,)))
    if tuned:
        parts.append(image(figures.test_scores(result.test_scores, result.baseline_scores,
                                               result.objective), "test scores per training"))
    else:
        parts.append(para(f"Test score: {NOT_RECORDED}. It is computed after the search "
                          f"(this run is {result.state}), and only with a test split.", "note"))
    parts.append(_snippet(ctx))
    return "".join(parts)


def _convention(result) -> str:
    """What the model expects of its pixels and what the search did with it ("" if unknown)."""
    convention = recorded(result.data)  # None for runs of older versions
    if convention is None:
        return ""
    text = para("Model input: " + convention.describe() + ".", "note")
    return text + "".join(para("Warning: " + problem, "warn") for problem in convention.problems)


def _spread_text(stats) -> str:
    if not stats:
        return NOT_RECORDED
    if stats["n"] == 1:
        return "one training"
    return (f"mean of {stats['n']} trainings (seeds): std {stats['std']:.4f}, "
            f"range {stats['min']:.4f} to {stats['max']:.4f}")


def _words(config) -> list:
    """One line per part of the pipeline: its settings and what the choice does."""
    from autoprep.choices import AUGMENTATIONS, IMBALANCE_STRATEGIES, NORMALIZATIONS

    def described(registry, part):
        settings = ", ".join(f"{k}={v}" for k, v in part.items()
                             if k != "name" and not k.endswith("_"))
        doc = _summary(registry, part["name"])
        return part["name"] + (f" ({settings})" if settings else "") + (f": {doc}" if doc else "")

    lines = ["normalization " + described(NORMALIZATIONS, config["normalization"])]
    ops = config["augmentation"]
    lines += ["augmentation " + described(AUGMENTATIONS, op) for op in ops]
    if not ops:
        lines.append("augmentation: none (training images are used as they are)")
    lines.append("class imbalance " + described(IMBALANCE_STRATEGIES, config["imbalance"]))
    return lines


def _summary(registry, name) -> str:
    """The summary of a registered choice's docstring (its first paragraph) on one line."""
    try:
        doc = registry.get(name).__doc__ or ""
    except Exception:  # a name from another version of autoprep
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _snippet(ctx) -> str:
    """How to use the chosen pipeline: the export command, and the lines of a training script
    for this pipeline (its loss, fit arguments and prediction)."""
    from autoprep.export.module import usage

    result = ctx.result
    run_dir = result.run_dir or "RUN_DIR"
    lines = usage(result.pipeline, data_dir=repr(ctx.data_dir), epochs=result.epochs)
    _, source = ctx.module
    return ("<h3>Use it</h3>" + code(f"autoprep export {run_dir} -o pipeline.py") + code(lines)
            + f"<details><summary>The exported module ({len(source.splitlines())} lines, "
            "imports only TensorFlow)</summary>" + code(source) + "</details>")


# -- search history ------------------------------------------------------------------------
def search_history(ctx) -> str:
    result = ctx.result
    if not result.trials:
        return para("No trial has finished yet.", "warn")
    hist = facts.history(result.trials, result.objective)
    parts = [image(figures.history(hist, result.objective), "score per trial")]
    if hist.failures:
        parts.append(f"<h3>Failed trials ({len(hist.failures)})</h3>")
        parts.append(table(["trial", "status", "reason"], hist.failures, numeric=(0,)))
    else:
        parts.append(para("No trial failed.", "note"))
    rows, classes = [], []
    for trial in result.trials:
        rows.append((number_of(trial), trial.get("status", ""), num(trial.get("score")),
                     trial_text(trial)))
        classes.append("failed" if trial.get("score") is None else "")
    parts.append(f"<details><summary>All {len(rows)} trials</summary>"
                 + table(["trial", "status", result.objective, "pipeline"], rows,
                         numeric=(0, 2), row_classes=classes) + "</details>")
    board = os.path.join(result.run_dir or "", TENSORBOARD_DIR)
    if result.run_dir and os.path.isdir(board):
        parts.append(para(f"Every trial's training curves and hyperparameters are in TensorBoard: "
                          f"tensorboard --logdir {board}  (then the HParams tab).", "note"))
    return "".join(parts)


# -- what mattered -----------------------------------------------------------------------
def what_mattered(ctx) -> str:
    table_ = ctx.table
    if len(table_.scores) == 0:
        return para("No completed trial yet.", "warn")
    categorical = [name for name in table_.columns if table_.is_category(name)]
    shown = ["normalization", "imbalance"] + [
        name for name in table_.varied() if name in categorical and name not in
        ("normalization", "imbalance")]
    panels = [(f"score by {name}", facts.grouped_scores(table_, name, ctx.objective))
              for name in shown if name in table_.columns]
    parts = ["<h3>Score by choice</h3>",
             image(figures.categories(panels, ctx.objective), "score by choice"),
             para("One dot per completed trial; the bar is the mean. The count of trials is in "
                  "brackets.", "note")]
    numeric = [name for name in table_.columns if not table_.is_category(name)]
    if numeric:
        best = _best_row(ctx)
        parts += ["<h3>Score against each intensity</h3>", image(figures.intensities(
            [(name, table_.columns[name], table_.scores) for name in numeric],
            ctx.objective, best), "score against intensities"),
            para("0 means the op is off. The red ring is the best trial.", "note")]
    parts.append(_importance(table_))
    return "".join(parts)


def _best_row(ctx):
    ids = ctx.table.trial_ids
    return ids.index(ctx.result.best_trial_id) if ctx.result.best_trial_id in ids else None


def _importance(table_) -> str:
    found = facts.importance(table_)
    parts = ["<h3>Which dimension matters most</h3>"]
    if not found.ranking:
        parts.append(para(f"No ranking: it {found.reason}.", "warn"))
    else:
        parts.append(image(figures.importance(found.ranking), "dimension importance"))
        parts.append(para(
            f"Permutation importance of a scikit-learn random forest fitted to predict the "
            f"validation score from the searched dimensions, over {found.trials} completed "
            f"trials; the forest explains R² = {found.r2:.2f} of the score variance out of bag."))
        if found.uncertain:
            parts.append(para(
                f"This ranking is uncertain: it rests on {found.trials} trials (confident from "
                f"{facts.CONFIDENT_TRIALS} on, with an out-of-bag R² above "
                f"{facts.CONFIDENT_R2}). Read it as a hint, not a measurement.", "warn"))
    if found.fixed:
        parts.append(para("Not varied in this search (no importance): "
                          + ", ".join(found.fixed) + ".", "note"))
    return "".join(parts)


# -- augmentation preview ------------------------------------------------------------------
def augmentation_preview(ctx) -> str:
    from autoprep.report.preview import PREVIEW_DRAWS, preview_images

    result = ctx.result
    if result.best_config is None:
        return para("No best pipeline yet.", "warn")
    if not ctx.data_dir or not os.path.isdir(ctx.data_dir):
        return para(f"The image folder {ctx.data_dir} is not found on this machine, so no "
                    "images can be shown.", "warn")
    module, _ = ctx.module
    augments = bool(module.make_augmentation_layers()) or module.make_mix_layer() is not None
    draws = PREVIEW_DRAWS if augments else 0
    rows, labels = preview_images(module, ctx.data_dir, draws=draws)
    if not rows:
        return para(f"No image found in {ctx.data_dir}.", "warn")
    names = [ctx.class_names[label] for label in labels]
    gray = rows[0][0].shape[-1] == 1
    if augments:
        columns = ["original"] + [f"draw {i + 1}" for i in range(draws)]
        uri = figures.image_grid(rows, names, columns, gray=gray)
    else:  # originals only: one row
        uri = figures.image_grid([[row[0] for row in rows]], ["original"], names, gray=gray)
    note = (f"Real training images (one per class, in turn), the original beside {draws} "
            "random draws of the winning augmentation, made by the exported module's own "
            "make_augmentation_layers(), make_mix_layer() and augment(); pixels before "
            "normalization. Over-augmentation shows here: digits you can no longer read, "
            "objects pushed out of the frame." if augments else
            "The winning pipeline does not augment: training images are used as they are.")
    return image(uri, "augmentation preview") + para(note, "note")


# -- classes -------------------------------------------------------------------------------
def classes(ctx) -> str:
    result = ctx.result
    names = ctx.class_names
    counts = list((result.data or {}).get("class_counts", []))
    parts = []
    after, after_label, note = None, "", "no best pipeline yet"
    if result.best_config is not None:
        from autoprep.report.preview import counts_after

        after, after_label, note = counts_after(ctx.module[0], counts)
    strategy = result.best_config["imbalance"]["name"] if result.best_config else "?"
    parts.append(image(figures.class_counts(names, counts, after, after_label), "class counts"))
    parts.append(para(f"Imbalance strategy {strategy}: {note}. Counts are for all "
                      f"{sum(counts)} images of the folder; the training part of each split has "
                      "the same proportions.", "note"))
    matrices = result.confusion or {}
    recalls = {key: facts.recall(matrices[key]) for key in facts.CONFUSION_SOURCES
               if key in matrices}
    header = ["class", "images", after_label or "after (unchanged)"] + [
        f"recall: {label}" for label in facts.CONFUSION_SOURCES.values()]
    rows = []
    for c, name in enumerate(names):
        row = [name, counts[c] if c < len(counts) else "?",
               "=" if after is None else f"{after[c]:.1f}"]
        row += [num(recalls[key][c], 3) if key in recalls else NOT_RECORDED
                for key in facts.CONFUSION_SOURCES]
        rows.append(row)
    parts.append(table(header, rows, numeric=(1, 2, 3, 4, 5)))
    panels = [(label, matrices[key]) for key, label in facts.CONFUSION_SOURCES.items()
              if key in matrices]
    if panels:
        parts.append(image(figures.confusions(panels, names), "confusion matrices"))
        parts.append(para("Rows: true class, columns: predicted; color: share of the row "
                          "(recall on the diagonal). Test matrices add up the repeated "
                          "trainings.", "note"))
    missing = [label for key, label in facts.CONFUSION_SOURCES.items() if key not in matrices]
    if missing:
        parts.append(para("Confusion matrix " + NOT_RECORDED + ": " + "; ".join(missing)
                          + " (runs of older versions, runs stopped before the test "
                          "trainings, or a loss objective do not have them).", "note"))
    return "".join(parts)


# -- the doctor ----------------------------------------------------------------------------
def doctor(ctx) -> str:
    found = doctor_report(ctx.result) if ctx.doctor == "auto" else ctx.doctor
    if found is None:
        return para(f"Not computed for this report (only folders of at most {DOCTOR_MAX_IMAGES} "
                    f"images that are on this machine are checked here). Run: autoprep doctor "
                    f"{ctx.data_dir}", "note")
    shown = [f for f in found.findings if f.severity in ("error", "warning")]
    others = len(found.findings) - len(shown)
    if not shown:
        return para(f"No error or warning about the data ({others} informational findings; "
                    f"autoprep doctor {ctx.data_dir} lists them).", "note")
    rows = [(f.severity, f.title, f.evidence, f.fix) for f in shown]
    return (table(["severity", "finding", "evidence", "fix"], rows)
            + para(f"Data checks of autoprep doctor ({others} informational findings not "
                   "shown).", "note") + _label_issue_grid(found, ctx.data_dir))


LABEL_ISSUE_THUMBNAILS = 24
LABEL_ISSUE_ROWS = 200  # rows of the table of every listed image (results.json has them all)


def _label_issue_grid(found, data_dir) -> str:
    """The doctor's likeliest mislabeled images as thumbnails: folder, and the class they
    look like."""
    finding = next((f for f in found.findings if f.id == "label_issues"), None)
    if finding is None or not data_dir:
        return ""
    return _issue_grid(finding.data.get("issues", []), data_dir,
                       f"{finding.data.get('model', 'the model')} trained out of fold")


def _issue_grid(issues, data_dir, learner) -> str:
    """Thumbnails of the first of `issues` (cleanlab's, most likely mislabeled first), each
    with its file name, its folder, the class it looks like to `learner`, and its score."""
    shown = issues[:LABEL_ISSUE_THUMBNAILS]
    if not shown:
        return ""
    images = [_thumbnail(os.path.join(data_dir, issue["path"])) for issue in shown]
    captions = [f"{os.path.basename(i['path'])}\nin {i['given']}\nlooks like\n"
                f"{i['suggested']}\nscore {i['score']:.3f}" for i in shown]
    return ("<h3>Images that look mislabeled</h3>"
            + image(figures.thumbnails(images, captions), "images that look mislabeled")
            + para(f"The {len(shown)} likeliest of {len(issues)} images cleanlab flags, most "
                   "likely first: the folder each is filed in, the class it looks like to "
                   f"{learner}, and cleanlab's label quality score (lower is more suspect).",
                   "note"))


# -- mislabeled images (after the search) --------------------------------------------------
def mislabeled(ctx) -> str:
    """cleanlab on the chosen trial's pooled out-of-fold predictions (`result.label_issues`)."""
    found = ctx.result.label_issues
    if found is None:
        return para(f"Not recorded: images that look mislabeled are looked for once the search "
                    "has chosen its pipeline (runs stopped before, and runs of older versions, "
                    f"have none). autoprep doctor {ctx.data_dir} looks for them too.", "note")
    if not found.get("checked"):
        return para(f"Not looked for: {found.get('reason')}.", "note")
    issues = found.get("issues") or []
    source = (f"cleanlab (confident learning) on the pooled out-of-fold predictions of trial "
              f"{found.get('trial')}, the chosen pipeline: {found.get('images')} of the "
              f"{found.get('development')} development images, each predicted by a model that "
              "did not train on it (no extra training; balanced accuracy "
              f"{num(found.get('out_of_fold_accuracy'), 2)}).")
    parts = [para(source)]
    if found.get("reason"):
        parts.append(para(f"Note: {found['reason']}.", "note"))
    if not issues:
        return "".join(parts) + para("No image looks like another class than its folder's.",
                                     "note")
    flagged = found.get("flagged") or len(issues)
    parts.append(para(f"{flagged} image(s) look like another class than their folder's. "
                      "Look at them and move each to its right class folder (or delete it): "
                      "a model learns wrong labels too, and they cap its accuracy."))
    if ctx.data_dir and os.path.isdir(ctx.data_dir):
        parts.append(_issue_grid(issues, ctx.data_dir, "the chosen pipeline's model"))
    else:
        parts.append(para(f"The image folder {ctx.data_dir} is not found on this machine, so "
                          "no thumbnails.", "warn"))
    rows = [(i["path"], i["given"], i["suggested"], num(i["score"], 3))
            for i in issues[:LABEL_ISSUE_ROWS]]
    listed = ("all" if flagged == len(issues)
              else f"the {len(issues)} most suspect")
    more = (f" (the first {LABEL_ISSUE_ROWS}; results.json lists {listed})"
            if len(issues) > LABEL_ISSUE_ROWS else "")
    parts.append(f"<details><summary>{len(issues)} listed{esc(more)}</summary>"
                 + table(["file", "folder", "looks like", "score"], rows, numeric=(3,))
                 + "</details>")
    return "".join(parts)


def _thumbnail(path, side=96):
    """The image file as a uint8 RGB array at most `side` pixels a side; a gray square when it
    cannot be read (moved or deleted since the doctor ran)."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError):
        return np.full((side, side, 3), 200, np.uint8)
    picture.thumbnail((side, side))
    return np.asarray(picture)


SECTIONS = [
    ("answer", "The answer", answer),
    ("history", "Search history", search_history),
    ("mattered", "What mattered", what_mattered),
    ("preview", "Augmentation preview", augmentation_preview),
    ("classes", "Classes", classes),
    ("mislabeled", "Mislabeled images", mislabeled),
    ("doctor", "Data findings", doctor),
]
