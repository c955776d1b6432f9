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
  // Issue 16: every label on screen in the UI's language, never a raw code.
  "app.language": { kk: "Тіл", ru: "Язык", en: "Language" },
  "app.tabs": { kk: "Бөлімдер", ru: "Разделы", en: "Sections" },
  "signin.expired": {
    kk: "Сессия аяқталды. Қайта кіріңіз.",
    ru: "Сеанс завершён. Войдите снова.",
    en: "Your session has ended. Please sign in again.",
  },
  "role.head": { kk: "отбасы басшысы", ru: "глава семьи", en: "head of the family" },
  "role.spouse": { kk: "жұбайы", ru: "супруг(а)", en: "spouse" },
  "role.child": { kk: "бала", ru: "ребёнок", en: "child" },
  "role.dependant": { kk: "асырауындағы", ru: "иждивенец", en: "dependant" },
  "role.other": { kk: "отбасы мүшесі", ru: "член семьи", en: "family member" },
  "family.born": { kk: "туған күні", ru: "дата рождения", en: "born" },
  "entitlements.family": { kk: "Бүкіл отбасы", ru: "Вся семья", en: "The whole family" },
  "entitlements.notEligible": { kk: "Тиесілі емес", ru: "Не положено", en: "Not eligible" },
  "entitlements.none": {
    kk: "Мұнда сізге және отбасыңызға тиесілі төлемдер мен көмек көрсетіледі.",
    ru: "Здесь появятся выплаты и помощь, положенные вам и вашей семье.",
    en: "The benefits and help you and your family are entitled to will appear here.",
  },
  "entitlements.nothingEligible": {
    kk: "Қазір тиесілі төлем жоқ.",
    ru: "Сейчас положенных выплат нет.",
    en: "Nothing is due right now.",
  },
  "offerState.OFFERED": { kk: "жауап күтілуде", ru: "ждёт ответа", en: "awaiting your answer" },
  "offerState.ACCEPTED": { kk: "келісілді", ru: "согласие дано", en: "accepted" },
  "offerState.DECLINED": { kk: "бас тартылды", ru: "отказ", en: "declined" },
  "offerState.EXPIRED": { kk: "мерзімі өтті", ru: "срок истёк", en: "expired" },
  "offerState.NEEDS_BANK_ACCOUNT": { kk: "банк шоты қажет", ru: "нужен банковский счёт", en: "needs a bank account" },
  "offerState.ASSIGNED": { kk: "тағайындалды", ru: "назначено", en: "assigned" },
  "offerState.PAID": { kk: "төленді", ru: "выплачено", en: "paid" },
  "offerState.WITHDRAWN": { kk: "қайтарып алынды", ru: "отозвано", en: "withdrawn" },
  "offers.empty": {
    kk: "Сізге тиесілі төлем табылғанда, ұсыныс осында келеді (және 1414-тен SMS).",
    ru: "Когда вам будет положена выплата, предложение появится здесь (и придёт SMS от 1414).",
    en: "When a benefit is due to you, its offer will appear here (and an SMS from 1414).",
  },
  "spending.none": {
    kk: "Мемлекет отбасыңызға қаражат жұмсағанда, ол осында көрсетіледі.",
    ru: "Здесь появятся расходы государства на вашу семью.",
    en: "What the state spends on your family will appear here.",
  },
  "meals.empty": {
    kk: "Балаңыз мектепте тегін тамақтанатын болса, оның QR-коды осында болады.",
    ru: "Если ваш ребёнок получает бесплатное питание в школе, его QR-код будет здесь.",
    en: "When your child has free school meals, their QR code will be here.",
  },
  "meals.historyEmpty": {
    kk: "Асханада берілген тамақ осында көрсетіледі.",
    ru: "Здесь появятся приёмы пищи, выданные в столовой.",
    en: "Meals served at the canteen will appear here.",
  },
  "meals.grade": { kk: "{n}-сынып", ru: "{n} класс", en: "grade {n}" },
  "meals.perYear": { kk: "Ваучер сомасы", ru: "Сумма ваучера", en: "Voucher amount" },
  "meals.qrAlt": { kk: "Тамаққа арналған QR-код", ru: "QR-код на питание", en: "Meal QR code" },
  "meals.qrLeft": { kk: "Жарамды: тағы {s} с", ru: "Действует ещё {s} с", en: "Valid for {s} s more" },
  "meals.qrRenewing": { kk: "Жаңа код жасалуда…", ru: "Обновляем код…", en: "Renewing the code…" },
  "meals.qrRenewed": { kk: "Код өздігінен жаңарады.", ru: "Код обновляется сам.", en: "The code renews itself." },
  "medicines.empty": {
    kk: "Дәріханада рецепт бойынша берілген дәрілер осында көрсетіледі.",
    ru: "Здесь появятся лекарства, выданные вам в аптеке по рецепту.",
    en: "Medicines a pharmacy dispenses to you on prescription will appear here.",
  },
  "access.empty": {
    kk: "Деректеріңізді біреу (қызметкер, мектеп, дәріхана) қараса, ол осында көрсетіледі.",
    ru: "Если кто-то (сотрудник, школа, аптека) посмотрит ваши данные, это появится здесь.",
    en: "When anyone (staff, a school, a pharmacy) looks at your data, it will appear here.",
  },
  "actor.CITIZEN": { kk: "Азамат", ru: "Гражданин", en: "Citizen" },
  "actor.SCHOOL": { kk: "Мектеп", ru: "Школа", en: "School" },
  "actor.PHARMACY": { kk: "Дәріхана", ru: "Аптека", en: "Pharmacy" },
  "actor.OPERATOR": { kk: "Қызметкер", ru: "Сотрудник", en: "Staff member" },
  "actor.SOURCE_SYSTEM": { kk: "Мемлекеттік жүйе", ru: "Госсистема", en: "State system" },
  "access.read": { kk: "қарады", ru: "просмотр", en: "viewed" },
  "access.write": { kk: "өзгертті", ru: "изменение", en: "changed" },
  "canteen.todayEmpty": {
    kk: "Бүгін берілген тамақ осында көрсетіледі.",
    ru: "Здесь появятся приёмы пищи, выданные за день.",
    en: "The meals served on this day will appear here.",
  },
  "canteen.pupilsEmpty": {
    kk: "Тегін тамақтанатын оқушылар осында көрсетіледі.",
    ru: "Здесь появятся ученики с бесплатным питанием.",
    en: "The pupils with free meals will appear here.",
  },
  "canteen.serveFor": { kk: "{name}: тамақ беру", ru: "Выдать: {name}", en: "Serve {name}" },
  "pharmacy.recentEmpty": {
    kk: "Осы дәріханада берілген дәрілер осында көрсетіледі.",
    ru: "Здесь появятся лекарства, выданные в этой аптеке.",
    en: "Medicines dispensed at this pharmacy will appear here.",
  },
  "pharmacy.patient": { kk: "Науқас", ru: "Пациент", en: "Patient" },
  "pharmacy.by": { kk: "Жазып берген", ru: "Выписал", en: "Prescribed by" },
  "feedback.pick": { kk: "Алдымен баға таңдаңыз.", ru: "Сначала выберите оценку.", en: "Choose a rating first." },
  "feedback.stars": { kk: "{n} жұлдыз", ru: "{n} из 5", en: "{n} of 5" },
  "error.generic": {
    kk: "Бірдеңе дұрыс болмады. Кейінірек қайталап көріңіз.",
    ru: "Что-то пошло не так. Попробуйте позже.",
    en: "Something went wrong. Please try again later.",
  },
  "refusal.ALREADY_REDEEMED": {
    kk: "Бұл балаға бұл тамақ бүгін берілген.",
    ru: "Этот приём пищи ребёнку сегодня уже выдан.",
    en: "This child has already had this meal today.",
  },
  "refusal.NOT_ENROLLED": { kk: "Оқушы бұл мектепте оқымайды.", ru: "Ученик не числится в этой школе.", en: "The pupil is not enrolled at this school." },
  "refusal.WRONG_SCHOOL": { kk: "Бұл код басқа мектепке арналған.", ru: "Этот код для другой школы.", en: "This code is for another school." },
  "refusal.WRONG_CATEGORY": { kk: "Бұл ваучер мұнда жарамайды.", ru: "Этот ваучер здесь не принимается.", en: "This voucher cannot be used here." },
  "refusal.NOT_A_SCHOOL_DAY": { kk: "Бұл күн оқу күні емес.", ru: "Этот день не учебный.", en: "That day is not a school day." },
  "refusal.QR_EXPIRED": {
    kk: "QR-кодтың мерзімі өтті. Ата-анасынан жаңасын сұраңыз.",
    ru: "Срок QR-кода истёк. Попросите новый у родителя.",
    en: "The QR code has expired. Ask the parent for a new one.",
  },
  "refusal.QR_INVALID": { kk: "QR-код оқылмады немесе жарамсыз.", ru: "QR-код не распознан или недействителен.", en: "The QR code is not valid." },
  "refusal.QR_REPLAYED": { kk: "Бұл QR-код пайдаланылған.", ru: "Этот QR-код уже использован.", en: "This QR code has already been used." },
  "refusal.NO_VOUCHER": { kk: "Ваучер жоқ.", ru: "Ваучера нет.", en: "There is no voucher." },
  "refusal.NOT_ELIGIBLE": { kk: "Бұл көмек тиесілі емес.", ru: "Эта помощь не положена.", en: "Not eligible for this help." },
  "refusal.NOT_YOUR_CHILD": { kk: "Бұл сіздің балаңыз емес.", ru: "Это не ваш ребёнок.", en: "This is not your child." },
  "refusal.FORBIDDEN": { kk: "Бұл әрекетке рұқсат жоқ.", ru: "Нет прав на это действие.", en: "You are not allowed to do this." },
  "refusal.NOT_FOUND": { kk: "Табылмады. Нөмірді тексеріңіз.", ru: "Не найдено. Проверьте номер.", en: "Not found. Check the number." },
  "refusal.BAD_USER_INPUT": { kk: "Деректерді тексеріңіз.", ru: "Проверьте введённые данные.", en: "Please check what you entered." },
  "refusal.PRESCRIPTION_EXPIRED": { kk: "Рецепттің мерзімі өткен.", ru: "Срок рецепта истёк.", en: "The prescription has expired." },
  "refusal.DRUG_MISMATCH": { kk: "Дәрі рецептке сәйкес емес.", ru: "Препарат не совпадает с рецептом.", en: "The drug is not the one prescribed." },
  "refusal.QUANTITY_EXCEEDED": { kk: "Рецепттегіден көп.", ru: "Больше, чем осталось по рецепту.", en: "More than the prescription has left." },
  "refusal.IDENTITY_CHECK_REQUIRED": {
    kk: "Жеке басын тексеріңіз (басқа тәсілге себеп жазыңыз).",
    ru: "Проверьте личность (для иного способа укажите причину).",
    en: "Check the patient's identity (a fallback needs a reason).",
  },
  "refusal.IDEMPOTENCY_KEY_REUSED": { kk: "Бұл сұраныс басқаша жіберілген. Қайта бастаңыз.", ru: "Этот запрос уже отправлялся иначе. Начните заново.", en: "This request was sent before with other details. Start again." },
  "refusal.INVALID_IDEMPOTENCY_KEY": { kk: "Сұраныс қате. Бетті жаңартыңыз.", ru: "Ошибка запроса. Обновите страницу.", en: "The request was malformed. Reload the page." },
  "refusal.FEEDBACK_EXISTS": { kk: "Пікіріңіз бұрын қабылданған.", ru: "Ваш отзыв уже принят.", en: "You have already left feedback." },
  "refusal.INSUFFICIENT_FUNDS": {
    kk: "Науқастың дәрі ваучерінде қаражат жеткіліксіз.",
    ru: "На ваучере пациента недостаточно средств.",
    en: "The patient's voucher does not have enough left.",
  },
  "refusal.NON_CASHABLE": { kk: "Бұл қаражатты қолма-қол алуға болмайды.", ru: "Эти средства нельзя обналичить.", en: "This money cannot be paid out in cash." },
  "refusal.PURPOSE_MISMATCH": { kk: "Бұл ваучер мұнда жарамайды.", ru: "Этот ваучер здесь не принимается.", en: "This voucher cannot be used here." },
  "refusal.OFFER_NOT_FOUND": { kk: "Ұсыныс табылмады.", ru: "Предложение не найдено.", en: "The offer was not found." },
  "refusal.OFFER_EXPIRED": { kk: "Ұсыныстың мерзімі өтті.", ru: "Срок предложения истёк.", en: "The offer has expired." },
  "refusal.OFFER_ALREADY_ANSWERED": { kk: "Бұл ұсынысқа жауап берілген.", ru: "На это предложение уже ответили.", en: "This offer has already been answered." },
  "refusal.FULFILMENT_UNAVAILABLE": { kk: "Қазір орындау мүмкін емес. Кейінірек көріңіз.", ru: "Сейчас не получается. Попробуйте позже.", en: "This cannot be done right now. Try again later." },
  "refusal.NOT_IN_REGISTRY": { kk: "Сіз отбасылар картасында жоқсыз.", ru: "Вас нет в карте семей.", en: "You are not in the family map." },
  "refusal.INVALID_IBAN": { kk: "IBAN қате. Тексеріңіз.", ru: "IBAN указан неверно.", en: "That IBAN is not valid." },
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
  document.getElementById("language")?.setAttribute("aria-label", t("app.language"));
  document.getElementById("nav")?.setAttribute("aria-label", t("app.tabs"));
}

