// Medicines dispensed to the caller, with feedback on each dispensing.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { date, money, t } from "../i18n.js";
import { feedbackForm } from "./feedback.js";

export const id = "medicines";
export const roles = ["CITIZEN"];
export const requires = ["myDispensings", "leaveFeedback"];

export async function render(view) {
  const { myDispensings } = await gql("MyDispensings");
  view.append(h("h2", {}, t("medicines.title")));
  const list = h("ul", { class: "plain" });
  if (!myDispensings.length) list.append(h("li", { class: "muted", "data-empty": "" }, t("medicines.empty")));
  for (const d of myDispensings) {
    list.append(
      h(
        "li",
        { "data-dispensing": d.id },
        h("div", { class: "row" }, h("span", {}, `${date(d.dispensedOn)} · ${d.drugName || d.drugCode} × ${d.quantity}`), h("span", { class: "amount" }, money(d.amountTiyn))),
        h("div", { class: "muted" }, `${d.pharmacyName} · ${t(`identity.${d.identityMethod}`)}`),
        feedbackForm("DISPENSING", d.id),
      ),
    );
  }
  view.append(h("div", { class: "card" }, list));
}
