"""The doctor's data findings for a report, when they are cheap to compute."""

import os

DOCTOR_MAX_IMAGES = 3000  # above this, the doctor is not run for the report (seconds per 1,000)


def doctor_report(result):
    """The doctor's data findings for the result's folder, or None when that is not cheap.

    Cheap means the folder exists and has at most `DOCTOR_MAX_IMAGES` images.
    """
    data = result.data or {}
    folder = data.get("data_dir")
    if not folder or not os.path.isdir(folder) or sum(data.get("class_counts", [])) > \
            DOCTOR_MAX_IMAGES:
        return None
    from autoprep.doctor import diagnose

    return diagnose(folder)
