"""`autoprep doctor`: why is my model failing to learn? Ranked findings, each with a fix.

`diagnose(data_dir, model_fn=None)` runs every registered data check (and model check when a
model is given) and returns a `Report` of `Finding`s, errors first. The JSON schema of
`Report.to_dict()` is documented in README.md next to this file.
"""

from autoprep.doctor._diagnose import diagnose
from autoprep.doctor.report import Finding, Report

__all__ = ["Finding", "Report", "diagnose"]
