// Entitlements with reasons: every condition with the family map's value and the verdict.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { money, t } from "../i18n.js";

export const id = "entitlements";
export const roles = ["CITIZEN"];
export const requires = ["me"];

const GOOD = new Set(["RECEIVING", "ELIGIBLE", "OFFERED"]);

export async function render(view) {
  const { me } = await gql("Entitlements");
  view.append(h("h2", {}, t("entitlements.title")));
  for (const { node: e } of me.entitlements?.edges || []) {
    view.append(
      h(
        "div",
        { class: "card", "data-entitlement": e.programme },
        h("div", { class: "row" }, h("strong", {}, e.title), e.amountTiyn > 0 ? h("span", { class: "amount" }, money(e.amountTiyn)) : null),
        h("span", { class: `badge ${GOOD.has(e.status) ? "ok" : "no"}` }, e.statusTitle),
        h(
          "details",
          {},
          h("summary", {}, t("entitlements.why")),
          h("ul", { class: "reasons" }, e.reasons.map((r) => h("li", { class: r.passed ? "passed" : "failed" }, r.text))),
          h("p", { class: "muted" }, e.reference),
        ),
      ),
    );
  }
}
