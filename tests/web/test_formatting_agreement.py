"""One form of money and dates for a reader, whoever writes it (issue 16, item 4): the web
client's `money()` and `date()` (app/web/i18n.js) give, character for character, what the
server's `familymap.i18n.money` and `day` give, which are the definition, over a table of
amounts and days in kk, ru and en.

The client runs twice: under node (always; node is part of the toolchain, `make api-tools`),
and in Chromium (where the reader sees it: a browser's ICU is not node's), like the other
browser tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from familymap.i18n import LANGUAGES, day, money

ROOT = Path(__file__).resolve().parents[2]
CLIENT_I18N = ROOT / "app" / "web" / "i18n.js"

# Whole tenge and tiyn; one tiyn, zero, negatives (a reversal); thousands, millions, the
# largest amount a JavaScript number still holds exactly in tiyn.
AMOUNTS = [
    0, 1, 99, 100, 150, 1_000_00, 12_975_50, 12_800_000, 14_220_000, 4_678_710, 100_000_000_00,
    -1, -12_975_50, -12_800_000, 9_007_199_254_740_991,
]  # fmt: skip
DAYS = [
    date(2026, 11, 18),
    date(2026, 1, 1),
    date(1997, 11, 18),
    date(2027, 5, 9),
    date(2026, 12, 31),
]

# The server's own form, written out: the table the client is held to is not only "whatever
# Babel says today" (a no-break space U+00A0 groups and precedes ₸ in kk and ru; U+202F
# before the year's mark).
EXPECTED = {
    ("kk", 12_800_000): "128\xa0000\xa0₸",
    ("ru", 12_975_50): "12\xa0975,50\xa0₸",
    ("en", 12_800_000): "₸128,000",
    ("en", -12_975_50): "-₸12,975.50",
    ("kk", date(2026, 11, 18)): "2026\u202fж. 18 қараша",
    ("ru", date(2026, 11, 18)): "18 ноября 2026\u202fг.",
    ("en", date(2026, 11, 18)): "November 18, 2026",
}

# Runs the client's module with what it needs of a browser: localStorage and a document.
NODE_SCRIPT = """
globalThis.localStorage = { getItem: () => null, setItem: () => {} };
globalThis.document = { documentElement: {}, getElementById: () => null };
const i18n = await import(process.argv[1]);
const { amounts, days, languages } = JSON.parse(process.argv[2]);
const out = {};
for (const lang of languages) {
  i18n.setLanguage(lang);
  out[lang] = { money: amounts.map(i18n.money), date: days.map(i18n.date) };
}
console.log(JSON.stringify(out));
"""

BROWSER_SCRIPT = """
async ({ amounts, days, languages }) => {
  const i18n = await import("/app/i18n.js");
  const out = {};
  for (const lang of languages) {
    i18n.setLanguage(lang);
    out[lang] = { money: amounts.map(i18n.money), date: days.map(i18n.date) };
  }
  return out;
}
"""


def table() -> dict:
    return {
        "amounts": AMOUNTS,
        "days": [d.isoformat() for d in DAYS],
        "languages": list(LANGUAGES),
    }


def servers_forms() -> dict[str, dict[str, list[str]]]:
    return {
        lang: {
            "money": [money(amount, lang) for amount in AMOUNTS],
            "date": [day(d, lang) for d in DAYS],
        }
        for lang in LANGUAGES
    }


def differences(client: dict, server: dict) -> list[str]:
    found = []
    for lang in LANGUAGES:
        for kind, inputs in (("money", AMOUNTS), ("date", DAYS)):
            for given, theirs, ours in zip(
                inputs, client[lang][kind], server[lang][kind], strict=True
            ):
                if theirs != ours:
                    found.append(f"{lang} {kind} {given}: client {theirs!r}, server {ours!r}")
    return found


def test_the_servers_forms_are_the_ones_written_down():
    server = servers_forms()
    for (lang, given), expected in EXPECTED.items():
        kind, index = (
            ("date", DAYS.index(given))
            if isinstance(given, date)
            else ("money", AMOUNTS.index(given))
        )
        assert server[lang][kind][index] == expected


def test_the_client_under_node_writes_money_and_dates_as_the_server_does():
    node = shutil.which("node")
    assert node is not None, "node is part of the toolchain (make api-tools); install nodejs"
    done = subprocess.run(  # noqa: S603 - our own script and module, fixed arguments
        [node, "--input-type=module", "-e", NODE_SCRIPT, CLIENT_I18N.as_uri(), json.dumps(table())],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    client = json.loads(done.stdout)
    assert differences(client, servers_forms()) == []


def test_the_client_in_chromium_writes_money_and_dates_as_the_server_does(page, live_server):
    page.goto(f"{live_server.url}/app/")
    client = page.evaluate(BROWSER_SCRIPT, table())
    assert differences(client, servers_forms()) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_amount_and_day_has_one_form_per_language(language):
    # Distinct inputs never collapse into one text (a rounding rule that lost tiyn would).
    server = servers_forms()[language]
    assert len(set(server["money"])) == len(AMOUNTS)
    assert len(set(server["date"])) == len(DAYS)
