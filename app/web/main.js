// The shell: sign-in, the language switch, the tabs and a hash router over the screens.
// Each screen is its own module exporting { id, roles, requires, render(view) }; `requires`
// names the API root fields it needs, so a server without them shows no such tab.
import { availableFields, roles, setToken, token } from "./api.js";
import { h, message } from "./dom.js";
import { language, setLanguage, t, translatePage } from "./i18n.js";
import * as signin from "./screens/signin.js";
import * as family from "./screens/family.js";
import * as entitlements from "./screens/entitlements.js";
import * as offers from "./screens/offers.js";
import * as spending from "./screens/spending.js";
import * as meals from "./screens/meals.js";
import * as medicines from "./screens/medicines.js";
import * as access from "./screens/access.js";
import * as canteen from "./screens/canteen.js";
import * as pharmacy from "./screens/pharmacy.js";

const SCREENS = [family, entitlements, offers, spending, meals, medicines, access, canteen, pharmacy];

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const languageSelect = document.getElementById("language");
const signOut = document.getElementById("sign-out");

async function screensForCaller() {
  const mine = roles();
  const fields = await availableFields();
  return SCREENS.filter((s) => s.roles.some((r) => mine.includes(r))).map((s) => ({
    screen: s,
    available: fields === undefined || s.requires.every((f) => fields.has(f)),
  }));
}

// Set when the server refused the token (expired or bad): sign-in then says why.
let signedOutExpired = false;

// Each navigation bumps the generation; a slower earlier one that finishes later must not
// paint over the screen the user went to since.
let generation = 0;

async function route() {
  const mine = ++generation;
  const stale = () => mine !== generation;
  translatePage();
  view.replaceChildren();
  if (!token()) {
    nav.hidden = true;
    nav.replaceChildren();
    signOut.hidden = true;
    const notice = signedOutExpired ? message("error", t("signin.expired")) : null;
    await signin.render(view, () => {
      signedOutExpired = false;
      location.hash = "";
      route();
    });
    if (notice && !stale()) view.prepend(notice);
    return;
  }
  signOut.hidden = false;
  const screens = await screensForCaller();
  if (stale()) return;
  const wanted = location.hash.replace(/^#\/?/, "");
  const shown = screens.filter((s) => s.available);
  const current = screens.find((s) => s.screen.id === wanted) || shown[0];
  nav.hidden = false;
  nav.replaceChildren(
    ...shown.map(({ screen }) =>
      h(
        "a",
        {
          href: `#/${screen.id}`,
          class: screen === current?.screen ? "active" : null,
          "aria-current": screen === current?.screen ? "page" : null,
          "data-screen": screen.id,
        },
        t(`nav.${screen.id}`),
      ),
    ),
  );
  nav.querySelector(".active")?.scrollIntoView({ inline: "center", block: "nearest" });
  if (!current) {
    view.append(message("error", t("unavailable")));
    return;
  }
  if (!current.available) {
    view.append(h("div", { class: "card", "data-unavailable": current.screen.id }, t("unavailable")));
    return;
  }
  view.append(h("p", { class: "muted" }, t("loading")));
  try {
    const content = h("div", { "data-screen-view": current.screen.id });
    await current.screen.render(content);
    if (!stale()) view.replaceChildren(content);
  } catch (error) {
    if (!stale()) view.replaceChildren(message("error", t("error.generic")));
  }
}

languageSelect.value = language();
setLanguage(language());
languageSelect.addEventListener("change", () => {
  setLanguage(languageSelect.value);
  route();
});
signOut.addEventListener("click", () => {
  setToken(null);
  location.hash = "";
  route();
});
window.addEventListener("hashchange", route);
window.addEventListener("sw:signed-out", () => {
  signedOutExpired = true;
  location.hash = "";
  route();
});
route();
