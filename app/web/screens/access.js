// "Who accessed my data": the audit trail's records about the caller's family.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

export const id = "access";
export const roles = ["CITIZEN"];
export const requires = ["myDataAccess"];

export async function render(view) {
  const { myDataAccess } = await gql("MyDataAccess");
  view.append(h("h2", {}, t("access.title")));
  const list = h("ul", { class: "plain", "data-access-list": "" });
  if (!myDataAccess.length) list.append(h("li", { class: "muted" }, t("access.none")));
  for (const a of myDataAccess) {
    list.append(
      h(
        "li",
        { "data-access": a.operation },
        h("div", { class: "row" }, h("strong", {}, a.actorId ? `${a.actorRole} ${a.actorId}` : a.actorRole), h("span", { class: "muted" }, new Date(a.at).toLocaleString())),
        h("div", {}, `${a.action}: ${a.what}`),
        h("div", { class: "muted" }, a.operation),
      ),
    );
  }
  view.append(h("div", { class: "card" }, list));
}
