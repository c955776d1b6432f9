"""Bank statements of the payout account, read into lines: ISO 20022 camt.053 (XML) and SWIFT
MT940 (text).

A line is one booked movement: its bank reference (unique within the account, the key that
makes a re-import harmless), the day it was booked, debit (money out: a payment) or credit
(money back: a return), the amount in tiyn, and our payment key as the bank echoes it (the
end-to-end id). Entries not yet booked (pending) are counted and left out: they may change.

camt.053: one `Ntry` is one line, keyed by its `AcctSvcrRef` (else `NtryRef`); a batch entry
with several `TxDtls` is one line per transaction, keyed `entry/transaction`. Namespaces of
any camt.053 version are accepted. The XML is read with defusedxml: a statement is a file from
outside, and entity expansion or external entities in it are refused.

MT940: each `:61:` is a line, keyed by its bank reference (after `//`, else the reference for
the account owner), with the end-to-end id in `:86:` as `/EREF/...` or `EREF+...` (else the
owner's reference) and a return reason as `/RTRN/...`.

Expected failures raise `StatementError` (code INVALID_STATEMENT) with what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

# Kazakhstan keeps one time zone, UTC+5: a statement's bare dates are days in Astana.
ASTANA = timezone(timedelta(hours=5), "Asia/Almaty")
MAX_STATEMENT_BYTES = 50 * 1024 * 1024
# Ten billion tenge: more than any one line of a benefits account, far below BIGINT.
MAX_AMOUNT_TIYN = 10**12
# The widths the lines are stored in (wallet.bank_tables).
_WIDTHS = {
    "statement_id": 64,
    "account": 34,
    "reference": 128,
    "end_to_end_id": 128,
    "return_reason": 8,
    "currency": 3,
}
_NOT_PROVIDED = {"", "NOTPROVIDED", "NONREF"}


class StatementError(Exception):
    """A statement that cannot be read, with a stable code for callers."""

    code = "INVALID_STATEMENT"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked movement on the account."""

    statement_id: str
    account: str
    reference: str
    booked_on: date
    booked_at: datetime | None  # the exact time, when the bank gives one
    direction: str  # debit (money out) or credit (money back)
    amount_tiyn: int
    currency: str
    end_to_end_id: str | None
    return_reason: str | None

    def __post_init__(self) -> None:
        for name, width in _WIDTHS.items():
            value = getattr(self, name)
            if value is not None and len(value) > width:
                raise StatementError(f"{self.reference[:40]}: {name} longer than {width}")

    @property
    def booked_moment(self) -> datetime:
        """When the money moved: the exact time, else the start of the booking day in Astana."""
        if self.booked_at is not None:
            return self.booked_at
        return datetime.combine(self.booked_on, time.min, ASTANA).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Statement:
    """The booked lines of a statement file, and how many entries were not booked yet."""

    format: str  # camt.053 or MT940
    lines: tuple[StatementLine, ...]
    not_booked: int = 0


