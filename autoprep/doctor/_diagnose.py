"""`diagnose`: run the registered data checks, and the model checks when a model is given."""

from autoprep._frame_stack import frame_stack_reserved
from autoprep.choices.normalization import NORMALIZATIONS
from autoprep.data.index import MAX_PIXELS
from autoprep.doctor import (  # noqa: F401 (each registers its checks)
    data_checks,
    label_checks,
    model_checks,
    model_convention_checks,
    shortcut_checks,
)
from autoprep.doctor._checks import DATA_CHECKS, MODEL_CHECKS, run_checks
from autoprep.doctor.report import Report
from autoprep.search.model_spec import load_model_fn


@frame_stack_reserved
def diagnose(data_dir, model_fn=None, *, seed: int = 0, max_pixels: int = MAX_PIXELS,
             normalization: str = None) -> Report:
    """Examines an image folder (and optionally a model) and ranks what is wrong, with fixes.

    Args:
        data_dir: A directory with one sub-folder per class.
        model_fn: Optional `model_fn(input_shape, num_classes[, hp]) -> keras.Model`, or a
            `"path/to/file.py:function"` spec. Enables the model checks (a few seconds of
            training on small batches).
        seed: Seed of the split checked for leakage (as `autoprep.tune(seed=...)`) and of the
            model checks.
        max_pixels: Image files whose header declares more pixels are skipped (a finding).
        normalization: The name of the normalization that will feed the model (e.g. the one
            a `SearchSpace` fixes); checked against what the model expects. Default: the one
            `autoprep.tune` would fix for this model.

    Returns:
        A `Report`; `report.findings[0]` is the most likely cause, `report.exit_code` is 1 when
        an error-level finding exists.

    Raises:
        DataError: when `data_dir` is missing, has fewer than 2 classes or no readable image.
        ArgumentError: for a bad `model_fn` spec or `max_pixels`; UnknownChoiceError for an
            unknown `normalization`.

    Example:
        >>> report = autoprep.diagnose("flowers/", build_model)
        >>> print(report.format())
    """
    if normalization is not None:
        NORMALIZATIONS.get(normalization)  # an unknown name fails here, listing the valid ones
    if isinstance(model_fn, str):
        model_fn = load_model_fn(model_fn)
    context = data_checks.DataContext(data_dir, seed=seed, max_pixels=max_pixels,
                                      model_fn=model_fn)
    findings, names = run_checks(DATA_CHECKS, context)
    model_name = None
    if model_fn is not None:
        model_context = model_checks.ModelContext(context, model_fn, seed=seed,
                                                  normalization=normalization)
        model_name = model_context.name
        more, model_names = run_checks(MODEL_CHECKS, model_context)
        findings, names = findings + more, names + model_names
    return Report(
        data_dir=str(data_dir), summary=context.summary(), findings=findings, checks=names,
        model=model_name,
    )
