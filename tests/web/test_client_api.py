"""The API fields the client added for people (issue 16, item 7): a drug's name from its ATC
code in the caller's language, a QR code's validity as a duration, and a demo prescription for
the pharmacy screen to find."""

from __future__ import annotations

from datetime import date

from app.auth import Role
from app.demo import DEMO_PHARMACY_ID, DEMO_PRESCRIPTION_ID, seed_demo
from vouchers.medicines import drug_name

TODAY = date(2026, 11, 18)

FIND = """
query($x: String!) { prescription(externalId: $x) { drugCode drugName remaining expired } }
"""


def test_a_drug_is_named_in_each_language_from_its_atc_code():
    # when / then
    assert drug_name(drug_code="A10BA02", language="kk", on=TODAY) == "Метформин"
    assert drug_name(drug_code="A10BA02", language="en", on=TODAY) == "Metformin"
    assert drug_name(drug_code=" c09aa02 ", language="ru", on=TODAY) == "Эналаприл"
    assert drug_name(drug_code="Z99ZZ99", language="en", on=TODAY) is None


async def test_the_demo_pharmacy_finds_the_demo_prescription_by_name(session, client, token_for):
    # given the demo data
    await seed_demo(session, today=TODAY)
    await session.commit()
    pharmacy = token_for(Role.PHARMACY, str(DEMO_PHARMACY_ID))
    # when the demo pharmacy looks up the demo prescription, in Russian and in English
    answers = {}
    for language in ("ru", "en"):
        response = await client.post(
            "/graphql",
            json={"query": FIND, "variables": {"x": DEMO_PRESCRIPTION_ID}},
            headers={"authorization": f"Bearer {pharmacy}", "accept-language": language},
        )
        answers[language] = response.json()["data"]["prescription"]
    # then it is there to dispense, and the drug has its name in the caller's language
    assert answers["ru"] == {
        "drugCode": "A10BA02", "drugName": "Метформин", "remaining": 3, "expired": False,
    }  # fmt: skip
    assert answers["en"]["drugName"] == "Metformin"
