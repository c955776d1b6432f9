// Family and welfare level: the members the caller may see, and the five criteria explained.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { date, has, t } from "../i18n.js";

export const id = "family";
export const roles = ["CITIZEN"];
export const requires = ["me"];

export async function render(view) {
  const { me } = await gql("Wallet");
  view.append(h("h2", {}, t("family.title")));
  if (!me.family) {
    view.append(h("div", { class: "card" }, t("family.notfound")));
    return;
  }
  view.append(
    h(
      "div",
      { class: "card" },
      h(
        "ul",
        { class: "plain", "data-members": "" },
        me.family.members.map((m) =>
          h(
            "li",
            { class: "row" },
            h("span", {}, `${m.firstName} ${m.lastName}`, m.isCaller ? ` (${t("family.you")})` : ""),
            h(
              "span",
              { class: "muted", "data-role": m.role },
              has(`role.${m.role}`) ? t(`role.${m.role}`) : t("role.other"),
              m.birthDate ? ` · ${date(m.birthDate)}` : "",
            ),
          ),
        ),
      ),
    ),
  );
  const w = me.welfare;
  if (!w) return;
  view.append(
    h(
      "div",
      { class: "card", "data-welfare": w.level },
      h("div", { class: "row" }, h("h3", {}, t("family.welfare")), h("span", { class: "badge" }, w.levelTitle)),
      h("div", { class: "meter" }, h("span", { style: `width:${w.total}%` })),
      h("p", { class: "muted" }, `${w.total} / 100`),
      h(
        "ul",
        { class: "plain" },
        w.criteria.map((c) =>
          h(
            "li",
            { "data-criterion": c.criterion },
            h("div", { class: "row" }, h("strong", {}, c.title), h("span", {}, c.score)),
            h("div", { class: "meter" }, h("span", { style: `width:${c.score}%` })),
            h("p", { class: "muted" }, c.explanation),
          ),
        ),
      ),
    ),
  );
}
