"""What the wallet says to a citizen about reasons: condition labels, welfare criteria and
their facts, status and category words, each in Kazakh, Russian and English.

The engine's own labels (familymap.rules) are English and written for reviewers of the law;
these are the words a family reads in the app. A condition is looked up as
`<PROGRAMME>.<condition id>` first and then as `<condition id>`, so one id that means the
same in several rules (`alive`, `contributions`) is translated once, and an id that reads
differently in two rules (`under_age`) gets one entry per rule. A test checks that every
condition of every rule, every criterion, fact, level, status and category has all three.

Values are formatted for the reader's language with Babel: money in tenge with the locale's
separators, dates in the locale's medium form, percentages and counts likewise.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from wallet.i18n import Texts, language_of

CONDITION_LABELS: dict[str, Texts] = {
    "alive": {
        "kk": "Адам бағалау күні тірі",
        "ru": "Человек жив на дату оценки",
        "en": "The person is alive on the evaluation date",
    },
    "below_pension_age": {
        "kk": "Зейнет жасына толмаған",
        "ru": "Не достиг пенсионного возраста",
        "en": "Has not reached pension age",
    },
    "contributions": {
        "kk": "Соңғы 24 айдағы әлеуметтік аударымдар төленген айлар",
        "ru": "Месяцы с социальными отчислениями за последние 24",
        "en": "Months with social contributions in the last 24",
    },
    "has_income": {
        "kk": "Төлемді есептеуге арналған сақтандырылған табыс",
        "ru": "Застрахованный доход для расчёта выплаты",
        "en": "An insured income to compute the payment from",
    },
    "capacity_loss": {
        "kk": "Еңбекке қабілеттіліктен айырылу дәрежесі",
        "ru": "Степень утраты трудоспособности",
        "en": "Degree of loss of working capacity",
    },
    "job_lost": {
        "kk": "Жұмыспен қамтылу мәртебесі — «жұмысынан айырылған»",
        "ru": "Статус занятости — «потерял работу»",
        "en": "Employment status is 'job lost'",
    },
    "job_lost_recently": {
        "kk": "Жұмыстан айырылу күні өтініш мерзімі ішінде",
        "ru": "Работа потеряна в пределах срока обращения",
        "en": "The job was lost within the claim window",
    },
    "registered_unemployed": {
        "kk": "Жұмыспен қамту орталығында жұмыссыз ретінде тіркелген",
        "ru": "Зарегистрирован безработным в центре занятости",
        "en": "Registered as unemployed with the employment centre",
    },
    "breadwinner_died": {
        "kk": "Әлеуметтік аударымдар төлеген қайтыс болған мүшелер",
        "ru": "Умершие члены семьи, плательщики социальных отчислений",
        "en": "Deceased members who paid social contributions",
    },
    "dependants": {
        "kk": "Асырауындағы тірі мүшелер (балалар, студенттер, мүгедектігі барлар)",
        "ru": "Живые иждивенцы (дети, студенты, люди с инвалидностью)",
        "en": "Living dependants (children, students, members with a disability)",
    },
    "born_recently": {
        "kk": "Өтініш мерзімі ішінде туған",
        "ru": "Родился в пределах срока обращения",
        "en": "Born within the claim period",
    },
    "is_child": {
        "kk": "Отбасының баласы ретінде тіркелген",
        "ru": "Записан ребёнком в семье",
        "en": "Registered as a child of the family",
    },
    "CHILDCARE_TO_1_5.under_age": {
        "kk": "Бір жарым жасқа толмаған",
        "ru": "Не исполнилось 1,5 года",
        "en": "Has not reached 1.5 years",
    },
    "DISABLED_CHILD_CARER.under_age": {
        "kk": "18 жасқа толмаған",
        "ru": "Не исполнилось 18 лет",
        "en": "Has not reached 18",
    },
    "has_carer": {
        "kk": "Отбасында баланы күтетін тірі ересек бар",
        "ru": "В семье есть взрослый, который ухаживает за ребёнком",
        "en": "The family has a living adult to care for the child",
    },
    "child_with_disability": {
        "kk": "Мүгедектігі бар бала деп танылған",
        "ru": "Признан ребёнком с инвалидностью",
        "en": "Recognised as a child with a disability",
    },
    "disability_group": {
        "kk": "Мүгедектік тобы белгіленген (1, 2 немесе 3)",
        "ru": "Установлена группа инвалидности (1, 2 или 3)",
        "en": "Disability group established (1, 2 or 3)",
    },
    "established": {
        "kk": "Мүгедектік осы күнге дейін белгіленген",
        "ru": "Инвалидность установлена не позднее этой даты",
        "en": "Disability established on or before the date",
    },
    "children": {
        "kk": "18 жасқа дейінгі немесе күндізгі оқудағы 23 жасқа дейінгі балалар",
        "ru": "Дети до 18 лет или до 23 лет на очном обучении",
        "en": "Children under 18, or under 23 in full-time study",
    },
    "award": {
        "kk": "«Алтын алқа» немесе «Күміс алқа» алқасы бар",
        "ru": "Награждена подвеской «Алтын алқа» или «Күміс алқа»",
        "en": "Holds the 'Altyn alqa' or 'Kumis alqa' pendant",
    },
    "is_mother": {"kk": "Әйел", "ru": "Женщина", "en": "Is a woman"},
    "per_capita_income": {
        "kk": "Тірі мүшелердің жан басына шаққандағы айлық табысы",
        "ru": "Среднедушевой месячный доход живых членов семьи",
        "en": "Per-capita monthly income of the living members",
    },
    "members": {
        "kk": "Отбасындағы тірі мүшелер",
        "ru": "Живые члены семьи",
        "en": "Living members in the family",
    },
    "no_idle_able_bodied": {
        "kk": "Жұмыс істемейтін және тіркелмеген еңбекке қабілетті мүшелер",
        "ru": "Трудоспособные члены семьи без работы и без регистрации",
        "en": "Able-bodied working-age members who are idle (not registered)",
    },
    "died_recently": {
        "kk": "Өтініш мерзімі ішінде қайтыс болған",
        "ru": "Умер в пределах срока обращения",
        "en": "Died within the claim period",
    },
    "pensioner_or_disabled": {
        "kk": "Қайтыс болғанда зейнет жасында болған немесе мүгедектігі болған",
        "ru": "На момент смерти был пенсионного возраста или имел инвалидность",
        "en": "Had reached pension age by death, or had a disability",
    },
    "survivors": {
        "kk": "Төлемді алатын отбасының тірі мүшелері",
        "ru": "Живые члены семьи, которые получат выплату",
        "en": "Living members left in the family to receive it",
    },
    "in_school": {
        "kk": "Жалпы білім беретін мектепте оқиды (сынып)",
        "ru": "Учится в общеобразовательной школе (класс)",
        "en": "Enrolled in a general school grade",
    },
    "school_calendar": {
        "kk": "Оқу жылының жарияланған күнтізбесіндегі оқу күндері",
        "ru": "Учебные дни в опубликованном календаре учебного года",
        "en": "School days in the school year's published calendar",
    },
    "priority_group": {
        "kk": "Бастауыш сынып немесе отбасы АӘК не көпбалалы жәрдемақы алады",
        "ru": "Начальные классы, или семья получает АСП либо пособие многодетным",
        "en": "Primary grade, or the family receives ASP or the large-family benefit",
    },
    "chronic_conditions": {
        "kk": "Тіркелген созылмалы аурулар",
        "ru": "Хронические заболевания на учёте",
        "en": "Chronic conditions on record",
    },
    "polyclinic_attached": {
        "kk": "Емханаға бекітілген",
        "ru": "Прикреплён к поликлинике",
        "en": "Attached to a polyclinic",
    },
    "insured": {
        "kk": "Міндетті әлеуметтік медициналық сақтандырумен қамтылған",
        "ru": "Застрахован в системе ОСМС",
        "en": "Covered by compulsory social health insurance",
    },
    "reaches_by_window_end": {
        "kk": "Хабарлама мерзімінің соңына дейін зейнет жасына толады",
        "ru": "Достигнет пенсионного возраста до конца срока уведомления",
        "en": "Reaches pension age by the end of the notice window",
    },
    "not_reached_before_window": {
        "kk": "Хабарлама мерзіміне дейін зейнет жасына толмаған",
        "ru": "Не достиг пенсионного возраста до срока уведомления",
        "en": "Had not reached pension age before the notice window",
    },
    "kandas_active": {
        "kk": "Қандас мәртебесі осы күні жарамды",
        "ru": "Статус кандаса действует на эту дату",
        "en": "Kandas status valid on the date",
    },
    "expires_soon": {
        "kk": "Қандас мәртебесінің мерзімі жақында аяқталады",
        "ru": "Статус кандаса скоро истекает",
        "en": "Kandas status expires within the lead window",
    },
    "working_age": {
        "kk": "Ең төменгі еңбек жасына толған",
        "ru": "Достиг минимального трудового возраста",
        "en": "Has reached the minimum working age",
    },
}

# How a value compares with the threshold, in words: "required: at least 6".
OPERATORS: dict[str, Texts] = {
    ">=": {"kk": "кемінде", "ru": "не менее", "en": "at least"},
    ">": {"kk": "артық", "ru": "больше", "en": "more than"},
    "<": {"kk": "кем", "ru": "меньше", "en": "less than"},
    "<=": {"kk": "аспайды", "ru": "не более", "en": "at most"},
    "==": {"kk": "тең", "ru": "равно", "en": "equal to"},
    "in": {"kk": "бірі", "ru": "одно из", "en": "one of"},
    "none or >": {"kk": "жоқ немесе кейін", "ru": "нет или позже", "en": "none, or after"},
    "none or <=": {
        "kk": "жоқ немесе кешіктірмей",
        "ru": "нет или не позднее",
        "en": "none, or on or before",
    },
}
# Dates read better with "after" / "on or before" than with "more than" / "at most".
DATE_OPERATORS: dict[str, Texts] = {
    ">=": {"kk": "ерте емес", "ru": "не ранее", "en": "on or after"},
    ">": {"kk": "кейін", "ru": "позже", "en": "after"},
    "<": {"kk": "бұрын", "ru": "раньше", "en": "before"},
    "<=": {"kk": "кешіктірмей", "ru": "не позднее", "en": "on or before"},
}
VERDICTS: dict[str, Texts] = {
    "passed": {"kk": "орындалды", "ru": "выполнено", "en": "met"},
    "failed": {"kk": "орындалмады", "ru": "не выполнено", "en": "not met"},
}
REASON_TEMPLATE: Texts = {
    "kk": "{label}: {value} (талап: {op} {threshold}) — {verdict}",
    "ru": "{label}: {value} (требуется: {op} {threshold}) — {verdict}",
    "en": "{label}: {value} (required: {op} {threshold}) — {verdict}",
}
WORDS: dict[str, Texts] = {
    "yes": {"kk": "иә", "ru": "да", "en": "yes"},
    "no": {"kk": "жоқ", "ru": "нет", "en": "no"},
    "none": {"kk": "жоқ", "ru": "нет", "en": "none"},
    # Enumeration values a condition may show.
    "employed": {"kk": "жұмыс істейді", "ru": "работает", "en": "employed"},
    "unemployed": {"kk": "жұмыссыз", "ru": "безработный", "en": "unemployed"},
    "job_lost": {"kk": "жұмысынан айырылған", "ru": "потерял работу", "en": "job lost"},
    "not_in_labour_force": {
        "kk": "жұмыс күшінің құрамында емес",
        "ru": "вне рабочей силы",
        "en": "not in the labour force",
    },
    "altyn_alqa": {"kk": "«Алтын алқа»", "ru": "«Алтын алқа»", "en": "'Altyn alqa'"},
    "kumis_alqa": {"kk": "«Күміс алқа»", "ru": "«Күміс алқа»", "en": "'Kumis alqa'"},
}

STATUSES: dict[str, Texts] = {
    "RECEIVING": {"kk": "алып жатыр", "ru": "получает", "en": "receiving"},
    "OFFERED": {"kk": "ұсынылды", "ru": "предложено", "en": "offered"},
    "ELIGIBLE": {"kk": "құқығы бар", "ru": "имеет право", "en": "eligible"},
    "NOT_ELIGIBLE": {"kk": "құқығы жоқ", "ru": "не имеет права", "en": "not eligible"},
}

CATEGORIES: dict[str, Texts] = {
    "CASH_BENEFITS": {"kk": "ақшалай төлемдер", "ru": "денежные выплаты", "en": "cash benefits"},
    "SCHOOL_MEALS": {"kk": "мектептегі тамақ", "ru": "школьное питание", "en": "school meals"},
    "MEDICINES": {"kk": "дәрі-дәрмек", "ru": "лекарства", "en": "medicines"},
    "OTHER_IN_KIND": {
        "kk": "басқа заттай көмек",
        "ru": "прочая натуральная помощь",
        "en": "other support in kind",
    },
}

CRITERIA: dict[str, Texts] = {
    "economic": {
        "kk": "экономикалық өмір сүру жағдайы",
        "ru": "экономические условия жизни",
        "en": "economic living conditions",
    },
    "health": {
        "kk": "денсаулық сақтау қызметтерімен қамту және мүгедектігі бар адамдар",
        "ru": "охват услугами здравоохранения и наличие лиц с инвалидностью",
        "en": "coverage by health services, and persons with disabilities",
    },
    "housing": {"kk": "тұрғын үй жағдайы", "ru": "жилищные условия", "en": "housing conditions"},
    "social": {"kk": "әлеуметтік жағдай", "ru": "социальные условия", "en": "social conditions"},
    "education": {
        "kk": "білім беру қызметтерімен қамту",
        "ru": "охват услугами образования",
        "en": "coverage by education services",
    },
}

LEVELS: dict[str, Texts] = {
    "stable": {"kk": "тұрақты", "ru": "стабильный", "en": "stable"},
    "satisfactory": {"kk": "қанағаттанарлық", "ru": "удовлетворительный", "en": "satisfactory"},
    "unstable": {"kk": "тұрақсыз", "ru": "неустойчивый", "en": "unstable"},
    "crisis_risk": {"kk": "дағдарыс қаупі", "ru": "риск кризиса", "en": "at risk of crisis"},
    "crisis": {"kk": "дағдарыс", "ru": "кризисный", "en": "crisis"},
}

# The facts behind each welfare criterion (familymap.welfare.assess), and how each reads.
WELFARE_FACTS: dict[str, Texts] = {
    "per_capita_income_tiyn": {
        "kk": "жан басына шаққандағы табыс",
        "ru": "доход на человека",
        "en": "income per person",
    },
    "income_to_subsistence_pct": {
        "kk": "күнкөріс минимумына қатынасы",
        "ru": "к прожиточному минимуму",
        "en": "of the subsistence minimum",
    },
    "earners": {"kk": "табыс табушылар", "ru": "работающих", "en": "earners"},
    "uninsured": {"kk": "сақтандырылмағандар", "ru": "без страховки", "en": "uninsured"},
    "with_disability": {
        "kk": "мүгедектігі барлар",
        "ru": "с инвалидностью",
        "en": "with a disability",
    },
    "chronic_not_attached": {
        "kk": "емханаға бекітілмеген созылмалы науқастар",
        "ru": "хронически больных без прикрепления",
        "en": "chronically ill, not attached to a polyclinic",
    },
    "area_m2_per_person": {
        "kk": "адамға шаққандағы аудан, м²",
        "ru": "площадь на человека, м²",
        "en": "floor area per person, m²",
    },
    "owned": {"kk": "меншікті тұрғын үй", "ru": "собственное жильё", "en": "home owned"},
    "in_social_housing_queue": {
        "kk": "әлеуметтік тұрғын үй кезегінде",
        "ru": "в очереди на социальное жильё",
        "en": "in the social housing queue",
    },
    "single_adult_with_minors": {
        "kk": "балаларды жалғыз ересек тәрбиелейді",
        "ru": "один взрослый с несовершеннолетними",
        "en": "a single adult raising minors",
    },
    "registered_unemployed": {
        "kk": "тіркелген жұмыссыздар",
        "ru": "зарегистрированных безработных",
        "en": "registered unemployed",
    },
    "deaths_in_period": {
        "kk": "жақында қайтыс болғандар",
        "ru": "недавних смертей",
        "en": "recent deaths",
    },
    "lone_pensioner": {
        "kk": "жалғыз тұратын зейнеткер",
        "ru": "одинокий пенсионер",
        "en": "a pensioner living alone",
    },
    "school_age_out_of_school": {
        "kk": "мектепке бармайтын мектеп жасындағы балалар",
        "ru": "детей школьного возраста вне школы",
        "en": "school-age children out of school",
    },
    "preschool_without_kindergarten": {
        "kk": "балабақшасыз мектеп жасына дейінгі балалар",
        "ru": "дошкольников без детского сада",
        "en": "pre-schoolers without a kindergarten",
    },
}
CRITERION_TEMPLATE: Texts = {
    "kk": "{criterion}: {score}/100 ұпай. {facts}.",
    "ru": "{criterion}: {score} из 100 баллов. {facts}.",
    "en": "{criterion}: {score} of 100 points. {facts}.",
}


def text(catalog: dict[str, Texts], key: str, language: str) -> str:
    """The entry `key` of `catalog` in `language`; the key itself if the catalog lacks it."""
    entry = catalog.get(key)
    return entry[language_of(language)] if entry else key


def condition_label(programme: str, condition_id: str, language: str) -> str:
    """What a condition of a programme tests, in the reader's words."""
    entry = CONDITION_LABELS.get(f"{programme}.{condition_id}") or CONDITION_LABELS.get(
        condition_id
    )
    return entry[language_of(language)] if entry else condition_id


