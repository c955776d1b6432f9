// "Who accessed my data": the audit trail's records about the caller's family.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

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
    if (!after && !myDataAccess.edges.length) list.append(h("li", { class: "muted" }, t("access.none")));
    for (const { node: a } of myDataAccess.edges) {
      list.append(
        h(
          "li",
          { "data-access": a.operation },
          h("div", { class: "row" }, h("strong", {}, a.actorId ? `${a.actorRole} ${a.actorId}` : a.actorRole), h("span", { class: "muted" }, new Date(a.at).toLocaleString())),
          h("div", {}, `${a.action}: ${a.what}${a.count > 1 ? ` ×${a.count}` : ""}`),
          h("div", { class: "muted" }, a.operation),
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
