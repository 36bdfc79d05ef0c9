"""The text policy (issue 11): pure, no servers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from assistance.boundary import explain, french_message
from assistance.text import (
    LINE_MESSAGE,
    Line,
    Text,
    check_line,
    check_text,
    clean_line,
    clean_text,
    cleaned,
    mail_address,
)

# Every C0 control, DEL and every C1 control.
CONTROLS = [chr(c) for c in range(0x00, 0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
ALLOWED_IN_TEXT = {"\t", "\n", "\r"}
ALLOWED_IN_LINE = {"\t"}


class Form(BaseModel):
    description: Text = Field(min_length=1, max_length=100)
    name: Line = Field(min_length=1, max_length=100)


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_is_refused_in_text_but_tab_and_line_breaks(char: str) -> None:
    value = f"a{char}b"
    if char in ALLOWED_IN_TEXT:
        assert check_text(value) == value
    else:
        with pytest.raises(ValueError):
            check_text(value)


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_is_refused_in_a_line_but_tab(char: str) -> None:
    value = f"a{char}b"
    if char in ALLOWED_IN_LINE:
        assert check_line(value) == value
    else:
        with pytest.raises(ValueError):
            check_line(value)


@pytest.mark.parametrize("sep", ["\u2028", "\u2029"])
def test_unicode_line_separators_break_a_line(sep: str) -> None:
    assert check_text(f"a{sep}b") == f"a{sep}b"
    with pytest.raises(ValueError):
        check_line(f"a{sep}b")


def test_ordinary_french_text_passes_untouched() -> None:
    text = "Bonjour,\n\tl'export FEC s'arrête à 50 % — « vite » ! 😀"
    assert check_text(text) == text
    assert check_line("Élodie Müller-Ça") == "Élodie Müller-Ça"


def test_a_refusal_names_the_field_in_french() -> None:
    with pytest.raises(ValidationError) as caught:
        Form(description="a\x00b", name="Claire")
    code, message, field = explain(caught.value.errors())
    assert (code, field) == ("invalid", "description")
    assert message == (
        "description : Ce texte contient un caractère de contrôle interdit "
        "(caractère nul ou invisible)."
    )
    with pytest.raises(ValidationError) as caught:
        Form(description="ok", name="Eve\r\nBcc: x@example.com")
    assert explain(caught.value.errors()) == (
        "invalid",
        "name : Ce texte doit tenir sur une seule ligne, sans caractère de contrôle.",
        "name",
    )


def test_cleaning_drops_controls_and_folds_lines() -> None:
    assert clean_text("a\x00b\x1b[31mc\r\nd\x85") == "ab[31mc\r\nd"
    assert clean_line("Eve\r\nBcc: x@example.com") == "Eve Bcc: x@example.com"
    assert clean_line("  Jean\x00\n\n Dupont\t ") == "Jean Dupont"
    assert cleaned("propre", single_line=True) == ("propre", False)
    assert cleaned("  espaces gardés ", single_line=True) == ("  espaces gardés ", False)
    assert cleaned("sa\x00le", single_line=False) == ("sale", True)
    assert cleaned(None, single_line=True) == (None, False)


def test_a_header_address_never_carries_a_line_break() -> None:
    address = mail_address("Eve\r\nBcc: victim@example.com", "eve@example.com")
    assert address.display_name == "Eve Bcc: victim@example.com"
    assert "\n" not in str(address) and "\r" not in str(address)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"type": "missing"}, "Ce champ est obligatoire."),
        ({"type": "string_too_short", "ctx": {"min_length": 1}}, "Ce champ ne peut pas être vide."),
        ({"type": "string_too_short", "ctx": {"min_length": 3}}, "Au moins 3 caractères."),
        ({"type": "string_too_long", "ctx": {"max_length": 200}}, "Au plus 200 caractères."),
        ({"type": "string_pattern_mismatch"}, "Le format de ce texte n'est pas accepté."),
        ({"type": "int_parsing"}, "Un nombre entier est attendu."),
        ({"type": "greater_than_equal", "ctx": {"ge": 0}}, "La valeur doit être au moins 0."),
        ({"type": "less_than_equal", "ctx": {"le": 200}}, "La valeur doit être au plus 200."),
        (
            {"type": "datetime_parsing"},
            "Une date et heure ISO 8601 valide est attendue.",
        ),
        ({"type": "json_invalid"}, "Le corps de la demande n'est pas un JSON valide."),
        (
            {"type": "literal_error", "ctx": {"expected": "'new' or 'closed'"}},
            "Valeur inconnue ; valeurs acceptées : 'new' ou 'closed'.",
        ),
        ({"type": "uuid_parsing"}, "Un identifiant (UUID) est attendu."),
        ({"type": "extra_forbidden"}, "Ce champ n'est pas attendu."),
        (
            {
                "type": "value_error",
                "msg": "value is not a valid email address: An email address must have an @-sign.",
                "ctx": {"reason": "An email address must have an @-sign."},
            },
            "Adresse e-mail invalide.",
        ),
        (
            {"type": "value_error", "ctx": {"error": "ne peut pas être vide"}},
            "Ne peut pas être vide.",
        ),
        (
            {"type": "value_error", "ctx": {"error": "chaque page a son propre slug"}},
            "Chaque page a son propre slug.",
        ),
        ({"type": "some_future_type"}, "Cette valeur n'est pas acceptée."),
    ],
)
def test_pydantic_errors_read_in_french(error: dict[str, object], message: str) -> None:
    assert french_message(error) == message


def test_an_invalid_json_body_is_json_invalid_without_a_field() -> None:
    assert explain([{"type": "json_invalid", "loc": ("body", 3)}]) == (
        "json_invalid",
        "Le corps de la demande n'est pas un JSON valide.",
        None,
    )


@pytest.mark.parametrize("char", [*CONTROLS, "\u2028", "\u2029", "é", " "], ids=repr)
def test_the_openapi_pattern_says_what_the_checks_do(char: str) -> None:
    properties = Form.model_json_schema()["properties"]
    text, line = properties["description"]["pattern"], properties["name"]["pattern"]
    value = f"a{char}b"
    assert (re.fullmatch(text, value) is not None) == _passes(check_text, value)
    assert (re.fullmatch(line, value) is not None) == _passes(check_line, value)


def _passes(check: Any, value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def test_the_command_line_refuses_a_name_on_two_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from composition.cli import parser

    argv = ["user", "create", "--email", "eve@exemple.fr", "--role", "admin", "--name"]
    with pytest.raises(SystemExit) as exited:
        parser().parse_args([*argv, "Eve\r\nBcc: x@exemple.fr"])
    assert exited.value.code == 2
    assert "argument --name: " + LINE_MESSAGE in capsys.readouterr().err
    assert parser().parse_args([*argv, "Ève\tMartin"]).name == "Ève\tMartin"
