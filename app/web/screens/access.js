// "Who accessed my data": the audit trail's records about the caller's family.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { dateTime, has, t } from "../i18n.js";

export const id = "access";
export const roles = ["CITIZEN"];
export const requires = ["myDataAccess"];

export async function render(view) {
  const { myDataAccess } = await gql("MyDataAccess");
  view.append(h("h2", {}, t("access.title")));
  const list = h("ul", { class: "plain", "data-access-list": "" });
  if (!myDataAccess.length) list.append(h("li", { class: "muted", "data-empty": "" }, t("access.empty")));
  for (const a of myDataAccess) {
    list.append(
      h(
        "li",
        { "data-access": a.operation },
        h("div", { class: "row" }, h("strong", {}, actor(a)), h("span", { class: "muted" }, dateTime(a.at))),
        h("div", {}, `${has(`access.${a.action}`) ? t(`access.${a.action}`) : a.action}: ${a.what}`),
      ),
    );
  }
  view.append(h("div", { class: "card" }, list));
}

function actor(a) {
  const role = has(`actor.${a.actorRole}`) ? t(`actor.${a.actorRole}`) : a.actorRole;
  return a.actorId ? `${role} ${a.actorId}` : role;
}