def parse_statement(data: bytes) -> Statement:
    """Read a camt.053 or MT940 statement (told apart by their content)."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise StatementError(f"a statement is at most {MAX_STATEMENT_BYTES} bytes")
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_camt053(data)
    if b":61:" in data or b":20:" in data:
        return parse_mt940(data)
    raise StatementError("neither a camt.053 (XML) nor an MT940 statement")


# --- camt.053 -------------------------------------------------------------------------------


def _text(element: Element | None, path: str) -> str | None:
    found = element.find(path) if element is not None else None
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _tiyn(text: str | None, what: str) -> int:
    try:
        amount = Decimal((text or "").replace(",", "."))
    except InvalidOperation:
        raise StatementError(f"{what}: {text!r} is not an amount") from None
    tiyn = amount * 100
    if not amount.is_finite() or amount < 0 or tiyn != tiyn.to_integral_value():
        raise StatementError(f"{what}: {text!r} is not a whole number of tiyn")
    if tiyn > MAX_AMOUNT_TIYN:
        raise StatementError(f"{what}: {text!r} is more than any payment")
    return int(tiyn)


def _booked(entry: Element, what: str) -> tuple[date, datetime | None]:
    moment = _text(entry, "{*}BookgDt/{*}DtTm")
    if moment is not None:
        try:
            at = datetime.fromisoformat(moment)
        except ValueError:
            raise StatementError(f"{what}: booking time {moment!r} is not ISO 8601") from None
        at = at if at.tzinfo is not None else at.replace(tzinfo=ASTANA)
        return at.astimezone(ASTANA).date(), at.astimezone(UTC)
    day = _text(entry, "{*}BookgDt/{*}Dt")
    try:
        return date.fromisoformat(day or ""), None
    except ValueError:
        raise StatementError(f"{what}: booking date {day!r} is not a date") from None


def _end_to_end(transaction: Element | None) -> str | None:
    value = _text(transaction, "{*}Refs/{*}EndToEndId")
    return None if value is None or value.upper() in _NOT_PROVIDED else value


def parse_camt053(data: bytes) -> Statement:
    """The booked lines of an ISO 20022 camt.053 bank-to-customer statement."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise StatementError(f"not a well-formed statement: {exc}") from None
    statements = root.findall("{*}BkToCstmrStmt/{*}Stmt")
    if not root.tag.endswith("Document") or not statements:
        raise StatementError("not a camt.053 document (no BkToCstmrStmt/Stmt)")
    lines: list[StatementLine] = []
    not_booked = 0
    for stmt in statements:
        statement_id = _text(stmt, "{*}Id")
        account = _text(stmt, "{*}Acct/{*}Id/{*}IBAN") or _text(stmt, "{*}Acct/{*}Id/{*}Othr/{*}Id")
        if not statement_id or not account:
            raise StatementError("a statement needs its Id and its account")
        for number, entry in enumerate(stmt.findall("{*}Ntry"), start=1):
            what = f"statement {statement_id}, entry {number}"
            status = _text(entry, "{*}Sts/{*}Cd") or _text(entry, "{*}Sts")
            if status != "BOOK":
                not_booked += 1
                continue
            lines.extend(_camt_entry_lines(entry, statement_id, account, what))
    return Statement(format="camt.053", lines=tuple(lines), not_booked=not_booked)


def _camt_entry_lines(
    entry: Element, statement_id: str, account: str, what: str
) -> list[StatementLine]:
    reference = _text(entry, "{*}AcctSvcrRef") or _text(entry, "{*}NtryRef")
    if reference is None:
        raise StatementError(f"{what}: no bank reference (AcctSvcrRef or NtryRef)")
    indicator = _text(entry, "{*}CdtDbtInd")
    if indicator not in ("DBIT", "CRDT"):
        raise StatementError(f"{what}: CdtDbtInd is {indicator!r}, not DBIT or CRDT")
    amount_element = entry.find("{*}Amt")
    booked_on, booked_at = _booked(entry, what)
    transactions = entry.findall("{*}NtryDtls/{*}TxDtls")

    def line(
        key: str, amount: Element | None, transaction: Element | None, where: str
    ) -> StatementLine:
        if amount is None:
            raise StatementError(f"{where}: no amount")
        return StatementLine(
            statement_id=statement_id,
            account=account,
            reference=key,
            booked_on=booked_on,
            booked_at=booked_at,
            direction="debit" if indicator == "DBIT" else "credit",
            amount_tiyn=_tiyn(amount.text, where),
            currency=(amount.get("Ccy") or "").upper(),
            end_to_end_id=_end_to_end(transaction),
            return_reason=_text(transaction, "{*}RtrInf/{*}Rsn/{*}Cd"),
        )

    if len(transactions) <= 1:
        transaction = transactions[0] if transactions else None
        return [line(reference, amount_element, transaction, what)]
    # A batch booked as one entry: each transaction is a line of its own.
    lines = []
    for index, transaction in enumerate(transactions, start=1):
        own = _text(transaction, "{*}Refs/{*}AcctSvcrRef") or str(index)
        amount = transaction.find("{*}AmtDtls/{*}TxAmt/{*}Amt")
        if amount is None:
            amount = transaction.find("{*}Amt")
        lines.append(line(f"{reference}/{own}", amount, transaction, f"{what}, tx {index}"))
    return lines


