"""`me` for a citizen: family with masking, welfare, entitlements with reasons, spending,
payments, in three languages, at a constant number of SQL statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event

from app.auth import Role
from familymap.tables import Family, Person
from tests.wallet.wallet_builders import (
    Member,
    add_family,
    fund_wallet,
    household,
    open_books,
    pay_benefit,
    spend,
)

YEAR = datetime.now(UTC).year

WALLET = """
query Wallet($year: Int!) {
  me {
    language
    person { personId firstName iin visibility isCaller }
    family { id members { personId firstName role iin birthDate visibility isCaller } }
    welfare { level levelTitle total criteria { criterion title score explanation } }
    entitlements(first: 100) {
      edges { node {
        id programme personId status statusTitle title amountTiyn reference
        reasons { condition label value threshold passed text }
      } }
      pageInfo { hasNextPage }
    }
    spending(year: $year) {
      totalTiyn
      byCategory { category title amountTiyn }
      byMember { personId amountTiyn }
      byMonth { month amountTiyn }
      services { reason count }
    }
    payments(first: 10) { edges { node { id programme title personId amountTiyn reversed } } }
    offers(first: 10) { edges { node { id programme title state amountTiyn } } }
    notifications(first: 10) { edges { node { id programme title body } } }
    vouchers(first: 10) { edges { node { id programme title personId fundedTiyn balanceTiyn } } }
  }
}
"""
TITLES = "query T($l: Language) { me(language: $l) { language welfare { levelTitle } } }"
NON_CITIZEN = "{ me { subject person { iin } family { id } welfare { level } entitlements { edges { node { id } } } spending(year: 2026) { totalTiyn } payments { edges { node { id } } } offers { edges { node { id } } } notifications { edges { node { id } } } vouchers { edges { node { id } } } } }"  # fmt: skip
SPENDING_MONTH = "query S($m: Int) { me { spending(year: 2026, month: $m) { totalTiyn } } }"


@dataclass
class Household:
    family: Family
    head: Person
    spouse: Person
    first: Person
    second: Person
    grandmother: Person

    @property
    def rows(self) -> list[Person]:
        return [self.head, self.spouse, self.first, self.second, self.grandmother]


@pytest.fixture
async def family(session) -> Household:
    """Head, spouse, two pupils and a grandmother (role other), with some spending."""
    members = [*household(2), Member("other", "Әже", date(1950, 2, 2), "F", {"insured": True})]
    family, rows = await add_family(session, members)
    head, _spouse, first, _second, grandmother = rows
    await open_books(session)
    await pay_benefit(session, tid="me-asp-1", person=head, amount=4_000_000)
    await pay_benefit(session, tid="me-asp-2", person=grandmother, amount=1_000_000)
    await fund_wallet(session, tid="me-fund", person=first, purpose="school_meals", amount=500_000)
    await spend(session, tid="me-meal-1", person=first, purpose="school_meals", amount=98_000,
                reason="MEAL_SERVED")  # fmt: skip
    await session.commit()
    return Household(family, *rows)


async def wallet(gql, token_for, iin: str, *, headers: dict | None = None) -> dict:
    body = await gql(WALLET, {"year": YEAR}, token=token_for(Role.CITIZEN, iin))
    assert "errors" not in body, body
    return body["data"]["me"]


async def test_a_parent_sees_the_children_fully_and_the_other_adults_masked(gql, token_for, family):
    # given a family of five
    head = family.head
    spouse = family.spouse
    first = family.first
    second = family.second
    grandmother = family.grandmother

    # when the head opens the wallet
    me = await wallet(gql, token_for, head.iin)

    # then children show in full, the spouse and grandmother by name with masked IINs
    by_id = {int(m["personId"]): m for m in me["family"]["members"]}
    assert set(by_id) == {head.id, spouse.id, first.id, second.id, grandmother.id}
    assert by_id[head.id]["iin"] == head.iin and by_id[head.id]["isCaller"]
    assert by_id[first.id]["iin"] == first.iin and by_id[first.id]["birthDate"]
    assert by_id[first.id]["visibility"] == "FULL"
    for adult in (spouse, grandmother):
        shown = by_id[adult.id]
        assert shown["iin"] == f"{adult.iin[:2]}********{adult.iin[-2:]}"
        assert shown["birthDate"] is None and shown["visibility"] == "NAME_MASKED_IIN"
    assert me["person"] == {
        "personId": str(head.id), "firstName": head.first_name, "iin": head.iin,
        "visibility": "FULL", "isCaller": True,
    }  # fmt: skip


async def test_entitlements_cover_the_caller_the_children_and_the_family_with_reasons(
    gql, token_for, family
):
    # given the head of a family with two pupils
    head = family.head
    first = family.first
    second = family.second

    # when the head reads the entitlements
    me = await wallet(gql, token_for, head.iin)
    nodes = [e["node"] for e in me["entitlements"]["edges"]]

    # then only the head's, the children's and family-level programmes appear
    persons = {n["personId"] for n in nodes}
    assert persons == {str(head.id), str(first.id), str(second.id), None}
    # and the first pupil's school meals are eligible, with every reason passed and a reference
    meals = next(
        n for n in nodes if n["programme"] == "SCHOOL_MEALS" and n["personId"] == str(first.id)
    )
    assert meals["status"] == "ELIGIBLE" and meals["statusTitle"] == "имеет право"
    assert meals["title"] == "бесплатное школьное питание"
    assert meals["reasons"] and all(r["passed"] for r in meals["reasons"])
    assert "Law of the RK" in meals["reference"]
    # and a refused programme says which condition failed, with values
    large = next(n for n in nodes if n["programme"] == "LARGE_FAMILY")
    assert large["status"] == "NOT_ELIGIBLE"
    (children,) = large["reasons"]
    assert children["passed"] is False and children["value"] == "2" and children["threshold"] == "4"
    assert children["text"].endswith("— не выполнено")
    # and eligible programmes come before refused ones
    statuses = [n["status"] for n in nodes]
    assert statuses == sorted(
        statuses, key=["RECEIVING", "OFFERED", "ELIGIBLE", "NOT_ELIGIBLE"].index
    )


async def test_another_adult_sees_no_one_else_entitlements_and_children_only_by_name(
    gql, token_for, family
):
    # given the grandmother (not a parent)
    grandmother = family.grandmother

    # when she opens the wallet
    me = await wallet(gql, token_for, grandmother.iin)

    # then everyone else is a name and a masked IIN, and only her own and family programmes show
    others = [m for m in me["family"]["members"] if not m["isCaller"]]
    assert len(others) == 4 and all(m["visibility"] == "NAME_MASKED_IIN" for m in others)
    assert all(m["birthDate"] is None and "********" in m["iin"] for m in others)
    persons = {e["node"]["personId"] for e in me["entitlements"]["edges"]}
    assert persons == {str(grandmother.id), None}
    # and her spending view folds the members she cannot see into the null line
    spending = me["spending"]
    assert {m["personId"] for m in spending["byMember"]} == {str(grandmother.id), None}
    assert sum(m["amountTiyn"] for m in spending["byMember"]) == spending["totalTiyn"]
    # and she sees her own payment only
    assert [p["node"]["amountTiyn"] for p in me["payments"]["edges"]] == [1_000_000]


async def test_a_child_sees_themself_and_the_parents_names_only(gql, token_for, family):
    # given the first pupil has an eGov account
    head = family.head
    spouse = family.spouse
    first = family.first

    # when the child opens the wallet
    me = await wallet(gql, token_for, first.iin)

    # then the parents appear by name without IINs, siblings and grandmother not at all
    shown = {int(m["personId"]): m for m in me["family"]["members"]}
    assert set(shown) == {first.id, head.id, spouse.id}
    assert shown[head.id]["iin"] is None and shown[head.id]["visibility"] == "NAME_ONLY"
    assert shown[first.id]["iin"] == first.iin


async def test_spending_adds_up_and_payments_come_from_the_ledger(gql, token_for, family):
    # given benefit payments and a meal posted to the ledger
    head = family.head

    # when the head reads this year's spending
    me = await wallet(gql, token_for, head.iin)
    spending = me["spending"]

    # then the totals agree every way and the meal is counted
    assert spending["totalTiyn"] == 4_000_000 + 1_000_000 + 98_000
    for breakdown in ("byCategory", "byMember", "byMonth"):
        assert sum(t["amountTiyn"] for t in spending[breakdown]) == spending["totalTiyn"]
    categories = {c["category"]: c for c in spending["byCategory"]}
    assert categories["CASH_BENEFITS"]["amountTiyn"] == 5_000_000
    assert categories["SCHOOL_MEALS"]["title"] == "школьное питание"
    assert {s["reason"]: s["count"] for s in spending["services"]}["MEAL_SERVED"] == 1
    # and the grandmother's payment is folded, not itemised, for the head
    by_member = {m["personId"]: m["amountTiyn"] for m in spending["byMember"]}
    assert by_member[str(head.id)] == 4_000_000 and by_member[None] == 1_000_000
    payments = [p["node"] for p in me["payments"]["edges"]]
    assert [(p["programme"], p["amountTiyn"], p["reversed"]) for p in payments] == [
        ("ASP", 4_000_000, False)
    ]


async def test_another_familys_data_is_never_visible(gql, token_for, family, session):
    # given a second family with its own spending
    rows = family.rows
    _, (other_head, *_rest) = await add_family(session, household(1))
    await pay_benefit(session, tid="other-asp", person=other_head, amount=777_000)
    await session.commit()

    # when the other family's head opens the wallet
    me = await wallet(gql, token_for, other_head.iin)

    # then nothing of the first family appears anywhere
    first_ids = {str(r.id) for r in rows}
    assert {m["personId"] for m in me["family"]["members"]}.isdisjoint(first_ids)
    assert {e["node"]["personId"] for e in me["entitlements"]["edges"]}.isdisjoint(first_ids)
    assert me["spending"]["totalTiyn"] == 777_000
    assert [p["node"]["amountTiyn"] for p in me["payments"]["edges"]] == [777_000]
    first_iins = {r.iin for r in rows}
    assert not any(iin in str(me) for iin in first_iins)


@pytest.mark.parametrize(
    ("header", "argument", "language", "level_word"),
    [
        ("kk-KZ,kk;q=0.9", None, "KK", {"тұрақты", "қанағаттанарлық", "тұрақсыз", "дағдарыс қаупі", "дағдарыс"}),
        ("en-US,en;q=0.9", None, "EN", {"stable", "satisfactory", "unstable", "at risk of crisis", "crisis"}),
        (None, None, "RU", {"стабильный", "удовлетворительный", "неустойчивый", "риск кризиса", "кризисный"}),
        ("en", "KK", "KK", {"тұрақты", "қанағаттанарлық", "тұрақсыз", "дағдарыс қаупі", "дағдарыс"}),
    ],
)  # fmt: skip
async def test_texts_follow_accept_language_unless_the_query_names_a_language(
    client, token_for, family, header, argument, language, level_word
):
    # given the head's token and an Accept-Language header (or none)
    head = family.head
    headers = {"authorization": f"Bearer {token_for(Role.CITIZEN, head.iin)}"}
    if header:
        headers["accept-language"] = header

    # when the wallet is read, with or without an explicit language
    response = await client.post(
        "/graphql", json={"query": TITLES, "variables": {"l": argument}}, headers=headers
    )

    # then the texts are in the chosen language
    me = response.json()["data"]["me"]
    assert me["language"] == language
    assert me["welfare"]["levelTitle"] in level_word


async def test_reasons_are_written_in_the_negotiated_language(client, token_for, family):
    # given the head asks in Kazakh
    head = family.head
    headers = {"authorization": f"Bearer {token_for(Role.CITIZEN, head.iin)}",
               "accept-language": "kk"}  # fmt: skip

    # when the entitlements are read
    response = await client.post(
        "/graphql", json={"query": WALLET, "variables": {"year": YEAR}}, headers=headers
    )

    # then titles, statuses, reasons and welfare explanations are Kazakh
    me = response.json()["data"]["me"]
    large = next(
        e["node"] for e in me["entitlements"]["edges"] if e["node"]["programme"] == "LARGE_FAMILY"
    )
    assert large["title"] == "көпбалалы отбасыларға жәрдемақы"
    assert large["statusTitle"] == "құқығы жоқ"
    assert large["reasons"][0]["text"].endswith("— орындалмады")
    assert "ұпай" in me["welfare"]["criteria"][0]["explanation"]
    assert [c["criterion"] for c in me["welfare"]["criteria"]] == [
        "economic", "health", "housing", "social", "education"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("role", "subject"),
    [(Role.OPERATOR, "op-1"), (Role.SCHOOL, "5c0001a0-0000-4000-8000-000000000001")],
)
async def test_a_non_citizen_gets_null_wallet_fields(gql, token_for, role, subject):
    # when an operator or a school asks for the wallet fields
    body = await gql(NON_CITIZEN, token=token_for(role, subject))

    # then they are null, without an error
    assert "errors" not in body
    me = body["data"]["me"]
    assert me["subject"] == subject
    for name in (
        "person",
        "family",
        "welfare",
        "entitlements",
        "spending",
        "payments",
        "offers",
        "notifications",
    ):
        assert me[name] is None


async def test_a_citizen_not_in_the_registry_gets_null_wallet_fields(gql, token_for):
    body = await gql(NON_CITIZEN, token=token_for(Role.CITIZEN, "900101300126"))
    assert "errors" not in body
    assert body["data"]["me"]["family"] is None and body["data"]["me"]["spending"] is None


async def test_a_month_out_of_range_is_refused(gql, token_for, family):
    head = family.head
    body = await gql(SPENDING_MONTH, {"m": 13}, token=token_for(Role.CITIZEN, head.iin))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_page_larger_than_the_limit_is_the_clients_error(gql, token_for, family):
    body = await gql(
        "{ me { entitlements(first: 101) { edges { node { id } } } } }",
        token=token_for(Role.CITIZEN, family.head.iin),
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # (in Russian: the request sends no Accept-Language)
    assert body["errors"][0]["message"] == "first должно быть в пределах 0..100."


def count_statements(engine):
    """A list that grows by one for every SQL statement the engine sends."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return seen, lambda: event.remove(engine.sync_engine, "before_cursor_execute", before)


