"""Render every template once against samples, at configuration load.

A bad template fails ``relances check-config`` and the daemon's start with
the file, the line and the field, not in the middle of a run.  The samples
are rendered in a worker process of their own, under the bounds of
:mod:`relances.daemon.letters.bounds`: a template that loops without end
or takes all the memory fails the check with its name, as it would fail
its letter.

A check that passed is remembered by the fingerprint of what it depends
on (the settings, every file of the templates folders, the code that
builds and renders the samples) in ``DATA_DIR/.template-check``: the
next start with nothing changed skips the samples' two seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError, RenderError
from relances.daemon.letters.bounds import Limits, bounded, init_bounded, one_worker, result_of
from relances.daemon.letters.mergefields import sample_context, sample_report_context
from relances.daemon.letters.templating import (
    LANGUAGES,
    STYLESHEET,
    LetterEnvironment,
    find_file,
    logo_path,
    make_environment,
    render_template,
    template_dirs,
    template_file,
)

log = logging.getLogger(__name__)

EMAIL_TEMPLATES = ("email.txt", "email.html")


def _samples(settings: Settings, language: str) -> list[tuple[str, dict[str, Any]]]:
    """(template, context) pairs covering every level, kind and customer type."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for level in (1, 2, 3):
        for consumer in (False, True):
            letter = sample_context(settings, kind="letter", level=level,
                                    language=language, consumer=consumer)
            statement = sample_context(settings, kind="statement", level=level,
                                       language=language, consumer=consumer)
            pairs.append((f"letter_{level}.html", letter))
            pairs.append(("statement.html", statement))
            pairs += [(name, ctx) for name in EMAIL_TEMPLATES for ctx in (letter, statement)]
    pairs.append(("report.html", sample_report_context(settings, language)))
    return pairs


# The check worker's environments, one per language, built at its first sample.
_ENVIRONMENTS: dict[str, LetterEnvironment] = {}


def _render_sample(settings: Settings, language: str, template: str,
                   context: dict[str, Any]) -> str:
    """In the check's worker process: render one template against one sample."""
    env = _ENVIRONMENTS.get(language)
    if env is None:
        env = _ENVIRONMENTS[language] = make_environment(settings, language)
    with bounded(Limits.of(settings), template_file(settings, language, template)):
        return render_template(env, template, context)


def rendered_samples(settings: Settings, language: str, templates: list[str],
                     context: dict[str, Any]) -> list[str]:
    """Templates rendered against one sample, in a worker of its own under the check's
    bounds: what each writes (ConfigError when one fails)."""
    written = []
    with one_worker(init_bounded, (Limits.of(settings), os.getpid())) as worker:
        for template in templates:
            try:
                written.append(result_of(worker.submit(
                    _render_sample, settings, language, template, context),
                    f"{language}/{template}"))
            except RenderError as exc:
                raise ConfigError(str(exc)) from None
    return written


def check_samples(settings: Settings) -> None:
    """Render every template of every language against the samples; ConfigError on the first
    that fails."""
    with one_worker(init_bounded, (Limits.of(settings), os.getpid())) as worker:
        for language in LANGUAGES:
            for template, context in _samples(settings, language):
                try:
                    result_of(worker.submit(_render_sample, settings, language, template,
                                            context), f"{language}/{template}")
                except RenderError as exc:
                    raise ConfigError(str(exc)) from None
            try:
                find_file(template_dirs(settings, language), STYLESHEET)
            except RenderError as exc:
                raise ConfigError(str(exc)) from None


CHECKED = ".template-check"
"""The file, in the data folder, holding the fingerprint of the last check that passed."""

# The code the samples go through: a new release checks again.
_CODE = [Path(__file__).parent, Path(__file__).parent.parent / "ledger"]


def _hash_folder(digest: Any, folder: Path, pattern: str = "*") -> None:
    """Each regular file's name and content; a link's name and target, never followed
    (a FIFO or a link to a device must not block the check)."""
    try:
        entries = sorted(folder.rglob(pattern))
    except OSError:
        return
    for path in entries:
        try:
            info = path.lstat()
            digest.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode("utf-8", "surrogateescape") + b"\0")
            elif stat.S_ISREG(info.st_mode):
                digest.update(path.read_bytes())
        except OSError as exc:  # unreadable: a fingerprint of its own, and no cached pass
            digest.update(f"{path}: {exc}".encode("utf-8", "surrogateescape"))


def fingerprint(settings: Settings) -> str:
    """What a passed check depends on, hashed."""
    digest = hashlib.sha256(settings.model_dump_json().encode())
    folders = {folder for language in LANGUAGES for folder in template_dirs(settings, language)}
    for folder in sorted(folders):
        _hash_folder(digest, folder)
    for folder in _CODE:
        _hash_folder(digest, folder, "*.py")
    return digest.hexdigest()


def _passed_before(settings: Settings, key: str) -> bool:
    try:
        return (settings.data_path / CHECKED).read_text(encoding="ascii").strip() == key
    except (OSError, UnicodeDecodeError):
        return False


def _remember(settings: Settings, key: str) -> None:
    """Keep the fingerprint of this pass; a data folder that cannot take it costs
    only the next check's time."""
    target = settings.data_path / CHECKED
    scratch = target.with_name(f"{CHECKED}.{os.getpid()}")
    try:
        scratch.write_text(key + "\n", encoding="ascii")
        scratch.replace(target)
    except OSError as exc:
        log.debug("template check not remembered in %s: %s", target, exc)
        scratch.unlink(missing_ok=True)


def _warnings(settings: Settings) -> list[str]:
    warnings = []
    for name, policy in settings.policies.items():
        if not policy.level(3).attach_invoice:
            warnings.append(
                f"{settings.where('policies', name, 'levels', 3, 'attach_invoice')}: level 3 "
                "sends no copy of the invoice; in France a formal notice should carry one")
    logo = logo_path(settings)
    if logo is not None and not logo.is_file():
        warnings.append(f"{settings.where('sender', 'logo')}: logo file not found: {logo}")
    return warnings


def check_templates(settings: Settings) -> list[str]:
    """Render every template of every language once against a sample.

    Raises :class:`ConfigError` (``FILE:LINE: unknown merge field 'x'``) on
    the first unknown field, syntax error or sandbox violation; returns
    warnings for things that are allowed but probably wrong.
    """
    user = settings.letters.templates_dir
    if user is not None and not settings.path(user).is_dir():
        raise ConfigError(f"{settings.where('letters', 'templates_dir')}: "
                          f"templates folder not found: {settings.path(user)}")
    key = fingerprint(settings)
    if not _passed_before(settings, key):
        check_samples(settings)
        _remember(settings, key)
    return _warnings(settings)
