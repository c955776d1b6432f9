// The client's own texts in kk / ru / en. Texts that come from the API (programme titles,
// reasons, welfare explanations) arrive already in the chosen language (Accept-Language).
export const LANGUAGES = ["kk", "ru", "en"];

const TEXTS = {
  "app.title": { kk: "Әлеуметтік әмиян", ru: "Социальный кошелёк", en: "Social Wallet" },
  signout: { kk: "Шығу", ru: "Выйти", en: "Sign out" },
  "signin.title": { kk: "Кіру", ru: "Вход", en: "Sign in" },
  "signin.dev": {
    kk: "Демо-кіру (тек әзірлеу ортасында). Нақты қосымшада eGov арқылы кіресіз.",
    ru: "Демо-вход (только в среде разработки). В настоящем приложении вход через eGov.",
    en: "Demo sign-in (development only). The real app signs in with eGov.",
  },
  "signin.citizen": { kk: "Азамат", ru: "Гражданин", en: "Citizen" },
  "signin.school": { kk: "Мектеп асханасы", ru: "Школьная столовая", en: "School canteen" },
  "signin.pharmacy": { kk: "Дәріхана", ru: "Аптека", en: "Pharmacy" },
  "signin.paste": { kk: "Немесе токенді қойыңыз", ru: "Или вставьте токен", en: "Or paste a token" },
  "signin.go": { kk: "Кіру", ru: "Войти", en: "Sign in" },
  "signin.nodev": {
    kk: "Демо-токендер жоқ: eGov арқылы кіріңіз.",
    ru: "Демо-токенов нет: войдите через eGov.",
    en: "No demo tokens here: sign in with eGov.",
  },
  "nav.family": { kk: "Отбасы", ru: "Семья", en: "Family" },
  "nav.entitlements": { kk: "Төлемдер", ru: "Выплаты", en: "Entitlements" },
  "nav.offers": { kk: "Ұсыныстар", ru: "Предложения", en: "Offers" },
  "nav.spending": { kk: "Шығындар", ru: "Расходы", en: "Spending" },
  "nav.meals": { kk: "Тамақ", ru: "Питание", en: "Meals" },
  "nav.medicines": { kk: "Дәрілер", ru: "Лекарства", en: "Medicines" },
  "nav.access": { kk: "Кім қарады", ru: "Кто смотрел", en: "Who accessed" },
  "nav.canteen": { kk: "Асхана", ru: "Столовая", en: "Canteen" },
  "nav.pharmacy": { kk: "Дәріхана", ru: "Аптека", en: "Pharmacy" },
  "family.title": { kk: "Менің отбасым", ru: "Моя семья", en: "My family" },
  "family.welfare": { kk: "Әл-ауқат деңгейі", ru: "Уровень благополучия", en: "Welfare level" },
  "family.you": { kk: "сіз", ru: "вы", en: "you" },
  "family.notfound": {
    kk: "Сіз отбасылар картасында жоқсыз.",
    ru: "Вас нет в карте семей.",
    en: "You are not in the family map.",
  },
  "entitlements.title": { kk: "Маған не тиесілі", ru: "Что мне положено", en: "What I am entitled to" },
  "entitlements.why": { kk: "Неліктен", ru: "Почему", en: "Why" },
  "offers.title": { kk: "Ұсыныстар", ru: "Предложения", en: "Offers" },
  "offers.none": { kk: "Ұсыныс жоқ.", ru: "Предложений нет.", en: "No offers." },
  "offers.accept": { kk: "Келісемін", ru: "Согласен", en: "Accept" },
  "offers.decline": { kk: "Бас тарту", ru: "Отказаться", en: "Decline" },
  "offers.until": { kk: "Жауап беру мерзімі", ru: "Ответить до", en: "Answer by" },
  "offers.bank": { kk: "Банк шоты", ru: "Банковский счёт", en: "Bank account" },
  "offers.bankWhy": {
    kk: "Төлем жасау үшін IBAN қажет.",
    ru: "Для выплаты нужен IBAN вашего счёта.",
    en: "The payment needs your account's IBAN.",
  },
  "offers.bankSave": { kk: "Сақтау", ru: "Сохранить", en: "Save" },
  "offers.bankSaved": { kk: "Шот сақталды:", ru: "Счёт сохранён:", en: "Account saved:" },
  "offers.notices": { kk: "Хабарламалар", ru: "Уведомления", en: "Notices" },
  "offers.accepted": { kk: "Келісіміңіз қабылданды.", ru: "Согласие принято.", en: "Your consent is recorded." },
  "offers.declined": { kk: "Бас тарту қабылданды.", ru: "Отказ принят.", en: "Your refusal is recorded." },
  "spending.title": {
    kk: "Мемлекет отбасыңызға жұмсаған қаражат",
    ru: "Сколько государство потратило на семью",
    en: "What the state spent on your family",
  },
  "spending.total": { kk: "Барлығы", ru: "Всего", en: "Total" },
  "spending.byCategory": { kk: "Санаттар бойынша", ru: "По категориям", en: "By category" },
  "spending.byMonth": { kk: "Айлар бойынша", ru: "По месяцам", en: "By month" },
  "spending.meals": { kk: "Тамақтану", ru: "Приёмов пищи", en: "Meals served" },
  "spending.medicines": { kk: "Дәрі беру", ru: "Выдач лекарств", en: "Medicines dispensed" },
  "meals.title": { kk: "Мектептегі тамақ", ru: "Школьное питание", en: "School meals" },
  "meals.none": { kk: "Мектеп оқушысы жоқ.", ru: "Школьников нет.", en: "No pupils." },
  "meals.qr": { kk: "QR-код көрсету", ru: "Показать QR-код", en: "Show QR code" },
  "meals.qrHint": {
    kk: "Асханада көрсетіңіз. Бір минут жарамды, бір рет.",
    ru: "Покажите в столовой. Действует минуту, один раз.",
    en: "Show it at the canteen. Valid for a minute, once.",
  },
  "meals.history": { kk: "Тамақ тарихы", ru: "История питания", en: "Meal history" },
  "meals.noHistory": { kk: "Әзірге жоқ.", ru: "Пока нет.", en: "Nothing yet." },
  "meals.noVoucher": { kk: "Ваучер жоқ", ru: "Нет ваучера", en: "No voucher" },
  "feedback.rate": { kk: "Бағалау", ru: "Оценить", en: "Rate" },
  "feedback.comment": { kk: "Пікір", ru: "Комментарий", en: "Comment" },
  "feedback.send": { kk: "Жіберу", ru: "Отправить", en: "Send" },
  "feedback.thanks": { kk: "Рахмет, пікіріңіз қабылданды.", ru: "Спасибо, отзыв принят.", en: "Thank you, your feedback is recorded." },
  "medicines.title": { kk: "Берілген дәрілер", ru: "Выданные лекарства", en: "Medicines dispensed" },
  "access.title": { kk: "Деректеріме кім қарады", ru: "Кто смотрел мои данные", en: "Who accessed my data" },
  "access.none": { kk: "Ешкім.", ru: "Никто.", en: "No one." },
  "access.more": { kk: "Тағы", ru: "Ещё", en: "More" },
  "canteen.title": { kk: "Асхана: тамақ беру", ru: "Столовая: выдача питания", en: "Canteen: serve a meal" },
  "canteen.token": { kk: "QR-токен (сканерлеу немесе қою)", ru: "QR-токен (сканируйте или вставьте)", en: "QR token (scan or paste)" },
  "canteen.mealType": { kk: "Тамақ түрі", ru: "Приём пищи", en: "Meal" },
  "canteen.servedOn": { kk: "Күні", ru: "Дата", en: "Served on" },
  "canteen.redeem": { kk: "Тамақ беру", ru: "Выдать", en: "Serve" },
  "canteen.served": { kk: "Тамақ берілді", ru: "Питание выдано", en: "Meal served" },
  "canteen.today": { kk: "Бүгін берілген тамақ", ru: "Выдано сегодня", en: "Meals served today" },
  "canteen.pupils": { kk: "Оқушылар тізімі", ru: "Список учеников", en: "Pupils" },
  "meal.BREAKFAST": { kk: "Таңғы ас", ru: "Завтрак", en: "Breakfast" },
  "meal.LUNCH": { kk: "Түскі ас", ru: "Обед", en: "Lunch" },
  "pharmacy.title": { kk: "Дәріхана: дәрі беру", ru: "Аптека: выдача лекарств", en: "Pharmacy: dispense" },
  "pharmacy.prescription": { kk: "Рецепт нөмірі", ru: "Номер рецепта", en: "Prescription id" },
  "pharmacy.drug": { kk: "Дәрі коды", ru: "Код препарата", en: "Drug code" },
  "pharmacy.quantity": { kk: "Саны", ru: "Количество", en: "Quantity" },
  "pharmacy.identity": { kk: "Жеке басын тексеру", ru: "Проверка личности", en: "Identity check" },
  "pharmacy.reasonCode": { kk: "Себебі (басқа тәсіл)", ru: "Причина (иной способ)", en: "Reason (fallback)" },
  "pharmacy.reason": { kk: "Не болды (кемінде үш сөз)", ru: "Что случилось (не меньше трёх слов)", en: "What happened (three words or more)" },
  "fallback.NO_SMARTPHONE": { kk: "Смартфоны жоқ", ru: "Нет смартфона", en: "No smartphone" },
  "fallback.FACE_ID_FAILED": { kk: "Face-ID танымады", ru: "Face-ID не распознал", en: "Face-ID failed" },
  "fallback.CAMERA_UNAVAILABLE": { kk: "Камера жұмыс істемейді", ru: "Камера недоступна", en: "Camera unavailable" },
  "fallback.EGOV_UNAVAILABLE": { kk: "eGov қолжетімсіз", ru: "eGov недоступен", en: "eGov unavailable" },
  "pharmacy.dispense": { kk: "Беру", ru: "Выдать", en: "Dispense" },
  "pharmacy.done": { kk: "Дәрі берілді", ru: "Лекарство выдано", en: "Dispensed" },
  "pharmacy.find": { kk: "Рецептті табу", ru: "Найти рецепт", en: "Find prescription" },
  "pharmacy.remaining": { kk: "Қалды", ru: "Осталось", en: "Left" },
  "pharmacy.validUntil": { kk: "дейін жарамды", ru: "действует до", en: "valid until" },
  "pharmacy.expired": { kk: "мерзімі өткен", ru: "просрочен", en: "expired" },
  "pharmacy.recent": { kk: "Берілгендер", ru: "Выдано", en: "Dispensed here" },
  "identity.EGOV_QR": { kk: "eGov QR", ru: "eGov QR", en: "eGov QR" },
  "identity.FACE_ID": { kk: "Face-ID", ru: "Face-ID", en: "Face-ID" },
  "identity.FALLBACK": { kk: "Басқа тәсіл", ru: "Иной способ", en: "Fallback" },
  unavailable: {
    kk: "Бұл бөлім серверде әлі жоқ.",
    ru: "Этот раздел на сервере пока недоступен.",
    en: "This screen is not available on this server yet.",
  },
  loading: { kk: "Жүктелуде…", ru: "Загрузка…", en: "Loading…" },
  error: { kk: "Қате", ru: "Ошибка", en: "Error" },
  tenge: { kk: "₸", ru: "₸", en: "₸" },
};

const MONTHS = {
  kk: ["Қаң", "Ақп", "Нау", "Сәу", "Мам", "Мау", "Шіл", "Там", "Қыр", "Қаз", "Қар", "Жел"],
  ru: ["Янв", "Фев", "Мар", "Апр", "Май", "Июн", "Июл", "Авг", "Сен", "Окт", "Ноя", "Дек"],
  en: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
};

let current = localStorage.getItem("sw.lang");
if (!LANGUAGES.includes(current)) current = "kk";

export function language() {
  return current;
}

export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : "kk";
  localStorage.setItem("sw.lang", current);
  document.documentElement.lang = current;
}

export function t(key) {
  const entry = TEXTS[key];
  return entry ? entry[current] : key;
}

export function month(number) {
  return MONTHS[current][number - 1];
}

// Money arrives in tiyn (1/100 tenge) as an integer; shown in tenge.
export function money(tiyn) {
  const locale = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" }[current];
  const tenge = Number(tiyn) / 100;
  return `${tenge.toLocaleString(locale, { maximumFractionDigits: 2 })} ₸`;
}

export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
