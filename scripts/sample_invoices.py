"""Write the sample ledger's invoice PDFs (the copies joined to formal notices).

    .venv/bin/python scripts/sample_invoices.py [--force]

Reads daemon/sample/customers.csv, seed.tsv and invoices.tsv and writes
daemon/sample/invoices/<number>.pdf for each invoice that has none yet.
The amounts are split into a net amount and 20 % VAT that add up to the
ledger's total.
"""

from __future__ import annotations

import argparse
import csv
import html
from decimal import Decimal
from pathlib import Path

import weasyprint

from relances.daemon.ledger.export import invoice_rows

SAMPLE = Path(__file__).resolve().parent.parent / "daemon" / "sample"
CSS = """
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; color: #222; }
.head { display: flex; justify-content: space-between; }
.title { text-align: right; } .title h1 { margin: 0; font-size: 20pt; color: #1f3a5f; }
.to { margin: 18mm 0 14mm 95mm; line-height: 1.4; }
table { width: 100%; border-collapse: collapse; margin-top: 6mm; }
th { background: #1f3a5f; color: white; text-align: left; padding: 2mm; }
td { padding: 2mm; border-bottom: 1px solid #ddd; } .n { text-align: right; }
.tot td { border: none; } .legal { margin-top: 14mm; font-size: 8pt; color: #555; }
"""


def euros(value: Decimal) -> str:
    return f"{value:,.2f} €".replace(",", "\u202f").replace(".", ",")


def page(row: object, customer: dict[str, str]) -> str:
    total = row.total  # type: ignore[attr-defined]
    net = (total / Decimal("1.2")).quantize(Decimal("0.01"))
    lines = [customer.get("name", ""), customer.get("address_line1", ""),
             customer.get("address_line2", ""),
             f"{customer.get('postal_code', '')} {customer.get('city', '')}".strip(),
             customer.get("country", "")]
    address = "<br>".join(html.escape(x) for x in lines if x)
    e = html.escape
    return f"""<html><head><style>{CSS}</style></head><body>
<div class="head"><div><b>Codial Démo SARL</b><br>18 rue de la République<br>69002 Lyon<br>
SIRET 123 456 789 00012<br>TVA FR12123456789</div>
<div class="title"><h1>FACTURE</h1>N° {e(row.number)}<br>
Date : {row.invoice_date:%d/%m/%Y}<br>Échéance : {row.due_date:%d/%m/%Y}<br>
Client : {e(row.customer_code)}</div></div>
<div class="to">{address}</div>
<table><tr><th>Désignation</th><th class="n">Qté</th><th class="n">Total HT</th></tr>
<tr><td>Prestations et fournitures</td><td class="n">1</td><td class="n">{euros(net)}</td></tr>
<tr class="tot"><td></td><td class="n">Total HT</td><td class="n">{euros(net)}</td></tr>
<tr class="tot"><td></td><td class="n">TVA 20 %</td><td class="n">{euros(total - net)}</td></tr>
<tr class="tot"><td></td><td class="n"><b>Total TTC</b></td><td class="n"><b>{euros(total)}</b></td>
</tr></table>
<p>Mode de règlement : {e(row.payment_method or "virement").lower()}.</p>
<p class="legal">En cas de retard de paiement, pénalités au taux BCE + 10 points et indemnité
forfaitaire pour frais de recouvrement de 40 € (art. L441-10 et D441-5 du Code de commerce).</p>
</body></html>"""  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="rewrite existing PDFs")
    args = parser.parse_args()
    with (SAMPLE / "customers.csv").open(encoding="utf-8") as f:
        customers = {r["code"]: r for r in csv.DictReader(f, delimiter=";")}
    out = SAMPLE / "invoices"
    out.mkdir(exist_ok=True)
    for source in ("seed.tsv", "invoices.tsv"):
        for row in invoice_rows(SAMPLE / source):
            target = out / f"{row.number}.pdf"
            if target.exists() and not args.force:
                continue
            weasyprint.HTML(string=page(row, customers.get(row.customer_code, {}))).write_pdf(target)
            print(target)


if __name__ == "__main__":
    main()