# --- MT940 ----------------------------------------------------------------------------------

_TAG = re.compile(r"^:(\d{2}[A-Z]?):", re.MULTILINE)
# :61: value date, entry date (MMDD, optional), mark (C, D, RC, RD), funds code (optional),
# amount, transaction type, reference for the account owner, // bank reference.
_LINE_61 = re.compile(
    r"(?P<value>\d{6})(?P<entry>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z])?"
    r"(?P<amount>\d[\d,]*)(?P<type>[A-Z][A-Z0-9]{3})(?P<owner>[^/\r\n]*?)"
    r"(?://(?P<bank>[^\r\n]+))?(?:\r?\n|$)"
)
_EREF = re.compile(r"(?:/EREF/|EREF\+)([^/\r\n?]+)")
_RTRN = re.compile(r"/RTRN/([A-Z0-9]{4})")


def _fields(text: str) -> list[tuple[str, str]]:
    marks = list(_TAG.finditer(text))
    return [
        (mark.group(1), text[mark.end() : marks[i + 1].start() if i + 1 < len(marks) else None])
        for i, mark in enumerate(marks)
    ]


def _mt940_date(value: str, what: str) -> date:
    try:
        return date(2000 + int(value[:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        raise StatementError(f"{what}: {value!r} is not a YYMMDD date") from None


def parse_mt940(data: bytes) -> Statement:
    """The lines of a SWIFT MT940 customer statement (one or more messages)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StatementError("an MT940 statement must be UTF-8 text") from None
    statement_id = account = currency = None
    lines: list[StatementLine] = []
    pending: dict[str, Any] | None = None

    def flush(info: str = "") -> None:
        nonlocal pending
        if pending is None:
            return
        eref = _EREF.search(info)
        owner = pending.pop("owner")
        returned = _RTRN.search(info)
        lines.append(
            StatementLine(
                **pending,
                end_to_end_id=eref.group(1).strip() if eref else owner,
                return_reason=returned.group(1) if returned else None,
            )
        )
        pending = None

    for tag, value in _fields(text):
        value = value.strip()
        if tag == "20":
            flush()
            statement_id = value
        elif tag == "25":
            account = value.split("/")[-1]
        elif tag in ("60F", "60M"):
            currency = value[7:10]
        elif tag == "61":
            flush()
            what = f"statement {statement_id}, line {len(lines) + 1}"
            match = _LINE_61.match(value + "\n")
            if match is None or not statement_id or not account or not currency:
                raise StatementError(f"{what}: not a :61: line of a statement with :20: :25: :60F:")
            value_date = _mt940_date(match["value"], what)
            booked_on = value_date
            if match["entry"]:
                booked_on = date(value_date.year, int(match["entry"][:2]), int(match["entry"][2:]))
                # The entry date has no year: take the one closest to the value date.
                if booked_on - value_date > timedelta(days=180):
                    booked_on = booked_on.replace(year=booked_on.year - 1)
                elif value_date - booked_on > timedelta(days=180):
                    booked_on = booked_on.replace(year=booked_on.year + 1)
            owner = (match["owner"] or "").strip()
            reference = (match["bank"] or "").strip() or owner
            if not reference or reference.upper() in _NOT_PROVIDED:
                raise StatementError(f"{what}: no bank reference")
            pending = {
                "statement_id": statement_id,
                "account": account,
                "reference": reference,
                "booked_on": booked_on,
                "booked_at": None,
                "direction": "credit" if match["mark"] in ("C", "RD") else "debit",
                "amount_tiyn": _tiyn(match["amount"], what),
                "currency": currency,
                "owner": None if owner.upper() in _NOT_PROVIDED else owner,
            }
        elif tag == "86":
            flush(value)
    flush()
    if statement_id is None:
        raise StatementError("not an MT940 statement (no :20:)")
    return Statement(format="MT940", lines=tuple(lines))
