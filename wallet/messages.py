"""The SMS texts of 1414, in Kazakh and Russian.

Every text is short (an SMS or two), names what it is about and the amount, says how to reply
where a reply is wanted, and carries no link: a genuine message from 1414 never asks anyone
to follow a link, so a message with one is a fraud, and the offer says so. A person whose
registry language is neither kk nor ru gets Russian; a sender we cannot identify gets both.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_decimal

from wallet.i18n import programme_title

SMS_LANGUAGES = ("kk", "ru")

_TEXTS: dict[str, dict[str, str]] = {
    "offer": {
        "ru": (
            "1414: Вам положено: {title}, {amount} тг. Чтобы оформить, ответьте 1 (согласен) "
            "или 2 (отказ) до {until}; можно и в eGov Mobile. Мы не присылаем ссылок: "
            "официальные SMS приходят только с номера 1414."
        ),
        "kk": (
            "1414: Сізге тиесілі: {title}, {amount} тг. Рәсімдеу үшін {until} дейін 1 "
            "(келісемін) немесе 2 (бас тартамын) деп жауап беріңіз; eGov Mobile арқылы да "
            "болады. Біз сілтеме жібермейміз: ресми SMS тек 1414 нөмірінен келеді."
        ),
    },
    "assigned": {
        "ru": "1414: Согласие принято: {title}, {amount} тг. Назначение оформлено, выплату отправим на ваш счёт.",
        "kk": "1414: Келісім қабылданды: {title}, {amount} тг. Тағайындау рәсімделді, төлем шотыңызға жіберіледі.",
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
        "ru": "1414: Отказ принят: {title}. Если передумаете, обратитесь в eGov Mobile или по номеру 1414.",
        "kk": "1414: Бас тарту қабылданды: {title}. Ойыңыз өзгерсе, eGov Mobile-ға немесе 1414 нөміріне хабарласыңыз.",
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
        "ru": "1414: Ответ не распознан. Ответьте 1 (согласен) или 2 (отказ).",
        "kk": "1414: Жауап танылмады. 1 (келісемін) немесе 2 (бас тартамын) деп жауап беріңіз.",
    },
    "PENSION_AGE_NOTICE": {
        "ru": "1414: {about} вы достигаете пенсионного возраста. Пенсия будет назначена без заявления: ждите SMS с номера 1414.",
        "kk": "1414: {about} зейнеткерлік жасқа толасыз. Зейнетақы өтінішсіз тағайындалады: 1414 нөмірінен SMS күтіңіз.",
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

NOTICE_TEMPLATES = ("PENSION_AGE_NOTICE", "KANDAS_EXPIRY_NOTICE", "EMPLOYMENT_MEASURES_NOTICE")


def sms_language(language: str | None) -> str:
    """kk for a Kazakh speaker, ru for everyone else (SMS are sent in these two)."""
    return "kk" if language == "kk" else "ru"


def tenge(amount_tiyn: int, language: str) -> str:
    """An amount in tenge as the language writes it, tiyn shown only when there are some."""
    return format_decimal(Decimal(amount_tiyn) / 100, format="#,##0.##", locale=language)


def _date(day: date | None, language: str) -> str:
    return format_date(day, format="dd.MM.yyyy", locale=language) if day else ""


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
) -> str:
    """The text of an SMS from 1414 in the person's language."""
    lang = sms_language(language)
    return _TEXTS[template][lang].format(
        title=programme_title(programme, lang),
        amount=tenge(amount_tiyn, lang),
        until=_date(until, lang),
        about=_date(about, lang),
    )


def unknown_sender_text() -> str:
    """The answer to a reply from a number no offer was sent to."""
    return _UNKNOWN_SENDER
