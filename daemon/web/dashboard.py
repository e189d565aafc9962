"""Tableau de bord: what is overdue by age (an SVG bar chart drawn here), what
each level and channel recovered, the failures waiting for someone, and the
last import, statement and run, as ``relances status`` reads them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from relances.daemon import formatting as fmt
from relances.daemon.service import dashboard
from relances.daemon.service.status import service_status
from relances.daemon.web.auth import PageViewer, relances
from relances.daemon.web.rendering import Pages

router = APIRouter(include_in_schema=False)
CHART_WIDTH = 420  # pixels of the longest bar


def _bars(bands: list[dashboard.AgeBand]) -> list[dict[str, Any]]:
    """Each age band with its bar's length, the longest amount filling the chart."""
    top = max((band.amount for band in bands), default=Decimal(0))
    return [{"label": band.label, "count": band.count, "amount": band.amount,
             "width": round(CHART_WIDTH * band.amount / top) if top else 0}
            for band in bands]


@router.get("/tableau-de-bord")
async def board(request: Request, viewer: PageViewer) -> Response:
    app = relances(request)
    today = app.settings.today()
    async with app.sessions() as session:
        bands = await dashboard.overdue_by_age(session, today)
        recovery = await dashboard.recovered(session, app.settings.zone, today)
        status = await service_status(session, app.settings, as_of=today)

    def when(moment: Any) -> str:
        return " ".join(fmt.local_time(moment, app.settings.zone)) if moment else "—"

    pages: Pages = request.app.state.pages
    return pages.render(
        request, "tableau_de_bord.html", bars=_bars(bands), chart_width=CHART_WIDTH,
        overdue=sum((b.amount for b in bands), Decimal(0)),
        recovery=recovery, recovery_days=dashboard.RECOVERY_DAYS, status=status,
        waiting=sum(len(numbers) for numbers in status.waiting.values()), when=when,
        today=today)
