"""A template's work is bounded: time, memory, output, recursion; the pool recovers.

The deadlines in these settings are generous for a real letter; the
hostile templates would run for hours or take every byte of the machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from letters_fixtures import make_settings, pdf_text

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError, RenderError
from relances.daemon.letters.check import check_templates
from relances.daemon.letters.documents import LetterJob
from relances.daemon.letters.mergefields import sample_context
from relances.daemon.letters.pool import Renderer

LOOP = ("{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}"
        "{% endfor %}{% endfor %}")
# Each pass doubles the text: 2**40 characters is a terabyte.
DOUBLING = ("{% set ns = namespace(text='relance ') %}{% for i in range(40) %}"
            "{% set ns.text = ns.text ~ ns.text %}{% endfor %}{{ ns.text | length }}")
MACRO = "{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}{{ again(1) }}"
SELF_INCLUDE = "<p>{% include 'letter_1.html' %}</p>"
# 10 GB of text, written a piece at a time.
FLOOD = ("{% for i in range(100000) %}{% for j in range(10000) %}xxxxxxxxxx"
         "{% endfor %}{% endfor %}")

LIMITS = {"render_timeout": 10, "render_memory_mb": 1024, "render_output_mb": 2}


def hostile(tmp_path: Path, text: str, name: str = "letter_1.html", **limits: Any) -> Settings:
    folder = tmp_path / "my-templates" / "fr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return make_settings(tmp_path, letters={"templates_dir": "my-templates",
                                            **LIMITS, **limits})


def job(settings: Settings, level: int) -> LetterJob:
    context = sample_context(settings, kind="letter", level=level, language="fr",
                             consumer=False)
    return LetterJob(kind="letter", level=level, language="fr", template=f"letter_{level}.html",
                     context=context, invoice_numbers=(context["invoice"]["number"],),
                     customer_code=context["customer"]["code"], copy_paths=(),
                     subject=context["subject"], filename=f"relance-{level}.pdf")


def check_error(settings: Settings) -> str:
    with pytest.raises(ConfigError) as caught:
        check_templates(settings)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_loop_without_end_fails_the_check_with_the_template(tmp_path: Path) -> None:
    message = check_error(hostile(tmp_path, LOOP))
    path = tmp_path / "my-templates" / "fr" / "letter_1.html"
    assert message == f"{path}: rendering took longer than 10 s (letters.render_timeout)"


def test_a_text_doubled_until_memory_runs_out_fails_the_check(tmp_path: Path) -> None:
    message = check_error(hostile(tmp_path, DOUBLING, name="email.txt"))
    assert message.startswith(f"{tmp_path / 'my-templates' / 'fr' / 'email.txt'}: ")
    assert "more memory than the 1024 MB a render worker may use" in message
    assert "letters.render_memory_mb" in message


def test_a_template_writing_past_the_output_cap_fails_the_check(tmp_path: Path) -> None:
    message = check_error(hostile(tmp_path, FLOOD, name="statement.html"))
    assert message == "statement.html: the template writes more than 2 MB " \
                      "(letters.render_output_mb)"


@pytest.mark.parametrize("text", [MACRO, SELF_INCLUDE], ids=["macro", "include"])
def test_a_template_calling_itself_is_one_line(tmp_path: Path, text: str) -> None:
    message = check_error(hostile(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'my-templates' / 'fr' / 'letter_1.html'}:1: ")
    assert message.endswith("the template calls itself without end "
                            "(a macro calling itself, or an include of itself)")
    assert "RecursionError" not in message


def test_a_power_too_large_to_print_is_refused_before_it_is_computed(tmp_path: Path) -> None:
    # 9 ** 387420489 would hold the worker in one C call no timer interrupts.
    message = check_error(hostile(tmp_path, "<p>{{ 9 ** (9 ** 9) }}</p>"))
    assert message.endswith("letter_1.html:1: not allowed in a template: "
                            "9 ** 387420489 is too large a number for a letter")


def test_preview_renders_within_the_bounds(tmp_path: Path) -> None:
    """``preview`` and ``report`` render through render_sync: in a bounded worker."""
    settings = hostile(tmp_path, DOUBLING)
    with pytest.raises(RenderError, match=r"letter_1\.html: rendering needs more memory"):
        Renderer(settings, workers=1).render_sync(job(settings, 1))
    letter = Renderer(settings, workers=1).render_sync(job(settings, 2))
    assert "Relance n°2" in pdf_text(letter.pdf)


async def test_breaches_in_the_pool_name_the_template_and_the_pool_goes_on(
        tmp_path: Path) -> None:
    settings = hostile(tmp_path, DOUBLING)
    (tmp_path / "my-templates" / "fr" / "letter_3.html").write_text(LOOP, encoding="utf-8")
    async with Renderer(settings, workers=1) as renderer:
        with pytest.raises(RenderError, match=r"letter_1\.html: rendering needs more memory "
                                              r"than the 1024 MB"):
            await renderer.render(job(settings, 1))
        with pytest.raises(RenderError, match=r"letter_3\.html: rendering took longer "
                                              r"than 10 s \(letters\.render_timeout\)"):
            await renderer.render(job(settings, 3))
        # The same worker takes the next letter: neither breach cost it.
        pids = renderer.worker_pids
        letter = await renderer.render(job(settings, 2))
        assert renderer.worker_pids == pids
    assert "Relance n°2" in pdf_text(letter.pdf)


async def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    settings = hostile(tmp_path, LOOP, render_timeout=600)
    async with Renderer(settings, workers=1) as renderer:
        await renderer.warm()
        [pid] = renderer.worker_pids
        stuck = asyncio.ensure_future(renderer.render(job(settings, 1)))
        await asyncio.sleep(1)  # the worker has taken the letter
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(RenderError, match=r"letter_1\.html: the render worker stopped"):
            await stuck
        letter = await renderer.render(job(settings, 2))
        assert renderer.worker_pids and renderer.worker_pids != [pid]
    assert "Relance n°2" in pdf_text(letter.pdf)
