"""One text policy at every boundary (HTTP JSON and forms, query parameters, mail, CLI).

PostgreSQL text cannot hold NUL (a NUL once froze a dossier's projection for ever), and a CR or
LF in a name or a subject ends up in a mail header (« address parts cannot contain CR or LF »).
So every text a person or a machine hands in follows one of two shapes:

- `Text`: multi-line text (descriptions, notes, resolutions, reasons). Tab, LF and CR (as part
  of a line break) are kept; NUL and every other C0/C1 control character are refused.
- `Line`: single-line text (names, subjects, filenames, phone numbers, references, codes).
  Tab is kept; CR, LF and every other control character are refused.

At HTTP boundaries a refusal is a 422 naming the field, in French (`assistance.web`). Mail cannot
be refused for that: the mail intake *cleans* with `clean_text` / `clean_line` and records that
it did. The functions here are pure: no framework but pydantic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

# C0 controls but tab (09), LF (0a) and CR (0d); DEL; C1 controls. Unicode line/paragraph
# separators count as line breaks in single-line text (mail clients and terminals break on them).
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BAD_TEXT = re.compile(f"[{_CONTROL}]")
_BAD_LINE = re.compile(f"[{_CONTROL}\r\n\u2028\u2029\x85]")
_BREAKS = re.compile("[\r\n\u2028\u2029\x85]+")

CONTROL_MESSAGE = (
    "Ce texte contient un caractère de contrôle interdit (caractère nul ou invisible)."
)
LINE_MESSAGE = "Ce texte doit tenir sur une seule ligne, sans caractère de contrôle."


def check_text(value: str) -> str:
    """Refuse NUL and control characters other than tab and line breaks."""
    if _BAD_TEXT.search(value):
        raise PydanticCustomError("control_character", CONTROL_MESSAGE)
    return value


def check_line(value: str) -> str:
    """Refuse line breaks and every control character other than tab."""
    if _BAD_LINE.search(value):
        raise PydanticCustomError("line_break", LINE_MESSAGE)
    return value


def clean_text(value: str) -> str:
    """Mail cannot be refused: drop what `Text` would refuse (line breaks stay as they are)."""
    return _BAD_TEXT.sub("", value)


def clean_line(value: str) -> str:
    """Mail cannot be refused: fold line breaks to one space, drop other controls, trim."""
    folded = _BREAKS.sub(" ", value)
    return re.sub(" {2,}", " ", _BAD_TEXT.sub("", folded)).strip()


def is_clean_text(value: str) -> bool:
    return _BAD_TEXT.search(value) is None


def is_clean_line(value: str) -> bool:
    return _BAD_LINE.search(value) is None


def cleaned(value: Any, single_line: bool) -> tuple[Any, bool]:
    """`(value, whether the policy changed it)`: a value that follows the policy, or is not a
    str, is returned untouched (not even trimmed)."""
    if not isinstance(value, str):
        return value, False
    if single_line:
        return (value, False) if is_clean_line(value) else (clean_line(value), True)
    return (value, False) if is_clean_text(value) else (clean_text(value), True)


# The same rules as JSON Schema patterns (ECMA-262), so the OpenAPI tells clients the policy.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
LINE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$"


@dataclass(frozen=True)
class _Documented:
    """Adds the policy's pattern to a field's JSON Schema (validation stays with the checks)."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core))
        schema.setdefault("pattern", self.pattern)  # a field's own pattern is stricter
        return schema


# The types. Lengths and emptiness stay with each field (`Field(min_length=..., max_length=...)`).
Text = Annotated[str, AfterValidator(check_text), _Documented(TEXT_PATTERN)]
Line = Annotated[str, AfterValidator(check_line), _Documented(LINE_PATTERN)]

# Trimmed variants, for fields where surrounding spaces mean nothing.
StrippedText = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(check_text),
    _Documented(TEXT_PATTERN),
]
StrippedLine = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(check_line),
    _Documented(LINE_PATTERN),
]

# A search query: one line, bounded.
SearchQuery = Annotated[
    str, Field(max_length=200), AfterValidator(check_line), _Documented(LINE_PATTERN)
]


def mail_address(name: str, email: str) -> Address:
    """A header address built safely (defence in depth): whatever a stored name holds, no line
    break nor control character reaches a mail header (« address parts cannot contain CR or
    LF » would otherwise block that mail in the outbox for ever)."""
    return Address(clean_line(name), addr_spec=clean_line(email))


def header_text(value: str) -> str:
    """Text for a mail header (a subject): one line, no control character."""
    return clean_line(value)
