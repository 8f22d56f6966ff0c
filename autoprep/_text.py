"""Text that came from files or folder names, made safe to print on a terminal.

A file name, a class folder or a value in a shared `results.json` can hold terminal control
sequences (which can rewrite the screen, the window title or the clipboard) and bytes that are
not valid UTF-8 (which Python keeps as lone surrogates, and which a UTF-8 terminal cannot
print). `printable` removes the first and writes the second as `\\xNN`. `counted` writes a
count with its noun in the singular or plural; `summarize` writes a pipeline config on one line
(here at the bottom, not in `choices/`, which imports TensorFlow: the CLI's `show` and its
progress lines print configs without it).
"""

import re

_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI: colors, cursor moves, erasing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks, clipboard
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -~]?"  # other escapes
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # the one-byte CSI
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other control character
)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def printable(text, *, newlines=False) -> str:
    """`text` without terminal control sequences, undecodable bytes written as `\\xNN`.

    Tabs become spaces; so do newlines unless `newlines` (for multi-line text).
    """
    text = _CONTROL.sub("", str(text)).replace("\t", " ")
    if not newlines:
        text = text.replace("\n", " ")
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def counted(count: int, noun: str) -> str:
    """"1 epoch", "8 epochs": `count` and `noun`, plural unless the count is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summarize(config: dict) -> str:
    """A one-line summary of a pipeline config, e.g. `per_channel | rotation=0.1 | oversample`."""
    ops = ", ".join(
        f"{op['name']}={op.get('mode', op.get('intensity'))}" for op in config["augmentation"]
    )
    imbalance = config["imbalance"]
    extras = ", ".join(
        f"{k}={v}" for k, v in imbalance.items() if k != "name" and not k.endswith("_")
    )
    imbalance_text = imbalance["name"] + (f"({extras})" if extras else "")
    return f"{config['normalization']['name']} | {ops or 'no augmentation'} | {imbalance_text}"
