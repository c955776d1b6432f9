// Offers to accept or decline (each answer carries its own idempotency key), and notices.
import { gql, newKey } from "../api.js";
import { h, message } from "../dom.js";
import { money, t } from "../i18n.js";

export const id = "offers";
export const roles = ["CITIZEN"];
export const requires = ["me", "acceptOffer", "declineOffer"];

export async function render(view) {
  const { me } = await gql("Offers");
  view.append(h("h2", {}, t("offers.title")));
  const offers = me.offers?.edges.map((e) => e.node) || [];
  if (!offers.length) view.append(h("div", { class: "card" }, t("offers.none")));
  for (const offer of offers) view.append(offerCard(offer));
  const notices = me.notifications?.edges.map((e) => e.node) || [];
  if (notices.length) {
    view.append(h("h3", {}, t("offers.notices")));
    for (const n of notices) view.append(h("div", { class: "card" }, h("strong", {}, n.title), h("p", {}, n.body)));
  }
}

function offerCard(offer) {
  const status = h("div", {});
  const card = h(
    "div",
    { class: "card", "data-offer": offer.programme, "data-state": offer.state },
    h("div", { class: "row" }, h("strong", {}, offer.title), h("span", { class: "amount" }, money(offer.amountTiyn))),
    h("span", { class: "badge", "data-offer-state": "" }, offer.state),
    offer.state === "OFFERED" ? h("p", { class: "muted" }, `${t("offers.until")}: ${offer.expiresAt.slice(0, 10)}`) : null,
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
        card.dataset.state = result.offer.state;
        card.querySelector("[data-offer-state]").textContent = result.offer.state;
        card.querySelector(".actions").remove();
        status.replaceChildren(message("ok", t(done)));
      } else {
        for (const b of card.querySelectorAll("button")) b.disabled = false;
        status.replaceChildren(message("error", `${result.code}: ${result.message}`));
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
