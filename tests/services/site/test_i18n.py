"""French first: every text of the site has its French translation, and the compiled
catalogue the site loads is the one committed beside its source."""

from __future__ import annotations

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from services.site import i18n

SITE = i18n.LOCALE_DIR.parent
FRENCH = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES"


def _extracted() -> set[str | tuple[str, ...]]:
    with open(SITE / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "tr": (2,)}
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(SITE, method_map, options_map, keywords):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_every_text_has_a_french_translation() -> None:
    with open(FRENCH / "messages.po", "rb") as f:
        catalogue = read_po(f, locale="fr")
    texts = _extracted()
    assert len(texts) > 300
    untranslated = []
    for text in texts:
        key = text[0] if isinstance(text, tuple) else text
        entry = catalogue.get(key)
        strings = (
            (entry.string if isinstance(entry.string, tuple) else (entry.string,)) if entry else ()
        )
        if not strings or not all(strings):
            untranslated.append(text)
    assert untranslated == [], "run `make site-messages` and translate: " + repr(untranslated)


def test_the_compiled_catalogue_matches_its_source() -> None:
    with open(FRENCH / "messages.po", "rb") as f:
        source = read_po(f, locale="fr")
    with open(FRENCH / "messages.mo", "rb") as f:
        compiled = read_mo(f)

    def table(catalogue) -> dict:  # noqa: ANN001
        return {
            (m.id if isinstance(m.id, str) else m.id[0]): (
                m.string if isinstance(m.string, str) else tuple(m.string)
            )
            for m in catalogue
            if m.id
        }

    expected, got = table(source), table(compiled)
    assert got == expected, "run `make site-messages` to compile the catalogue"


def test_the_site_speaks_french_by_default() -> None:
    _ = i18n.gettext_for("fr")
    assert _("Deposit a request") == "Déposer une demande"
    assert i18n.gettext_for("en")("Deposit a request") == "Deposit a request"
    assert i18n.pick("de") == "fr" and i18n.pick(None) == "fr"
