"""Label checks: images that look like another class than the folder they are filed in.

Confident learning with cleanlab (`autoprep.data.mislabeled`, which `autoprep.tune` also uses
on its search's predictions): out-of-fold class probabilities (`_probe.train_folds`, a short
stratified k-fold training that never predicts an image with a model trained on it) go to
`cleanlab.filter.find_label_issues`, which estimates how often each class is filed as each
other one and flags the images that account for it, ranked by cleanlab's label quality score
(self-confidence: the probability the models give the folder's class; lower is more suspect).

The models are the doctor's small probe network, or the user's model when one is given and a
measured training step says its cross-validation fits in `USER_MODEL_SECONDS`. Folders above
`_probe.MAX_TRAINED` images are subsampled for training; every image is still checked.
"""

from autoprep.data.mislabeled import chance_bar, find_issues
from autoprep.doctor import _probe
from autoprep.doctor._checks import DATA_CHECKS, register
from autoprep.doctor.data_checks import listing
from autoprep.doctor.report import Finding

MIN_CLASS_IMAGES = 20  # smaller classes: too few to learn out of fold, the check does not run
USER_MODEL_SECONDS = 15.0  # the user's model is trained when its estimate is below
LISTED_IN_TEXT = 20  # files named in the evidence; `data["issues"]` has them all


def out_of_fold(ctx) -> tuple:
    """(OutOfFold, learner): probabilities from the user's model when it is usable and fast
    enough, else from the probe; `learner` says which, and why."""
    labels = ctx.folder.labels
    trained = _probe.training_sample(labels, seed=ctx.seed)
    why = None
    if ctx.model_fn is not None:
        result, learner = _user_model_folds(ctx, trained)
        if result is not None and result.accuracy >= chance_bar(len(ctx.class_names)):
            return result, learner
        why = learner["reason"] if result is None else (
            f"the user's model {learner['name']} reached only {result.accuracy:.2f} balanced "
            f"accuracy out of fold in {result.epochs} epochs")
    side = _probe.probe_side(ctx.folder.image_size)
    inputs = _probe.probe_inputs(ctx.small, side)
    model = _probe.probe_network(inputs.shape[1:], len(ctx.class_names), seed=ctx.seed)
    result = _probe.train_folds(model, inputs, labels, trained=trained, seed=ctx.seed)
    reason = "no model was given" if why is None else why
    return result, {"learner": "probe", "name": f"probe CNN on {side}x{side} images",
                    "reason": reason}


def _user_model_folds(ctx, trained) -> tuple:
    """Cross-validates the user's model when a timed training step says it is fast enough."""
    import keras
    import keras_tuner as kt

    from autoprep.search.hypermodel import call_model_fn, ensure_compiled, loss_description

    name = getattr(ctx.model_fn, "__name__", repr(ctx.model_fn))
    try:
        keras.utils.set_random_seed(ctx.seed)
        model = call_model_fn(ctx.model_fn, ctx.folder.images.shape[1:], len(ctx.class_names),
                              hp=kt.HyperParameters())
        model = ensure_compiled(model, one_hot_labels=False)
        transform = _user_transform(model)
        step = _probe.step_seconds(model, ctx.folder.images, ctx.folder.labels, transform)
        steps = _probe.training_steps(len(trained))
        estimate = step * steps
        learner = {"learner": "model", "name": name, "step_seconds": step,
                   "estimated_seconds": estimate,
                   "reason": f"a training step of the user's model {name} takes {step:.3g} s: "
                             f"{steps} steps, about {estimate:.0f} s (limit "
                             f"{USER_MODEL_SECONDS:.0f} s)"}
        if estimate > USER_MODEL_SECONDS:
            return None, learner
        _, from_logits = loss_description(model.loss)
        result = _probe.train_folds(model, ctx.folder.images, ctx.folder.labels,
                                    trained=trained, transform=transform,
                                    probabilities=not from_logits, seed=ctx.seed)
        return result, learner
    except Exception as error:  # the user's code may raise anything: the probe stands in
        return None, {"learner": "model", "name": name,
                      "reason": f"the user's model {name} could not be trained "
                                f"({type(error).__name__}: {str(error).splitlines()[0][:200]})"}


def _user_transform(model):
    """Pixels as the model takes them: raw when it rescales its own input, else in [0, 1]."""
    import keras
    import tensorflow as tf

    from autoprep.doctor.model_checks import all_layers

    scaling = (keras.layers.Rescaling, keras.layers.Normalization)
    scale = 1.0 if any(isinstance(layer, scaling) for layer in all_layers(model)) else 1 / 255
    return lambda batch: tf.cast(batch, tf.float32) * scale


def label_issues(ctx, result) -> list:
    """cleanlab's flagged images, most likely mislabeled first, as JSON-able dicts."""
    return find_issues(ctx.folder.labels, result.probabilities, class_names=ctx.class_names,
                       paths=ctx.folder.paths)


def _learner_text(learner, result) -> str:
    """How the probabilities were made: which model, how trained, how well, and why it."""
    trained, total = len(result.trained), len(result.probabilities)
    sample = f" of {total}, a stratified sample" if trained < total else ""
    model = learner["name"] if learner["learner"] == "probe" else f"user's model {learner['name']}"
    why = ("probe used: " if learner["learner"] == "probe" else "") + learner["reason"]
    return (f"{result.folds}-fold cross-validation of the {model} ({result.epochs} epochs, "
            f"{trained} images{sample}; {result.seconds:.1f} s; out-of-fold balanced accuracy "
            f"{result.accuracy:.2f}; {why})")


@register(DATA_CHECKS, "label_issues", priority=9)
def check_label_issues(ctx):
    """Images that look like another class than their folder's (cleanlab, out-of-fold)."""
    if ctx.counts.min() < MIN_CLASS_IMAGES:
        return
    result, learner = out_of_fold(ctx)
    details = {"learner": learner["learner"], "model": learner["name"],
               "reason": learner["reason"], "folds": result.folds, "epochs": result.epochs,
               "trained_images": len(result.trained), "seconds": round(result.seconds, 2),
               "out_of_fold_accuracy": round(result.accuracy, 4)}
    bar = chance_bar(len(ctx.class_names))
    if result.accuracy < bar:
        yield Finding(
            "label_issues_unchecked", "info",
            "Mislabeled images could not be looked for: the classes were not learned",
            f"{_learner_text(learner, result)}. Below {bar:.2f}, its mistakes say more about "
            "the model than about the labels.",
            "Nothing to do for the labels; if the classes should be easy to tell apart, look "
            "at the other findings first.",
            data=details,
        )
        return
    issues = label_issues(ctx, result)
    if not issues:
        return
    shown = [f"{i['path']} ({i['given']} -> {i['suggested']}, {i['score']:.3f})"
             for i in issues]
    yield Finding(
        "label_issues", "warning",
        f"{len(issues)} image(s) look like another class than their folder's",
        f"cleanlab (confident learning) on out-of-fold probabilities from a "
        f"{_learner_text(learner, result)}. Most likely first (folder -> looks like, cleanlab "
        f"label quality score): {listing(shown, LISTED_IN_TEXT)}.",
        "Look at these images and move each to its right class folder (or delete it); a "
        "model learns wrong labels too, and they cap its accuracy.",
        data={**details, "issues": issues},
    )
