"""The SMS texts of 1414, in Kazakh and Russian.

Every text is short (an SMS or two), names what it is about and the amount, says how to reply
where a reply is wanted (with the offer's reply code, docs/consent.md), and carries no link: a genuine message from 1414 never asks anyone
to follow a link, so a message with one is a fraud, and the offer says so. A person whose
registry language is neither kk nor ru gets Russian; a sender we cannot identify gets both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_decimal

from wallet.i18n import programme_title

SMS_LANGUAGES = ("kk", "ru")
# Where an offer's reply code goes in its text (see with_reply_code).
REPLY_CODE_SLOT = "{code}"

_TEXTS: dict[str, dict[str, str]] = {
    "offer": {
        "ru": (
            "1414: Вам положено: {title}, {money}. Чтобы оформить, ответьте 1 {code} "
            "(согласен) или 2 {code} (отказ) до {until}; можно и в eGov Mobile. Мы не присылаем ссылок: "
            "официальные SMS приходят только с номера 1414."
        ),
        "kk": (
            "1414: Сізге тиесілі: {title}, {money}. Рәсімдеу үшін {until} дейін 1 {code} "
            "(келісемін) немесе 2 {code} (бас тартамын) деп жауап беріңіз; eGov Mobile арқылы да "
            "болады. Біз сілтеме жібермейміз: ресми SMS тек 1414 нөмірінен келеді."
        ),
    },
    "assigned": {
        "ru": "1414: Согласие принято: {title}, {money}. Назначение оформлено, выплату отправим на ваш счёт.",
        "kk": "1414: Келісім қабылданды: {title}, {money}. Тағайындау рәсімделді, төлем шотыңызға жіберіледі.",
    },
    "voucher_assigned": {
        "ru": "1414: Согласие принято: {title}. Ваучер оформлен, он доступен в eGov Mobile.",
        "kk": "1414: Келісім қабылданды: {title}. Ваучер рәсімделді, ол eGov Mobile-да қолжетімді.",
    },
    "needs_bank_account": {
        "ru": (
            "1414: Согласие на «{title}» принято. Для выплаты добавьте банковский счёт (IBAN) "
            "в eGov Mobile: Профиль, Банковские счета. Выплата начнётся сразу после этого."
        ),
        "kk": (
            "1414: «{title}» бойынша келісім қабылданды. Төлем алу үшін eGov Mobile-да банк "
            "шотын (IBAN) қосыңыз: Профиль, Банк шоттары. Төлем осыдан кейін бірден басталады."
        ),
    },
    "payment_returned": {
        "ru": (
            "1414: Выплата «{title}», {amount} тг, не зачислена: банк вернул её. Проверьте "
            "банковский счёт (IBAN) в eGov Mobile: Профиль, Банковские счета."
        ),
        "kk": (
            "1414: «{title}» төлемі, {amount} тг, шотқа түспеді: банк оны қайтарды. eGov "
            "Mobile-да банк шотын (IBAN) тексеріңіз: Профиль, Банк шоттары."
        ),
    },
    "declined": {
        "ru": "1414: Отказ принят: {title}. Если передумаете, согласиться можно в eGov Mobile до {until}.",
        "kk": "1414: Бас тарту қабылданды: {title}. Ойыңыз өзгерсе, {until} дейін eGov Mobile-да келісім беруге болады.",
    },
    # A decline without a reason: the reasons' numbers (DECLINE_REASONS, counted from 1) for
    # the take-up funnel (docs/funnel.md); answering is optional.
    "declined_why": {
        "ru": "1414: Отказ принят: {title}. Если передумаете, согласиться можно в eGov Mobile до {until}. Если хотите, укажите причину: 2 {code} и цифра: 1 не нужно, 2 неверные данные, 3 не доверяю SMS, 4 другое.",
        "kk": "1414: Бас тарту қабылданды: {title}. Ойыңыз өзгерсе, {until} дейін eGov Mobile-да келісім беруге болады. Қаласаңыз, себебін жазыңыз: 2 {code} және сан: 1 қажет емес, 2 деректер қате, 3 SMS-ке сенбеймін, 4 басқа.",
    },
    "decline_reason": {
        "ru": "1414: Спасибо, причина отказа записана.",
        "kk": "1414: Рақмет, бас тарту себебі жазылды.",
    },
    "withdrawn": {
        "ru": "1414: По данным на сегодня право на «{title}» не подтвердилось. Подробности в eGov Mobile.",
        "kk": "1414: Бүгінгі деректер бойынша «{title}» құқығы расталмады. Толығырақ eGov Mobile-да.",
    },
    "no_open_offer": {
        "ru": "1414: У вас нет предложений, ожидающих ответа. Свои выплаты и пособия смотрите в eGov Mobile.",
        "kk": "1414: Сізде жауап күтіп тұрған ұсыныс жоқ. Төлемдер мен жәрдемақыларды eGov Mobile-дан қараңыз.",
    },
    "unparseable": {
        "ru": "1414: Ответ не распознан. Ответьте 1 (согласен) или 2 (отказ) и код из SMS с предложением, например: 1 4821.",
        "kk": "1414: Жауап танылмады. 1 (келісемін) немесе 2 (бас тартамын) және ұсыныс SMS-індегі кодты жазыңыз, мысалы: 1 4821.",
    },
    # A reply without a code while the phone has several questions: nothing was changed.
    "ambiguous": {
        "ru": "1414: У вас несколько предложений, ответ без кода не принят. Ответьте 1 (согласен) или 2 (отказ) и код предложения: {choices}.",
        "kk": "1414: Сізде бірнеше ұсыныс бар, кодсыз жауап қабылданбады. 1 (келісемін) немесе 2 (бас тартамын) және ұсыныс кодын жазыңыз: {choices}.",
    },
    # A reply whose code names none of the phone's open offers: nothing was changed.
    "unknown_code": {
        "ru": "1414: Предложения с кодом {code} нет среди ожидающих ответа. Ответьте 1 (согласен) или 2 (отказ) и код: {choices}.",
        "kk": "1414: {code} коды бар ұсыныс жауап күтіп тұрғандардың арасында жоқ. 1 (келісемін) немесе 2 (бас тартамын) және кодты жазыңыз: {choices}.",
    },
    # A reply whose code names an offer answered before or past its deadline.
    "closed_offer": {
        "ru": "1414: Предложение «{title}» (код {code}) уже не ждёт ответа: на него ответили или истёк срок. Подробности в eGov Mobile.",
        "kk": "1414: «{title}» ұсынысы ({code} коды) енді жауап күтпейді: оған жауап берілген немесе мерзімі өткен. Толығырақ eGov Mobile-да.",
    },
    # Nothing here learns that a pension was assigned, so the notice promises no later SMS:
    # it says the date and where to apply (docs/consent.md).
    "PENSION_AGE_NOTICE": {
        "ru": "1414: Дата достижения вами пенсионного возраста: {about}. С этой даты у вас есть право на пенсионные выплаты; оформить их можно в eGov или в ЦОН.",
        "kk": "1414: Зейнеткерлік жасқа толатын күніңіз: {about}. Осы күннен бастап зейнетақы төлемдеріне құқығыңыз бар; оларды eGov немесе ХҚКО арқылы рәсімдеуге болады.",
    },
    "KANDAS_STATUS_NOTICE": {
        "ru": "1414: Ваш статус кандаса подтверждён: он действует до {about}. Подробности в eGov Mobile.",
        "kk": "1414: Қандас мәртебеңіз расталды: ол {about} дейін жарамды. Толығырақ eGov Mobile-да.",
    },
    # The same notice when the term of a status already notified changes (an extension).
    "KANDAS_STATUS_CHANGED": {
        "ru": "1414: Срок вашего статуса кандаса изменён: теперь он действует до {about}. Подробности в eGov Mobile.",
        "kk": "1414: Қандас мәртебеңіздің мерзімі өзгерді: енді ол {about} дейін жарамды. Толығырақ eGov Mobile-да.",
    },
    "KANDAS_EXPIRY_NOTICE": {
        "ru": "1414: Статус кандаса истекает {about}. Подайте документы на гражданство или продление заранее, в ЦОН или eGov.",
        "kk": "1414: Қандас мәртебесінің мерзімі {about} аяқталады. Азаматтыққа немесе ұзартуға құжаттарды алдын ала ХҚКО немесе eGov арқылы тапсырыңыз.",
    },
    "EMPLOYMENT_MEASURES_NOTICE": {
        "ru": "1414: Вам доступны меры содействия занятости: обучение, субсидируемые рабочие места, гранты на своё дело. Обратитесь в центр занятости по месту жительства.",
        "kk": "1414: Сізге жұмыспен қамтуға жәрдемдесу шаралары қолжетімді: оқыту, субсидияланатын жұмыс орындары, өз ісіңізге грант. Тұрғылықты жердегі жұмыспен қамту орталығына хабарласыңыз.",
    },
}

# Said to a number no offer was sent to: we do not know the person, so both languages, and
# nothing about whether the number is in the registry.
_UNKNOWN_SENDER = (
    "1414: На этот номер предложений не отправлялось. Ответьте с номера, на который пришло "
    "SMS, или используйте eGov Mobile. / Бұл нөмірге ұсыныс жіберілмеген. SMS келген "
    "нөмірден жауап беріңіз немесе eGov Mobile-ды пайдаланыңыз."
)

NOTICE_TEMPLATES = (
    "PENSION_AGE_NOTICE",
    "KANDAS_EXPIRY_NOTICE",
    "KANDAS_STATUS_NOTICE",
    "KANDAS_STATUS_CHANGED",
    "EMPLOYMENT_MEASURES_NOTICE",
)


def sms_language(language: str | None) -> str:
    """kk for a Kazakh speaker, ru for everyone else (SMS are sent in these two)."""
    return "kk" if language == "kk" else "ru"


# Babel takes about 0.2 ms an amount; a campaign's texts differ by amount (each family's
# ASP, each month's sum) more than the texts' cache can hold, but amounts repeat.
@lru_cache(maxsize=65536)
def tenge(amount_tiyn: int, language: str) -> str:
    """An amount in tenge as the language writes it, tiyn shown only when there are some."""
    return format_decimal(Decimal(amount_tiyn) / 100, format="#,##0.##", locale=language)


def _date(day: date | None, language: str) -> str:
    return format_date(day, format="dd.MM.yyyy", locale=language) if day else ""


# A run of months paying the same, as the SMS says it ("46 787,1 тг в месяц за 10–11.2026").
_PER_MONTH = {"ru": "{amount} тг в месяц за {months}", "kk": "{months} үшін айына {amount} тг"}


def _months(first: date, last: date) -> str:
    if first == last:
        return f"{first:%m.%Y}"
    if first.year == last.year:
        return f"{first:%m}–{last:%m.%Y}"
    return f"{first:%m.%Y}–{last:%m.%Y}"


def money_text(amount_tiyn: int, months: tuple[tuple[date, int], ...], language: str) -> str:
    """The sum of a one-off (no months), or what each run of months pays, briefly."""
    if not months:
        return f"{tenge(amount_tiyn, language)} тг"
    runs: list[list] = []
    for month, amount in months:
        if runs and runs[-1][2] == amount:
            runs[-1][1] = month
        else:
            runs.append([month, month, amount])
    return ", ".join(
        _PER_MONTH[language].format(amount=tenge(amount, language), months=_months(first, last))
        for first, last, amount in runs
    )


# The same few texts recur by the hundred thousand after a national run (one benefit, one
# amount, one deadline): Babel's formatting is the costly part, so texts are remembered.
@lru_cache(maxsize=4096)
def sms_text(
    template: str,
    *,
    language: str | None,
    programme: str = "",
    amount_tiyn: int = 0,
    until: date | None = None,
    about: date | None = None,
    months: tuple[tuple[date, int], ...] = (),
) -> str:
    """The text of an SMS from 1414 in the person's language; `months` ((first day, tiyn),
    in order) says what a monthly benefit pays for which month."""
    lang = sms_language(language)
    return _TEXTS[template][lang].format(
        title=programme_title(programme, lang),
        amount=tenge(amount_tiyn, lang),
        money=money_text(amount_tiyn, months, lang),
        until=_date(until, lang),
        about=_date(about, lang),
        # Kept as a slot: each offer's code differs, and a text that held it could not be
        # remembered; with_reply_code fills it.
        code=REPLY_CODE_SLOT,
        choices="",
    )


def with_reply_code(text: str, code: str) -> str:
    """The text with the offer's reply code in its slot."""
    return text.replace(REPLY_CODE_SLOT, code)


def reply_text(
    template: str,
    *,
    language: str | None,
    code: str = "",
    programme: str = "",
    choices: Sequence[tuple[str, str]] = (),
) -> str:
    """An answer to a reply that changed nothing, naming codes and the offers they answer."""
    lang = sms_language(language)
    listed = "; ".join(
        f"{choice_code} ({programme_title(choice_programme, lang)})"
        for choice_code, choice_programme in choices
    )
    return _TEXTS[template][lang].format(
        title=programme_title(programme, lang),
        amount="",
        money="",
        until="",
        about="",
        code=code,
        choices=listed,
    )


def unknown_sender_text() -> str:
    """The answer to a reply from a number no offer was sent to."""
    return _UNKNOWN_SENDER
