// Offers to accept or decline (each answer carries its own idempotency key), and notices.
import { gql, newKey } from "../api.js";
import { h, message, refusalMessage } from "../dom.js";
import { date, money, t } from "../i18n.js";

export const id = "offers";
export const roles = ["CITIZEN"];
export const requires = ["me", "acceptOffer", "declineOffer", "registerBankAccount"];

export async function render(view) {
  const { me } = await gql("Offers");
  view.append(h("h2", {}, t("offers.title")));
  const offers = me.offers?.edges.map((e) => e.node) || [];
  if (!offers.length) view.append(h("div", { class: "card muted", "data-empty": "" }, t("offers.empty")));
  for (const offer of offers) view.append(offerCard(offer, view));
  if (offers.some((o) => o.state === "NEEDS_BANK_ACCOUNT")) view.append(bankAccountForm(view) || "");
  const notices = me.notifications?.edges.map((e) => e.node) || [];
  if (notices.length) {
    view.append(h("h3", {}, t("offers.notices")));
    for (const n of notices) view.append(h("div", { class: "card" }, h("strong", {}, n.title), h("p", {}, n.body)));
  }
}

// Consent to a cash benefit for someone with no account on record waits for an IBAN; once
// given, the offers waiting for it are paid.
function bankAccountForm(view) {
  if (view.querySelector("[data-bank-form]")) return null;
  const iban = h("input", { id: "iban", autocomplete: "off", placeholder: "KZ00 0000 0000 0000 0000" });
  const status = h("div", {});
  const key = newKey();
  const form = h(
    "form",
    { class: "card", "data-bank-form": "" },
    h("h3", {}, t("offers.bank")),
    h("p", { class: "muted" }, t("offers.bankWhy")),
    h("label", { for: "iban" }, "IBAN"),
    iban,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("offers.bankSave"))),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = await gql("RegisterBankAccount", { iban: iban.value, idempotencyKey: key }).catch((e) => ({ error: e }));
    const result = data.error ? { code: "ERROR", message: data.error.message } : data.registerBankAccount;
    if (result.__typename !== "BankAccountRegistered") {
      status.replaceChildren(refusalMessage(result));
      return;
    }
    for (const paid of result.paidOffers) {
      const card = view.querySelector(`[data-offer-id="${CSS.escape(paid.id)}"]`);
      if (!card) continue;
      showState(card, paid.state);
    }
    form.replaceChildren(message("ok", `${t("offers.bankSaved")} ${result.ibanMasked}`));
  });
  return form;
}

function showState(card, state) {
  card.dataset.state = state;
  card.querySelector("[data-offer-state]").textContent = t(`offerState.${state}`);
}

function offerCard(offer, view) {
  const status = h("div", {});
  const card = h(
    "div",
    { class: "card", "data-offer": offer.programme, "data-offer-id": offer.id, "data-kind": offer.kind, "data-state": offer.state },
    h("div", { class: "row" }, h("strong", {}, offer.title), h("span", { class: "amount" }, money(offer.amountTiyn))),
    h("span", { class: "badge", "data-offer-state": "" }, t(`offerState.${offer.state}`)),
    offer.state === "OFFERED" ? h("p", { class: "muted" }, `${t("offers.until")}: ${date(offer.expiresAt)}`) : null,
    status,
  );
  if (offer.state === "OFFERED") {
    // One key per screen visit: a double tap or a retry repeats the same request.
    const key = newKey();
    const answer = async (operation, field, done) => {
      for (const b of card.querySelectorAll("button")) b.disabled = true;
      const data = await gql(operation, { offerId: offer.id, idempotencyKey: key }).catch((e) => ({ error: e }));
      const result = data.error ? { code: "ERROR", message: data.error.message } : data[field];
      if (result.offer) {
        showState(card, result.offer.state);
        card.querySelector(".actions").remove();
        status.replaceChildren(message("ok", t(done)));
        if (result.offer.state === "NEEDS_BANK_ACCOUNT") {
          const form = bankAccountForm(view);
          if (form) view.append(form);
        }
      } else {
        for (const b of card.querySelectorAll("button")) b.disabled = false;
        status.replaceChildren(refusalMessage(result));
      }
    };
    card.append(
      h(
        "div",
        { class: "actions" },
        h("button", { "data-accept": "", onclick: () => answer("AcceptOffer", "acceptOffer", "offers.accepted") }, t("offers.accept")),
        h("button", { class: "secondary", "data-decline": "", onclick: () => answer("DeclineOffer", "declineOffer", "offers.declined") }, t("offers.decline")),
      ),
    );
  }
  return card;
}
