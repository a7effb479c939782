"""Label words and the rule that reads a verdict out of free text.

DFAR labels: 0 = ethical, 1 = unethical. "unethical" contains "ethical", so the parser looks
for the negative forms first and also reads "not ethical" / "non-ethical" / "isn't ethical" /
"not moral" as unethical and "not (an) unethical" as ethical (docs/methods.md §1). `split_reason`
takes the reason out of a generated "verdict. reason" (what MAR judges and what sampling ranks).
"""

import re

LABELS = ("ethical", "unethical")  # index = label id

# Order matters: the first pattern that matches *earliest in the text* wins, and at equal
# positions the longer (negative) form wins because it is listed first.
_NOT = r"(?:\bnot|n't)\s+(?:an?\s+)?"  # "not", "isn't", "not a(n)"
_PATTERNS = [
    (1, re.compile(rf"\b(?:unethical|non[- ]?ethical|immoral)\b|{_NOT}(?:ethical|moral)\b", re.I)),
    (0, re.compile(rf"{_NOT}(?:(?:un|non[- ]?)ethical|immoral)\b|\b(?:ethical|moral)\b", re.I)),
]


def parse_verdict(text: str) -> int | None:
    """Return the label id of the first verdict in `text`, or None when there is none."""
    best = None  # (position, priority, label)
    for priority, (label, pattern) in enumerate(_PATTERNS):
        m = pattern.search(text)
        if m and (best is None or (m.start(), priority) < best[:2]):
            best = (m.start(), priority, label)
    return None if best is None else best[2]


_LEAD = re.compile(r"^\s*(?:the statement is\s+)?(?:not\s+|non[- ]?)?(?:un)?ethical\b\s*[.:,;!-]*\s*", re.I)


def split_reason(text: str) -> str:
    """The reason: the output minus its leading verdict ("unethical. Because..." -> "Because...")."""
    return _LEAD.sub("", text, count=1).strip()
