"""How fast letters render, and whether memory stays flat.

Renders level-1 letters through the real path (``Renderer.render`` and its
process pool) and compares with a bare single-process loop of
``weasyprint.HTML(string=...).write_pdf()`` over the same letter, with its
stylesheet inlined, in the same run.  Prints ratios; asserts nothing.

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
from _common import PeakMemory, bare_loop

from relances.daemon.config import Settings, load_settings
from relances.daemon.letters.context import build_context
from relances.daemon.letters.documents import LetterJob
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


def baseline(s: Settings, count: int) -> float:
    """Letters per second of the naive loop: one process, stylesheet parsed every time."""
    return bare_loop(s, letter_job(s, 0), count).rate


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
    base = baseline(s, args.baseline)
    out(f"bare HTML(string=...).write_pdf() loop, 1 process: {base:.1f} letters/s "
        f"({args.baseline} letters)\n")
    rate, ready, peak = asyncio.run(pooled(s, args.count, args.workers))
    out(f"Renderer.render, process pool: {rate:.1f} letters/s ({args.count} letters; "
        f"pool ready in {ready:.1f} s)\n")
    out(f"ratio pool / bare loop: {rate / base:.2f}  (goal >= 1.6 on 2 cores)\n")
    out(f"peak RSS parent+workers, {args.count} letters: {peak / 1024:.0f} MiB\n")
    if args.big:
        big = 10 * args.count
        big_rate, _, big_peak = asyncio.run(pooled(s, big, args.workers))
        out(f"peak RSS parent+workers, {big} letters: {big_peak / 1024:.0f} MiB "
            f"({big_rate:.1f} letters/s)\n")
        out(f"memory ratio {big} / {args.count} letters: {big_peak / peak:.2f}  "
            "(flat is about 1.0)\n")


if __name__ == "__main__":
    main()
