"""The languages the wallet speaks (Kazakh, Russian, English) and the names of programmes.

Russian is the default: it is what the state's own systems fall back to, and every person's
registry record has a language, `ru` unless they chose `kk`. A client's `Accept-Language`
picks among the three with Babel's negotiation (`negotiate`), so `kk-KZ` and `ru;q=0.8` work
as a browser sends them.

Texts live here as plain dictionaries keyed by language: the catalog is small, reviewed with
the code, and a test checks every key has all three languages.
"""

from __future__ import annotations

from babel import Locale

LANGUAGES = ("kk", "ru", "en")
DEFAULT_LANGUAGE = "ru"

Texts = dict[str, str]

# What each programme is called in a message to a citizen: short, plain, in the words the
# state's own notices use.
PROGRAMME_TITLES: dict[str, Texts] = {
    "LOSS_OF_WORKING_CAPACITY": {
        "kk": "еңбекке қабілеттілігін жоғалтқаны үшін әлеуметтік төлем",
        "ru": "социальная выплата по утрате трудоспособности",
        "en": "social payment for loss of working capacity",
    },
    "JOB_LOSS": {
        "kk": "жұмысынан айырылғаны үшін әлеуметтік төлем",
        "ru": "социальная выплата по потере работы",
        "en": "social payment for loss of job",
    },
    "LOSS_OF_BREADWINNER": {
        "kk": "асыраушысынан айырылғаны үшін әлеуметтік төлем",
        "ru": "социальная выплата по потере кормильца",
        "en": "social payment for loss of breadwinner",
    },
    "BIRTH_BENEFIT": {
        "kk": "бала тууына байланысты біржолғы жәрдемақы",
        "ru": "единовременное пособие на рождение ребёнка",
        "en": "one-time benefit at the birth of a child",
    },
    "CHILDCARE_TO_1_5": {
        "kk": "бала бір жарым жасқа толғанға дейін күтіміне арналған жәрдемақы",
        "ru": "пособие по уходу за ребёнком до 1,5 лет",
        "en": "childcare benefit until the child is 1.5 years old",
    },
    "DISABLED_CHILD_CARER": {
        "kk": "мүгедектігі бар баланы тәрбиелеп отырған ата-анаға жәрдемақы",
        "ru": "пособие воспитывающему ребёнка с инвалидностью",
        "en": "benefit to a parent raising a child with a disability",
    },
    "DISABILITY_BENEFIT": {
        "kk": "мүгедектігі бойынша жәрдемақы",
        "ru": "пособие по инвалидности",
        "en": "disability benefit",
    },
    "LARGE_FAMILY": {
        "kk": "көпбалалы отбасыларға жәрдемақы",
        "ru": "пособие многодетным семьям",
        "en": "benefit to large families",
    },
    "MOTHER_AWARD": {
        "kk": "«Алтын алқа», «Күміс алқа» алқаларымен марапатталған аналарға жәрдемақы",
        "ru": "пособие матерям, награждённым подвесками «Алтын алқа», «Күміс алқа»",
        "en": "benefit to mothers awarded 'Altyn alqa' or 'Kumis alqa'",
    },
    "ASP": {
        "kk": "атаулы әлеуметтік көмек",
        "ru": "адресная социальная помощь",
        "en": "targeted social assistance",
    },
    "FUNERAL_PAYMENT": {
        "kk": "жерлеуге біржолғы төлем",
        "ru": "единовременная выплата на погребение",
        "en": "one-time funeral payment",
    },
    "SCHOOL_MEALS": {
        "kk": "мектепте тегін тамақтану",
        "ru": "бесплатное школьное питание",
        "en": "free school meals",
    },
    "MEDICINES": {
        "kk": "тегін дәрі-дәрмекпен қамтамасыз ету",
        "ru": "бесплатное лекарственное обеспечение",
        "en": "free medicines",
    },
    "PENSION_AGE_NOTICE": {
        "kk": "зейнеткерлік жасқа толу",
        "ru": "достижение пенсионного возраста",
        "en": "reaching pension age",
    },
    "KANDAS_EXPIRY_NOTICE": {
        "kk": "қандас мәртебесінің мерзімі аяқталуы",
        "ru": "окончание срока статуса кандаса",
        "en": "kandas status expiring",
    },
    "KANDAS_STATUS_NOTICE": {
        "kk": "қандас мәртебесі берілді немесе ұзартылды",
        "ru": "статус кандаса присвоен или продлён",
        "en": "kandas status granted or extended",
    },
    "EMPLOYMENT_MEASURES_NOTICE": {
        "kk": "жұмыспен қамту шаралары",
        "ru": "меры содействия занятости",
        "en": "employment support measures",
    },
}


def language_of(value: str | None) -> str:
    """One of LANGUAGES for a stored or requested language code; the default otherwise."""
    code = (value or "").split("-")[0].split("_")[0].lower()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def negotiate(accept_language: str | None) -> str:
    """The best of LANGUAGES for an `Accept-Language` header, by Babel; default ru."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    preferred: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and weight > 0:
            # Stable order for equal weights: earlier in the header wins.
            preferred.append((-weight + position * 1e-6, tag.replace("-", "_")))
    tags = [tag for _, tag in sorted(preferred)]
    found = Locale.negotiate(tags, list(LANGUAGES), sep="_")
    return found.language if found is not None else DEFAULT_LANGUAGE


def programme_title(programme: str, language: str) -> str:
    """The programme's name in `language` (its code if the catalog lacks it)."""
    titles = PROGRAMME_TITLES.get(programme)
    return titles[language_of(language)] if titles else programme