# Babel's Kazakhstan locales write the tenge sign; English has no Kazakhstan locale in CLDR
# and writes the code (KZT12,345.50), as an English reader abroad would expect.
LOCALES = {"kk": "kk_KZ", "ru": "ru_KZ", "en": "en"}


def money(tiyn: int, language: str) -> str:
    """An amount of tiyn as tenge in the locale's form, e.g. '12 345,50 ₸'."""
    return format_currency(Decimal(tiyn) / 100, "KZT", locale=LOCALES[language_of(language)])


def format_value(value: Any, fmt: Any, language: str) -> str:
    """A condition's value or threshold as the reader expects it (see rules.base formats)."""
    try:
        return _format_cached(value, fmt, language_of(language))
    except TypeError:  # an unhashable value (a list): format it without the cache
        return _format(value, fmt, language_of(language))


# The same few values recur on every page (today's date, thresholds, small counts, yes/no),
# and Babel's formatting costs tens of microseconds a call: a bounded cache serves them.
@lru_cache(maxsize=65_536)
def _format_cached(value: Any, fmt: Any, lang: str) -> str:
    return _format(value, fmt, lang)


def _format(value: Any, fmt: Any, lang: str) -> str:
    if value is None:
        return text(WORDS, "none", lang)
    if isinstance(value, tuple | list):
        return ", ".join(_format(item, fmt, lang) for item in value)
    if isinstance(value, bool):
        return text(WORDS, "yes" if value else "no", lang)
    if fmt == "tiyn":
        return money(int(value), lang)
    if isinstance(value, date):
        return format_date(value, format="medium", locale=LOCALES[lang])
    if fmt == "pct":
        return format_percent(Decimal(value) / 100, locale=lang)
    if isinstance(value, str):
        return text(WORDS, value, lang)
    return format_decimal(value, locale=lang)


