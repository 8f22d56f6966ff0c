"""Findings and the ranked report: plain text for a terminal, JSON for tools (see README.md)."""

import dataclasses
import json
import math
import textwrap

from autoprep._text import printable

SEVERITIES = ("error", "warning", "info")
DIMENSIONS = ("normalization", "augmentation", "imbalance")
SCHEMA_VERSION = 1
_WIDTH = 80


def number(value, digits=3) -> str:
    """`value` as a person writes it: `digits` significant digits, no float noise, and powers of
    ten for the very small and very large (`1e-3`, not `0.0010000000474974513`; `4.79e4`)."""
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return {"nan": "NaN"}.get(str(value), str(value)) if value else "0"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    exponent = int(exponent)
    if -2 <= exponent < 4:
        return _trimmed(f"{float(f'{mantissa}e{exponent}'):.{max(digits - 1 - exponent, 0)}f}")
    return f"{_trimmed(mantissa)}e{exponent}"


def _trimmed(text) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclasses.dataclass
class Finding:
    """One thing the doctor found.

    Attributes:
        id: Stable identifier of the kind of problem, e.g. ``"corrupt_files"``.
        severity: ``"error"`` (training will fail or mislead), ``"warning"`` or ``"info"``.
        title: One line saying what is wrong.
        evidence: What was measured, naming the offending files or numbers.
        fix: What to do about it.
        dimension: The autoprep search dimension that addresses it (``"normalization"``,
            ``"augmentation"``, ``"imbalance"``), or None.
        data: JSON-able details (full lists of paths, counts) for tools.
        priority: Rank among findings of the same severity (lower first); set by the check.
    """

    id: str
    severity: str
    title: str
    evidence: str
    fix: str
    dimension: str = None
    data: dict = dataclasses.field(default_factory=dict)
    priority: int = dataclasses.field(default=50, compare=False)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"`severity` must be one of {SEVERITIES}. Received: severity={self.severity!r}"
            )
        if self.dimension not in (None, *DIMENSIONS):
            raise ValueError(
                f"`dimension` must be None or one of {DIMENSIONS}. "
                f"Received: dimension={self.dimension!r}"
            )

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "evidence": self.evidence,
            "fix": self.fix,
            "dimension": self.dimension,
            "data": self.data,
        }


def _rank(finding):
    return SEVERITIES.index(finding.severity), finding.priority


@dataclasses.dataclass
class Report:
    """The ranked findings of `diagnose`: errors first, then by each check's priority.

    Attributes:
        data_dir: The directory that was examined.
        summary: Counts of the data (images, classes, image size...).
        findings: Ranked list of `Finding`; `findings[0]` is the most likely cause.
        checks: Names of the checks that ran.
        model: Name of the model function, or None when only the data was checked.
    """

    data_dir: str
    summary: dict
    findings: list
    checks: list
    model: str = None

    def __post_init__(self):
        self.findings = sorted(self.findings, key=_rank)

    @property
    def top(self):
        """The highest-ranked finding, or None."""
        return self.findings[0] if self.findings else None

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """1 when an error-level finding exists (for CI gates), else 0."""
        return int(self.has_errors)

    def ids(self, severity=None) -> list:
        """The finding ids in rank order, optionally of one severity only."""
        return [f.id for f in self.findings if severity in (None, f.severity)]

    def counts(self) -> dict:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "data_dir": self.data_dir,
            "model": self.model,
            "summary": self.summary,
            "counts": self.counts(),
            "checks": list(self.checks),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, indent=2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def format(self, width=_WIDTH) -> str:
        """The human-readable report, grouped by severity, wrapped to `width` columns."""
        counts = self.counts()
        lines = [
            f"autoprep doctor: {self.data_dir}",
            _summary_line(self.summary, self.model),
            ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items()),
        ]
        for severity in SEVERITIES:
            group = [f for f in self.findings if f.severity == severity]
            if group:
                lines += ["", f"{severity.upper()}S"]
                lines += [line for f in group for line in _format_finding(f, width)]
        if not self.has_errors:
            lines += ["", "No error-level finding."]
        return printable("\n".join(lines), newlines=True)  # file names may hold control codes

    def __str__(self):
        return self.format()


def _summary_line(summary, model):
    parts = [f"{summary.get('images', 0)} images", f"{summary.get('classes', 0)} classes"]
    if summary.get("image_size"):
        height, width = summary["image_size"]
        parts.append(f"{height}x{width}x{summary.get('channels')}")
    parts.append(f"model: {model}" if model else "data checks only")
    return ", ".join(parts)


def _wrap(label, text, width):
    indent = " " * 6
    return textwrap.wrap(
        f"{label}: {text}", width=width, initial_indent=indent, subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    )


def _format_finding(finding, width):
    lines = textwrap.wrap(
        f"[{finding.id}] {finding.title}", width=width, initial_indent="  * ",
        subsequent_indent="    ",
    )
    lines += _wrap("evidence", finding.evidence, width)
    lines += _wrap("fix", finding.fix, width)
    if finding.dimension:
        lines += _wrap("autoprep", f"searched by the {finding.dimension!r} dimension", width)
    return lines
