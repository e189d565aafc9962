"""The reminders table taken away: as CSV for Excel (the filter and order on
screen) and as the printed PDF report of ``relances report``."""

from __future__ import annotations

import io

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
    app = relances(request)
    wanted, params, _ = table_filter(request)
    sort = params["tri"] if params["tri"] in screens.SORTS else screens.DEFAULT_SORT
    today = app.settings.today()
    async with app.sessions() as session:
        rows = await screens.all_rows(session, app.settings, as_of=today, wanted=wanted,
                                      sort=sort, descending=params["ordre"] == "desc")
    buffer = io.StringIO()
    write_rows_csv(buffer, rows, french=request.query_params.get("format") != "csv-en")
    return Response(buffer.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="relances-{today.isoformat()}.csv"'})


@router.get("/relances.pdf")
async def table_pdf(request: Request, viewer: PageViewer) -> Response:
    """The printed reminders table (every overdue unpaid invoice), as `relances report`."""
    app = relances(request)
    today = app.settings.today()
    async with app.sessions() as session:
        context = await report.load_report_context(session, app.settings, as_of=today)
    pdf = await renderer_of(request).render_document(context["language"], report.TEMPLATE,
                                                     context)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="relances-{today.isoformat()}.pdf"'})