async def test_the_wallet_costs_the_same_statements_for_one_member_and_twelve(
    gql, token_for, session, engine
):
    # given a single person and a family of twelve, both with spending
    await open_books(session)
    _, (alone,) = await add_family(
        session, [Member("head", "Жалғыз", date(1970, 1, 1), "M", {"insured": True})]
    )
    _, big = await add_family(session, household(10))
    assert len(big) == 12
    for n, person in enumerate([alone, *big]):
        await pay_benefit(session, tid=f"count-{n}", person=person, amount=10_000 + n)
    await session.commit()

    # when each opens the whole wallet
    counts = []
    for person in (alone, big[0]):
        seen, stop = count_statements(engine)
        try:
            me = await wallet(gql, token_for, person.iin)
        finally:
            stop()
        counts.append((len(seen), sum(s.lstrip().upper().startswith("SELECT") for s in seen)))
        assert me["spending"]["totalTiyn"] > 0

    # then both cost the same statements: one read of the household (caller, family, members),
    # one each of the spending lines, the payments, the offers (read once for the offers and
    # for the entitlements' statuses), the notifications and the vouchers, whatever the
    # family's size (the rest are the test harness's savepoints around each session)
    assert counts[0] == counts[1], counts
    assert counts[0][1] == 6, counts


PAGE = """
query Page($after: String) {
  me { entitlements(first: 100, after: $after) {
    edges { node { programme personId } }
    pageInfo { hasNextPage endCursor }
  } }
}
"""


async def test_a_large_familys_entitlements_come_in_pages(gql, token_for, session):
    # given a parent of ten children
    _, (head, *rest) = await add_family(session, household(10))
    await session.commit()
    token = token_for(Role.CITIZEN, head.iin)

    # when the entitlements are read a page at a time
    first = (await gql(PAGE, {"after": None}, token=token))["data"]["me"]["entitlements"]
    second = (await gql(PAGE, {"after": first["pageInfo"]["endCursor"]}, token=token))["data"][
        "me"
    ]["entitlements"]

    # then the pages hold every programme of the head and the children, once
    assert first["pageInfo"]["hasNextPage"] and not second["pageInfo"]["hasNextPage"]
    keys = [
        (e["node"]["programme"], e["node"]["personId"]) for e in first["edges"] + second["edges"]
    ]
    assert len(keys) == len(set(keys)) > 100
    assert {person for _, person in keys} == {str(p.id) for p in (head, *rest[1:])} | {None}
