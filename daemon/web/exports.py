"""The reminders table taken away, as the filter and order on screen show it:
as CSV for Excel, and as the printed PDF report of ``relances report``."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from relances.daemon.ledger import screens
from relances.daemon.ledger.listing import write_rows_csv
from relances.daemon.letters import report
from relances.daemon.web.auth import PageViewer, relances
from relances.daemon.web.pages import table_filter
from relances.daemon.web.sending import renderer_of

router = APIRouter(include_in_schema=False)


@router.get("/relances.csv")
async def table_csv(request: Request, viewer: PageViewer) -> Response:
    """Every row the filter shows, in the screen's order, as a French spreadsheet opens it."""
    rows, today = await _rows(request)
    buffer = io.StringIO()
    write_rows_csv(buffer, rows, french=request.query_params.get("format") != "csv-en")
    return Response(buffer.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="relances-{today.isoformat()}.csv"'})


async def _rows(request: Request) -> tuple[list[screens.ScreenRow], Any]:
    """Every row the filter of the URL shows, in the screen's order, and the day."""
    app = relances(request)
    wanted, params, _ = table_filter(request)
    sort = params["tri"] if params["tri"] in screens.SORTS else screens.DEFAULT_SORT
    today = app.settings.today()
    async with app.sessions() as session:
        rows = await screens.all_rows(session, app.settings, as_of=today, wanted=wanted,
                                      sort=sort, descending=params["ordre"] == "desc")
    return rows, today


@router.get("/relances.pdf")
async def table_pdf(request: Request, viewer: PageViewer) -> Response:
    """The printed reminders table, as `relances report`, of the rows the filter shows."""
    app = relances(request)
    rows, today = await _rows(request)
    context = report.report_context(app.settings, rows, as_of=today,
                                    language=app.settings.letters.default_language)
    pdf = await renderer_of(request).render_document(context["language"], report.TEMPLATE,
                                                     context)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="relances-{today.isoformat()}.pdf"'})
