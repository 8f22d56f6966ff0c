"""The check registries: each check is a small function, registered by name with a priority.

A check takes a context (the examined data, or data and model) and returns its findings. The
priority ranks its findings among those of the same severity, so that the first finding of a
report names the most fundamental problem (a model that cannot be built before its learning rate).
"""

from autoprep._registry import Registry

DATA_CHECKS = Registry("data check")
MODEL_CHECKS = Registry("model check")


def register(registry, name, *, priority):
    """Function decorator: registers a check as `name` and sets its `priority` (lower first)."""

    def decorator(function):
        function.priority = priority
        return registry.register(name)(function)

    return decorator


def run_checks(registry, context, names=None) -> tuple:
    """Runs the checks of `registry` (or only `names`); returns (findings, names that ran)."""
    names = registry.names() if names is None else list(names)
    findings = []
    for name in names:
        check = registry.get(name)
        for finding in check(context) or ():
            finding.priority = check.priority
            findings.append(finding)
    return findings, names
