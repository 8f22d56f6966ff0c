"""Model check: does what feeds the model fit what the model expects of its pixels?

What feeds it is the normalization the user names (`diagnose(..., normalization=...)`,
`autoprep doctor --normalization NAME`), else the one `autoprep tune` would fix for this model
(`autoprep.search.model_inputs`). A contradiction (double scaling, a backbone fed another range
than its own) is an error with the fix.
"""

from autoprep.choices.normalization import NORMALIZATIONS
from autoprep.doctor._checks import MODEL_CHECKS, register
from autoprep.doctor.report import Finding
from autoprep.search import model_inputs


def fed_normalization(ctx):
    """The normalization that feeds the model (fitted on the folder when it learns), or None."""
    name = ctx.normalization
    if name is None:
        name = ctx.convention.normalization
    if name is None:
        return None
    normalization = NORMALIZATIONS.get(name)()
    return normalization if normalization.fitted else normalization.fit(ctx.data.folder.images)


@register(MODEL_CHECKS, "input_convention", priority=3)
def check_input_convention(ctx):
    """The pipeline's normalization against the model's own scaling layers or backbone."""
    if ctx.model is None:
        return
    convention = ctx.convention
    data = {"input_convention": convention.to_dict(), "normalization": ctx.normalization}
    problems = model_inputs.contradictions(ctx.model, fed_normalization(ctx))
    for problem in problems:
        yield Finding(problem.id, "error", problem.title, problem.evidence,
                      problem.fix[:1].upper() + problem.fix[1:], dimension="normalization",
                      data=data)
    if problems or convention.normalization is None or convention.kind == "in_model":
        return  # nothing to say, or the `input_scale` check says it
    given = ctx.normalization
    yield Finding(
        "input_convention", "info",
        f"The model expects normalization {convention.normalization!r}",
        f"{convention.source}: {convention.reason}.",
        f"Nothing to do: {given!r} fits it." if given is not None else
        "Nothing to do: `autoprep tune` fixes the normalization to it (the exported "
        "`preprocess` applies it).",
        dimension="normalization", data=data,
    )
