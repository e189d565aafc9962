"""CDAR status messages written from the element paths of the French specification
(the FNFE-MPE's BR-FR-CDV rules for UN/CEFACT D22B CrossDomainAcknowledgementAndResponse)."""

from __future__ import annotations

from xml.sax.saxutils import escape

SELLER = "732829320"


def reference(number: str, code: str, *, reason: str = "", text: str = "", cashed: str = "",
              siren: str = SELLER) -> str:
    detail = ""
    if reason or text or cashed:
        characteristic = (f"<ram:SpecifiedDocumentCharacteristic><ram:TypeCode>MEN</ram:TypeCode>"
                          f"<ram:ValueAmount>{cashed}</ram:ValueAmount><ram:ValuePercent>20.00"
                          f"</ram:ValuePercent></ram:SpecifiedDocumentCharacteristic>") if cashed else ""
        detail = ("<ram:SpecifiedDocumentStatus><ram:SequenceNumeric>1</ram:SequenceNumeric>"
                  + (f"<ram:ReasonCode>{reason}</ram:ReasonCode>" if reason else "")
                  + (f"<ram:Reason>{escape(text)}</ram:Reason>" if text else "")
                  + characteristic + "</ram:SpecifiedDocumentStatus>")
    return f"""
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{escape(number)}</ram:IssuerAssignedID>
      <ram:StatusCode>45</ram:StatusCode>
      <ram:TypeCode>380</ram:TypeCode>
      <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
      <ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20260901</qdt:DateTimeString>
      </ram:FormattedIssueDateTime>
      <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">{siren}</ram:GlobalID>
        <ram:RoleCode>SE</ram:RoleCode></ram:IssuerTradeParty>
      {detail}
    </ram:ReferenceReferencedDocument>"""


def message(*references: str, ident: str = "CDV-0001", issued: str = "20261130143000",
            fmt: str = "204", role: str = "SE") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse
    xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:BusinessProcessSpecifiedDocumentContextParameter><ram:ID>REGULATED</ram:ID>
    </ram:BusinessProcessSpecifiedDocumentContextParameter>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{ident}</ram:ID>
    <ram:Name>Cycle de vie</ram:Name>
    <ram:IssueDateTime><udt:DateTimeString format="{fmt}">{issued}</udt:DateTimeString></ram:IssueDateTime>
    <ram:SenderTradeParty><ram:RoleCode>WK</ram:RoleCode></ram:SenderTradeParty>
    <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">{SELLER}</ram:GlobalID>
      <ram:RoleCode>{role}</ram:RoleCode></ram:IssuerTradeParty>
    <ram:RecipientTradeParty><ram:RoleCode>WK</ram:RoleCode></ram:RecipientTradeParty>
  </rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:MultipleReferencesIndicator><udt:Indicator>false</udt:Indicator>
    </ram:MultipleReferencesIndicator>
    <ram:TypeCode>23</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="204">{issued}</udt:DateTimeString></ram:IssueDateTime>
    {"".join(references)}
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>
"""