export function t(key, params = {}) {
  const entry = TEXTS[key];
  const text = entry ? entry[current] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function has(key) {
  return key in TEXTS;
}

export function month(number) {
  return MONTHS[current][number - 1];
}

const LOCALES = { kk: "kk-KZ", ru: "ru-RU", en: "en-GB" };

// Browsers claim kk-KZ but may carry little of its data (Chromium writes "1997 M11 18" and
// "204,288.5"): numbers take the Russian locale's separators, which Kazakh shares.
const NUMBER_LOCALES = { kk: "ru-RU", ru: "ru-RU", en: "en-GB" };

export function locale() {
  return LOCALES[current];
}

// Money and dates follow one rule with the server's (familymap/i18n.py `money`, `day`), which
// is the definition: tests/web/test_formatting_agreement.py runs these under node and in
// Chromium over a table of amounts and days in kk, ru and en and compares with the server.

// Money arrives in tiyn (1/100 tenge) as an integer: the locale's grouping and signs, the
// tenge sign where the locale puts its currency ("128 000 ₸", "₸128,000"), no decimals for
// whole tenge and two otherwise ("12 975,50 ₸").
// Counted in whole tiyn (BigInt) and handed to Intl as an exact decimal string: dividing a
// number by 100 would round a large amount to another tiyn.
export function money(tiyn) {
  const amount = typeof tiyn === "bigint" ? tiyn : BigInt(typeof tiyn === "string" ? tiyn : Math.round(tiyn));
  const size = amount < 0n ? -amount : amount;
  const cents = size % 100n;
  const exact = `${amount < 0n ? "-" : ""}${size / 100n}.${String(cents).padStart(2, "0")}`;
  const digits = cents === 0n ? 0 : 2;
  return new Intl.NumberFormat(NUMBER_LOCALES[current], {
    style: "currency",
    currency: "KZT",
    currencyDisplay: "narrowSymbol",
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(exact);
}

// A calendar date in CLDR's long form ("18 ноября 2026 г.", "2026 ж. 18 қараша",
// "November 18, 2026"), put together here from the month names: browsers carry other CLDR
// versions than the server's (a plain space before "г.", no Kazakh at all), and a day from the
// API ("2026-11-18") is a day, not an instant, so no time zone may move it.
const LONG_MONTHS = {
  kk: ["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан"],
  ru: ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября", "декабря"],
  en: ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
};
const NARROW_NBSP = "\u202f"; // CLDR's space between the year and its mark (ж., г.)

export function date(iso) {
  if (!iso) return "";
  const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
  const month = LONG_MONTHS[current][m - 1];
  if (current === "kk") return `${y}${NARROW_NBSP}ж. ${d} ${month}`;
  if (current === "ru") return `${d} ${month} ${y}${NARROW_NBSP}г.`;
  return `${month} ${d}, ${y}`;
}

// An instant, in the device's time zone and the UI's language (24-hour in kk and ru).
export function dateTime(iso) {
  const at = new Date(iso);
  const local = `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, "0")}-${String(at.getDate()).padStart(2, "0")}`;
  return `${date(local)}, ${time(iso)}`;
}

export function time(iso) {
  const hourCycle = current === "en" ? undefined : "h23";
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", hourCycle }).format(new Date(iso));
}

// A refusal's stable code as a sentence in the UI's language; the server's message (English,
// sometimes with internal names) is never shown.
export function refusal(code) {
  return has(`refusal.${code}`) ? t(`refusal.${code}`) : t("error.generic");
}

export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
