"""How fast letters render, and whether memory stays flat.

Renders level-1 letters through the real path (``Renderer.render`` and its
process pool) and compares with the fair baseline of ``_common.bare_loop``
(one process, one font configuration, the stylesheet parsed once, the
letter's HTML as ``relances preview --html`` writes it), in the same run.
Prints ratios, ending with ``render: ratio R``; asserts nothing.

    .venv/bin/python bench/render.py                 # 2,000 letters
    .venv/bin/python bench/render.py --big           # and a 20,000-letter memory run
    .venv/bin/python bench/render.py --count 500 --baseline 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import weasyprint
from _common import Bare, PeakMemory, bare_loop
from _lines import ratio_line

from relances.daemon.config import Settings, load_settings
from relances.daemon.letters.context import build_context
from relances.daemon.letters.job import LetterJob
from relances.daemon.letters.mergefields import SAMPLE_DATE, sample_customer, sample_invoices
from relances.daemon.letters.pool import Renderer, harfbuzz_subset_available

ROOT = Path(__file__).resolve().parent.parent


def settings() -> Settings:
    path = ROOT / "settings.yaml"
    return load_settings(path) if path.is_file() else Settings()


def letter_job(s: Settings, n: int) -> LetterJob:
    """A level-1 letter; the invoice number changes so no two documents are equal."""
    invoice = sample_invoices(1)[0]
    invoice.number = f"COD_F{10000 + n}"
    context = build_context(s, sample_customer(), [invoice], kind="letter", level=1,
                            as_of=SAMPLE_DATE, language="fr")
    return LetterJob(kind="letter", level=1, language="fr", template="letter_1.html",
                     context=context, invoice_numbers=(invoice.number,), customer_code="INT01",
                     copy_paths=(), subject=context["subject"],
                     filename=f"relance-1-{invoice.number}.pdf")


def baseline(s: Settings, count: int) -> Bare:
    """The fair baseline over ``count`` letters (see ``_common.bare_loop``)."""
    return bare_loop(s, letter_job(s, 0), count)


async def pooled(s: Settings, count: int, workers: int | None) -> tuple[float, float, int]:
    """(letters per second, pool start seconds, peak RSS KiB) through Renderer.render."""
    started = time.perf_counter()
    async with Renderer(s, workers=workers) as renderer:
        await asyncio.gather(*(renderer.render(letter_job(s, -i)) for i in range(renderer.workers)))
        ready = time.perf_counter() - started
        sampler = PeakMemory(lambda: renderer.worker_pids)
        sampler.start()
        next_n = 0

        async def feed() -> None:
            nonlocal next_n
            while next_n < count:
                n, next_n = next_n, next_n + 1
                letter = await renderer.render(letter_job(s, n))
                assert letter.pdf.startswith(b"%PDF")

        start = time.perf_counter()
        await asyncio.gather(*(feed() for _ in range(2 * renderer.workers)))
        rate = count / (time.perf_counter() - start)
        peak = sampler.stop()
    return rate, ready, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=300,
                        help="letters for the single-process loop (its rate is what matters)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--big", action="store_true", help="also a 20,000-letter memory run")
    args = parser.parse_args()
    s = settings()
    out = sys.stdout.write
    out(f"cores: {os.cpu_count()}  weasyprint {weasyprint.__version__}  "
        f"harfbuzz-subset: {'yes' if harfbuzz_subset_available() else 'NO (slow)'}\n")
    # Half the baseline before the pool and half after: both sides see the machine alike.
    half = max(1, args.baseline // 2)
    before = baseline(s, half)
    rate, ready, peak = asyncio.run(pooled(s, args.count, args.workers))
    after = baseline(s, max(1, args.baseline - half))
    base = (before + after).rate
    out(f"fair baseline (1 process, one FontConfiguration, stylesheet parsed once, the HTML "
        f"of `preview --html`): {base:.1f} letters/s ({args.baseline} letters: "
        f"{before.rate:.1f} before the pool, {after.rate:.1f} after)\n")
    out(f"Renderer.render, process pool: {rate:.1f} letters/s ({args.count} letters; "
        f"pool ready in {ready:.1f} s)\n")
    out(f"peak RSS parent+workers, {args.count} letters: {peak / 1024:.0f} MiB\n")
    big_peak = None
    if args.big:
        big = 10 * args.count
        big_rate, _, big_peak = asyncio.run(pooled(s, big, args.workers))
        out(f"peak RSS parent+workers, {big} letters: {big_peak / 1024:.0f} MiB "
            f"({big_rate:.1f} letters/s); flat is a ratio of about 1.0\n")
    out(f"goals on 2 cores: render >= 1.6{'; render memory <= 1.2' if args.big else ''}\n")
    out(ratio_line("render", rate / base))
    if big_peak is not None:
        out(ratio_line("render memory", big_peak / peak))


if __name__ == "__main__":
    main()
