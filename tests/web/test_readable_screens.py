"""What the client shows is for people (issue 16, items 5-7): no raw codes, ISO dates,
English refusals or ledger names on any screen, in kk, ru and en; entitlements grouped by
whose they are; a meal QR code that counts down and renews itself; feedback stars that start
empty; back to sign-in when the token is refused; empty screens that say what will come; the
pharmacy's drug by name; the tabs on a 412 px phone."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest

from tests.web.test_client import fits_the_phone, open_screen, token_subject

LANGUAGES = ["kk", "ru", "en"]
CITIZEN_TABS = ["family", "entitlements", "offers", "spending", "meals", "medicines", "access"]

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
CODE = re.compile(
    r"\b(?:[A-Z]{2,}(?:_[A-Z0-9]+)+|OFFERED|ACCEPTED|DECLINED|EXPIRED|ASSIGNED|PAID|WITHDRAWN"
    r"|RECEIVING|ELIGIBLE|CITIZEN|OPERATOR|SCHOOL|PHARMACY|BREAKFAST|LUNCH|ERROR)\b"
)
LEDGER_NAME = re.compile(r"\b(?:person|programme|merchant|purpose_wallet):\w")
ROLE_WORD = re.compile(r"\b(?:head|spouse|child|dependant)\b")
TWELVE_HOUR = re.compile(r"\b(?:AM|PM)\b")


def raw_bits(text: str, language: str) -> list[str]:
    """The codes and internals on screen that a person should never see."""
    found = ISO_DATE.findall(text) + CODE.findall(text) + LEDGER_NAME.findall(text)
    if language != "en":
        found += ROLE_WORD.findall(text) + TWELVE_HOUR.findall(text)
    return found


def sign_in_as(page, live_server, who: str, language: str) -> None:
    """who: "citizen:<n>", "school" or "pharmacy"; the UI in `language` from the start."""
    page.goto(f"{live_server.url}/app/")
    page.evaluate(f"localStorage.setItem('sw.lang', '{language}')")
    page.evaluate("sessionStorage.removeItem('sw.token')")
    page.reload()
    if who.startswith("citizen:"):
        page.click(f"[data-citizen='{who.split(':')[1]}']")
    else:
        page.click(f"[data-role='{who}']")
    page.wait_for_selector("[data-screen-view]")


def screen_text(page) -> str:
    return page.locator("#view").inner_text() + page.locator("#nav").inner_text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_raw_codes_dates_or_internals_on_any_citizen_screen(page, live_server, language):
    for citizen in ("citizen:0", "citizen:1"):
        # given
        sign_in_as(page, live_server, citizen, language)
        for tab in CITIZEN_TABS:
            # when every screen is open, with its folded parts unfolded and a QR code shown
            open_screen(page, tab)
            page.locator("#view details").evaluate_all("all => all.forEach(d => (d.open = true))")
            if tab == "meals" and page.locator("[data-show-qr]").count():
                page.locator("[data-show-qr]").first.click()
                page.wait_for_selector("[data-qr-countdown]")
            # then
            assert raw_bits(screen_text(page), language) == [], (citizen, tab)


FAMILY_ROLES = {
    "kk": ["отбасы басшысы", "жұбайы", "бала"],
    "ru": ["глава семьи", "супруг(а)", "ребёнок"],
    "en": ["head of the family", "spouse", "child"],
}
ANSWER_BY = {"kk": "Жауап беру мерзімі", "ru": "Ответить до", "en": "Answer by"}
AWAITING = {"kk": "жауап күтілуде", "ru": "ждёт ответа", "en": "awaiting your answer"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_roles_states_and_dates_read_in_the_uis_language(page, live_server, language):
    # given the newborn's mother
    sign_in_as(page, live_server, "citizen:0", language)
    # then her family's roles are words, and the dates are the language's own
    roles = page.locator("[data-members] [data-role]").all_inner_texts()
    assert [r.split(" · ")[0] for r in roles] == FAMILY_ROLES[language]
    born = {
        "kk": "1997\u202fж. 18 қараша",
        "ru": "18 ноября 1997\u202fг.",
        "en": "November 18, 1997",
    }
    assert roles[0].endswith(born[language])  # 29 years before the pinned clock's day
    # and an offer's state is a word, its deadline a date in words
    open_screen(page, "offers")
    offer = page.locator("[data-state='OFFERED']").first
    assert offer.locator("[data-offer-state]").inner_text() == AWAITING[language]
    deadline = offer.locator("p.muted").inner_text()
    assert deadline.startswith(ANSWER_BY[language])
    assert re.search(r"\d{4}", deadline) and not ISO_DATE.search(deadline)


ALREADY_SERVED = {
    "kk": "Бұл балаға бұл тамақ бүгін берілген.",
    "ru": "Этот приём пищи ребёнку сегодня уже выдан.",
    "en": "This child has already had this meal today.",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_canteen_shows_a_refusal_as_a_sentence_in_its_language(page, live_server, language):
    # given the canteen served a pupil's breakfast today
    sign_in_as(page, live_server, "school", language)
    page.select_option("#meal-type", "BREAKFAST")
    serve = page.locator("[data-serve-pupil]").first
    serve.click()
    page.wait_for_selector("[data-redeem-status] .message")
    # when it serves the same pupil's breakfast again
    page.evaluate("document.querySelector('[data-redeem-status]').replaceChildren()")
    serve.click()
    # then the refusal is a sentence in the canteen's language, with no code on screen
    refused = page.wait_for_selector("[data-redeem-status] .message.error")
    assert refused.get_attribute("data-code") == "ALREADY_REDEEMED"
    assert refused.inner_text() == ALREADY_SERVED[language]
    assert raw_bits(screen_text(page), language) == []


RECORD_PRESCRIPTION = """
mutation Rx($input: PrescriptionInput!) { recordPrescription(input: $input) { __typename } }
"""
NO_VOUCHER = {"kk": "Ваучер жоқ.", "ru": "Ваучера нет.", "en": "There is no voucher."}
METFORMIN = {"kk": "Метформин (A10BA02)", "ru": "Метформин (A10BA02)", "en": "Metformin (A10BA02)"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pharmacy_shows_the_drug_by_name_and_no_ledger_names(page, live_server, language):
    # given the demo prescription (app/demo.py), and one for a patient with no medicines voucher
    citizen_iin = token_subject(live_server.dev_tokens()["citizens"][0]["token"])
    source = live_server.mint("SOURCE_SYSTEM", "damumed-web-test")
    recorded = httpx.post(
        f"{live_server.url}/graphql",
        json={"query": RECORD_PRESCRIPTION, "variables": {"input": {
            "externalId": "RX-WEB-NO-FUNDS", "patientIin": citizen_iin, "drugCode": "C09AA02",
            "quantity": 2, "unitPriceTiyn": 90_000, "validUntil": "2099-12-31",
            "prescribingOrg": "Polyclinic 1"}}},
        headers={"authorization": f"Bearer {source}"},
        timeout=30,
    ).json()  # fmt: skip
    assert recorded["data"]["recordPrescription"]["__typename"] == "PrescriptionRecorded"
    sign_in_as(page, live_server, "pharmacy", language)
    # when the pharmacist finds the demo prescription
    page.fill("#rx-prescription", "RX-DEMO-0001")
    page.click("[data-find]")
    # then the drug is named, with its code filled in for dispensing
    found = page.wait_for_selector("[data-prescription] .message.ok")
    assert METFORMIN[language] in found.inner_text()
    assert page.input_value("#rx-drug") == "A10BA02"
    # and a dispensing for a patient without a medicines voucher is refused in words (the
    # refusal is NO_VOUCHER before anything moves), no account names
    page.fill("#rx-prescription", "RX-WEB-NO-FUNDS")
    page.fill("#rx-drug", "C09AA02")
    page.click("[data-dispense]")
    refused = page.wait_for_selector("[data-dispense-status] .message.error")
    assert refused.get_attribute("data-code") == "NO_VOUCHER"
    assert refused.inner_text() == NO_VOUCHER[language]
    assert raw_bits(screen_text(page), language) == []


def test_entitlements_are_grouped_by_person_with_the_eligible_first(page, live_server):
    # given the newborn's mother, whose family has some 30 entitlements, most not eligible
    sign_in_as(page, live_server, "citizen:0", "en")
    # when
    open_screen(page, "entitlements")
    # then one group per person (and one for the whole family), each headed by a name
    groups = page.locator("[data-person]")
    names = groups.locator("h3").all_inner_texts()
    assert len(names) == len(set(names)) >= 3
    assert "The whole family" in names and any("Әли" in name for name in names)
    # the first group is the baby's, with what is due: nothing visible is "not eligible"
    assert "Әли" in names[0]
    visible = page.locator("[data-entitlement]:visible")
    statuses = visible.evaluate_all("all => all.map(e => e.dataset.status)")
    assert statuses and set(statuses) <= {"RECEIVING", "OFFERED", "ELIGIBLE"}
    # no programme twice within a person
    for i in range(groups.count()):
        programmes = (
            groups.nth(i)
            .locator("[data-entitlement]")
            .evaluate_all("all => all.map(e => e.dataset.entitlement)")
        )
        assert len(programmes) == len(set(programmes)), names[i]
    # and "not eligible" is folded, its reasons one tap away
    folded = groups.first.locator("[data-not-eligible]")
    assert folded.get_attribute("open") is None
    assert not folded.locator("[data-entitlement]").first.is_visible()
    folded.locator("summary").click()
    item = folded.locator("[data-entitlement]").first
    assert item.is_visible()
    assert item.get_attribute("data-status") == "NOT_ELIGIBLE"
    assert item.locator(".reasons li.failed").count() >= 1


def test_the_meal_qr_code_counts_down_and_renews_itself(page, live_server):
    # given the large family's mother shows a pupil's meal QR code
    sign_in_as(page, live_server, "citizen:1", "ru")
    open_screen(page, "meals")
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)  # time moves only when told
    page.locator("[data-show-qr]").first.click()
    first = page.wait_for_selector("img[data-qr-token]").get_attribute("data-qr-token")
    countdown = page.locator("[data-qr-countdown]")
    assert countdown.inner_text() == "Действует ещё 60 с"
    # when 20 seconds pass, it counts down
    page.clock.run_for(20_000)
    assert int(countdown.get_attribute("data-seconds")) == 40
    assert countdown.inner_text() == "Действует ещё 40 с"
    # and when the minute is over, a new code replaces it by itself
    page.clock.run_for(41_000)
    page.wait_for_function(
        "old => document.querySelector('img[data-qr-token]')?.dataset.qrToken !== old", arg=first
    )
    assert page.locator("[data-qr-countdown]").get_attribute("data-seconds") == "60"


def test_feedback_stars_start_empty_and_a_rating_must_be_chosen(page, live_server):
    # given a meal served to a pupil of the large family today
    sign_in_as(page, live_server, "school", "en")
    page.locator("[data-serve-pupil]").first.click()
    page.wait_for_selector("[data-redeem-status] .message")
    sign_in_as(page, live_server, "citizen:1", "en")
    open_screen(page, "meals")
    form = page.locator("[data-feedback]").first
    # then no star is chosen beforehand
    assert form.locator("input[type='radio']").count() == 5
    assert form.locator("input[type='radio']:checked").count() == 0
    # and sending without one asks for a rating, sending nothing
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.post_data or "") if r.url.endswith("/graphql") else None
    )
    form.locator("button[type='submit']").click()
    assert form.locator(".message.error").inner_text() == "Choose a rating first."
    assert not any("LeaveFeedback" in body for body in sent)


def bad_token() -> str:
    """A token shaped like ours, naming a citizen, that no issuer signed."""
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'RS256'})}.{part({'sub': '000000000000', 'roles': ['CITIZEN']})}.c2ln"


SESSION_ENDED = {
    "kk": "Сессия аяқталды. Қайта кіріңіз.",
    "ru": "Сеанс завершён. Войдите снова.",
    "en": "Your session has ended. Please sign in again.",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refused_token_leads_back_to_sign_in(page, live_server, language):
    # given a token the server refuses (expired or forged)
    page.goto(f"{live_server.url}/app/")
    page.evaluate(f"localStorage.setItem('sw.lang', '{language}')")
    page.evaluate(f"sessionStorage.setItem('sw.token', '{bad_token()}')")
    # when the client opens
    page.evaluate("location.hash = '#/family'")
    page.reload()
    # then it is back at sign-in, saying why, with the token forgotten
    page.wait_for_selector("[data-citizen]")
    assert page.locator("#view .message.error").first.inner_text() == SESSION_ENDED[language]
    assert page.evaluate("sessionStorage.getItem('sw.token')") is None
    assert page.locator("#nav").is_hidden()


EMPTY = {
    "medicines": {
        "kk": "Дәріханада рецепт бойынша берілген дәрілер осында көрсетіледі.",
        "ru": "Здесь появятся лекарства, выданные вам в аптеке по рецепту.",
        "en": "Medicines a pharmacy dispenses to you on prescription will appear here.",
    },
    "meals": {
        "kk": "Балаңыз мектепте тегін тамақтанатын болса, оның QR-коды осында болады.",
        "ru": "Если ваш ребёнок получает бесплатное питание в школе, его QR-код будет здесь.",
        "en": "When your child has free school meals, their QR code will be here.",
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_empty_screens_say_what_will_appear_there(page, live_server, language):
    # given the newborn's mother: no pupils, no medicines
    sign_in_as(page, live_server, "citizen:0", language)
    for screen, texts in EMPTY.items():
        # when
        open_screen(page, screen)
        # then
        assert page.locator("[data-empty]").inner_text() == texts[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_seven_tabs_fit_a_412px_phone(page, live_server, language):
    # given a 412 px wide phone
    page.set_viewport_size({"width": 412, "height": 915})
    # when a citizen signs in
    sign_in_as(page, live_server, "citizen:1", language)
    # then all seven tabs are on screen, none cut off at the edge, and nothing scrolls sideways
    tabs = page.locator("#nav a")
    assert tabs.count() == 7
    for i in range(7):
        box = tabs.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 412, tabs.nth(i).inner_text()
    assert fits_the_phone(page)
