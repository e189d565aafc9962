"""Letters edited from the screen: each level's template read, checked as a
draft, previewed on a real invoice and saved into the user's templates
folder, never into the package.

The user's folder is ``letters.templates_dir``, or by default
``DATA_DIR/templates``, which the service may write.  A draft is checked by
the same check as at load (:mod:`.check`), run on a scratch copy of the
user's folder holding the draft: a template that fails it is not saved, and
the message names the file as it would be saved.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError, RenderError
from relances.daemon.letters.check import check_samples, rendered_samples
from relances.daemon.letters.mergefields import sample_context
from relances.daemon.letters.templating import LANGUAGES, find_file, template_dirs, user_folder

EDITABLE = {1: "letter_1.html", 2: "letter_2.html", 3: "letter_3.html"}
MAX_TEMPLATE_BYTES = 200_000


def template_name(level: int) -> str:
    if level not in EDITABLE:
        raise ConfigError(f"no letter for level {level} (1 to 3)")
    return EDITABLE[level]


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise ConfigError(f"no letters in language {language!r} ({', '.join(LANGUAGES)})")
    return language


def source_of(settings: Settings, language: str, level: int) -> tuple[str, bool]:
    """A level's template as letters use it today, and whether it is the user's own."""
    path = find_file(template_dirs(settings, _language(language)), template_name(level))
    own = path.is_relative_to(user_folder(settings))
    return path.read_text(encoding="utf-8"), own


def _text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    if len(text.encode("utf-8")) > MAX_TEMPLATE_BYTES:
        raise ConfigError(f"template too long: more than {MAX_TEMPLATE_BYTES // 1000} kB")
    if "\x00" in text:
        raise ConfigError("template holds a NUL character")
    return text


@contextmanager
def drafted(settings: Settings, language: str, level: int, text: str) -> Iterator[Settings]:
    """Settings whose templates are the user's folder with ``text`` as this level's letter,
    in a scratch folder that is gone once the block ends."""
    name, text = template_name(level), _text(text)
    with tempfile.TemporaryDirectory(prefix="relances-draft-") as scratch:
        folder = Path(scratch) / "templates"
        own = user_folder(settings)
        if own.is_dir():
            shutil.copytree(own, folder, symlinks=True)
        (folder / _language(language)).mkdir(parents=True, exist_ok=True)
        (folder / language / name).write_text(text, encoding="utf-8")
        letters = settings.letters.model_copy(update={"templates_dir": folder})
        yield settings.model_copy(update={"letters": letters})


BARE = "_bare_letter.html"  # the layout with nothing of a letter's own, to compare with


def _words(written: str) -> str:
    body = re.split(r"<body\b", written, maxsplit=1)[-1]  # not the title, which is the subject
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", body)).split())


def check_draft(settings: Settings, language: str, level: int, text: str) -> None:
    """Raise ConfigError, naming the file as it would be saved, unless every template
    renders against the samples with ``text`` as this level's letter, and the letter's
    own text names its invoice: beyond what the layout writes around every letter (the
    subject, the enclosures), so that an empty or cut template never sends a blank
    letter."""
    target = user_folder(settings) / _language(language) / template_name(level)
    with drafted(settings, language, level, text) as draft:
        scratch = str(draft.letters.templates_dir)
        try:
            check_samples(draft)
            assert draft.letters.templates_dir is not None
            (Path(draft.letters.templates_dir) / language / BARE).write_text(
                '{% extends "layout.html" %}', encoding="utf-8")
            sample = sample_context(draft, kind="letter", level=level, language=language)
            letter, bare = rendered_samples(draft, language, [template_name(level), BARE], sample)
        except (ConfigError, RenderError) as exc:
            raise ConfigError(str(exc).replace(scratch, str(user_folder(settings)))) from None
    number = sample["invoice"]["number"]
    if _words(letter).count(number) <= _words(bare).count(number):
        raise ConfigError(f"{target}: the letter does not name its invoice: a reminder says "
                          "which invoice it is about ({{ invoice.number }})")


def save(settings: Settings, language: str, level: int, text: str) -> Path:
    """Check the draft, then write it into the user's folder (atomically); its path."""
    check_draft(settings, language, level, text)
    target = user_folder(settings) / _language(language) / template_name(level)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=".relances-", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ConfigError(f"{target.parent}: cannot write there "
                          f"({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(_text(text))
        os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target


def restore(settings: Settings, language: str, level: int) -> bool:
    """Remove the user's own version of a level's letter: the built-in one applies again."""
    target = user_folder(settings) / _language(language) / template_name(level)
    if target.is_file() and not target.is_symlink():
        target.unlink()
        return True
    return False
