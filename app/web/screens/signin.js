// Sign-in. In dev the demo tokens come from /app/dev-tokens (the local dev issuer); in prod
// that route is 404 and the app signs in with the eGov identity provider, whose token the
// client sends as it is. A token can also be pasted (e.g. from `socialwallet token`).
import { setToken } from "../api.js";
import { h, message } from "../dom.js";
import { t } from "../i18n.js";

export async function render(view, signedIn) {
  const choose = (value) => {
    setToken(value);
    signedIn();
  };
  const card = h("div", { class: "card" }, h("h2", {}, t("signin.title")));
  view.append(card);
  const response = await fetch(new URL("../dev-tokens", import.meta.url)).catch(() => null);
  if (response?.ok) {
    const tokens = await response.json();
    card.append(h("p", { class: "muted" }, t("signin.dev")));
    card.append(h("h3", {}, t("signin.citizen")));
    tokens.citizens.forEach((citizen, index) =>
      card.append(
        h("p", {}, h("button", { class: "secondary", "data-citizen": index, onclick: () => choose(citizen.token) }, citizen.name)),
      ),
    );
    card.append(
      h(
        "div",
        { class: "actions" },
        h("button", { "data-role": "school", onclick: () => choose(tokens.school) }, t("signin.school")),
        h("button", { "data-role": "pharmacy", onclick: () => choose(tokens.pharmacy) }, t("signin.pharmacy")),
      ),
    );
  } else {
    card.append(message("error", t("signin.nodev")));
  }
  const pasted = h("textarea", { id: "pasted-token", "aria-label": t("signin.paste") });
  card.append(
    h("label", { for: "pasted-token" }, t("signin.paste")),
    pasted,
    h("p", {}, h("button", { onclick: () => pasted.value.trim() && choose(pasted.value.trim()) }, t("signin.go"))),
  );
}