def operator_words(op: str, fmt: Any, language: str) -> str:
    """How the value must compare with the threshold, in words."""
    catalog = DATE_OPERATORS if fmt == "date" and op in DATE_OPERATORS else OPERATORS
    return text(catalog, op, language)


@lru_cache(maxsize=65_536)
def _reason_text(
    programme: str, condition_id: str, value: Any, op: str, threshold: Any, passed: bool,
    fmt: Any, lang: str,
) -> str:  # fmt: skip
    return REASON_TEMPLATE[lang].format(
        label=condition_label(programme, condition_id, lang),
        value=format_value(value, fmt, lang),
        op=operator_words(op, fmt, lang),
        threshold=format_value(threshold, fmt, lang),
        verdict=text(VERDICTS, "passed" if passed else "failed", lang),
    )


def reason_text(
    *,
    programme: str,
    condition_id: str,
    value: Any,
    op: str,
    threshold: Any,
    passed: bool,
    fmt: Any,
    language: str,
) -> str:
    """One condition of a decision in plain language, with its values."""
    args = (programme, condition_id, value, op, threshold, passed, fmt, language_of(language))
    try:
        return _reason_text(*args)
    except TypeError:  # an unhashable value: no cache
        return _reason_text.__wrapped__(*args)


def welfare_fact(name: str, value: Any, language: str) -> str:
    """One fact behind a welfare criterion: 'income per person: 45 000,00 ₸'."""
    lang = language_of(language)
    if name.endswith("_tiyn"):
        shown = money(int(value), lang)
    elif name.endswith("_pct"):
        shown = format_percent(Decimal(int(value)) / 100, locale=lang)
    else:
        shown = format_value(value, "int", lang)
    return f"{text(WELFARE_FACTS, name, lang)}: {shown}"


def criterion_explanation(
    *, criterion: str, score: int, facts: dict[str, Any], language: str
) -> str:
    """A welfare criterion's score and the facts that produced it, in one sentence."""
    lang = language_of(language)
    return CRITERION_TEMPLATE[lang].format(
        criterion=text(CRITERIA, criterion, lang).capitalize(),
        score=score,
        facts="; ".join(welfare_fact(name, value, lang) for name, value in facts.items()),
    )
