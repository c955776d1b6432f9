// "Who accessed my data": the audit trail's records about the caller's family.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { dateTime, has, t } from "../i18n.js";

export const id = "access";
export const roles = ["CITIZEN"];
export const requires = ["myDataAccess"];

export async function render(view) {
  view.append(h("h2", {}, t("access.title")));
  const list = h("ul", { class: "plain", "data-access-list": "" });
  const more = h("button", { type: "button", hidden: "" }, t("access.more"));
  let after = null;
  // A page at a time, down to the first record: the server's cursor says where to go on.
  const load = async () => {
    const { myDataAccess } = await gql("MyDataAccess", { after });
    if (!after && !myDataAccess.edges.length) list.append(h("li", { class: "muted", "data-empty": "" }, t("access.empty")));
    for (const { node: a } of myDataAccess.edges) {
      const action = has(`access.${a.action}`) ? t(`access.${a.action}`) : a.action;
      list.append(
        h(
          "li",
          { "data-access": a.operation },
          h("div", { class: "row" }, h("strong", {}, actor(a)), h("span", { class: "muted" }, dateTime(a.at))),
          h("div", {}, `${action}: ${a.what}${a.count > 1 ? ` ×${a.count}` : ""}`),
        ),
      );
    }
    after = myDataAccess.pageInfo.endCursor;
    more.hidden = !myDataAccess.pageInfo.hasNextPage;
  };
  more.addEventListener("click", load);
  await load();
  view.append(h("div", { class: "card" }, list, more));
}

function actor(a) {
  const role = has(`actor.${a.actorRole}`) ? t(`actor.${a.actorRole}`) : a.actorRole;
  return a.actorId ? `${role} ${a.actorId}` : role;
}
