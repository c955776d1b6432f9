// Entitlements with reasons, grouped by whose they are: the whole family first, then each
// member by name. What is due comes first, with its conditions one tap away; what is not is
// folded into one <details> per person, each programme with the conditions it failed.
import { gql } from "../api.js";
import { h } from "../dom.js";
import { date, money, t } from "../i18n.js";

export const id = "entitlements";
export const roles = ["CITIZEN"];
export const requires = ["me"];

const GOOD = new Set(["RECEIVING", "ELIGIBLE", "OFFERED"]);
const ORDER = { RECEIVING: 0, OFFERED: 1, ELIGIBLE: 2 };

export async function render(view) {
  const { me } = await gql("Entitlements");
  view.append(h("h2", {}, t("entitlements.title")));
  const entitlements = me.entitlements?.edges.map((e) => e.node) || [];
  if (!entitlements.length) {
    view.append(h("div", { class: "card muted", "data-empty": "" }, t("entitlements.none")));
    return;
  }
  const names = new Map((me.family?.members || []).map((m) => [m.personId, `${m.firstName} ${m.lastName}`]));
  const groups = new Map();
  for (const e of entitlements) {
    const key = e.personId ?? "family";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(e);
  }
  // The family's own first, then members with something due, then the rest, in family order.
  const members = (me.family?.members || []).map((m) => m.personId);
  const rank = (key) => (key === "family" ? -1 : members.indexOf(key) === -1 ? members.length : members.indexOf(key));
  const keys = [...groups.keys()].sort(
    (a, b) =>
      Number(!groups.get(a).some((e) => GOOD.has(e.status))) - Number(!groups.get(b).some((e) => GOOD.has(e.status))) ||
      rank(a) - rank(b),
  );
  for (const key of keys) view.append(personGroup(key, key === "family" ? t("entitlements.family") : names.get(key) || "", groups.get(key)));
}

function personGroup(key, name, entitlements) {
  const due = entitlements.filter((e) => GOOD.has(e.status)).sort((a, b) => ORDER[a.status] - ORDER[b.status]);
  const notDue = entitlements.filter((e) => !GOOD.has(e.status));
  return h(
    "section",
    { class: "card", "data-person": key, "aria-label": name },
    h("h3", {}, name),
    due.length ? null : h("p", { class: "muted" }, t("entitlements.nothingEligible")),
    due.map(dueItem),
    notDue.length
      ? h(
          "details",
          { class: "not-eligible", "data-not-eligible": key },
          h("summary", {}, `${t("entitlements.notEligible")} (${notDue.length})`),
          h("ul", { class: "plain" }, notDue.map(notDueItem)),
        )
      : null,
  );
}

function dueItem(e) {
  const period = e.periodStart && e.periodEnd && e.periodStart !== e.periodEnd ? `${date(e.periodStart)} – ${date(e.periodEnd)}` : null;
  return h(
    "div",
    { class: "entitlement", "data-entitlement": e.programme, "data-status": e.status },
    h("div", { class: "row" }, h("strong", {}, e.title), e.amountTiyn > 0 ? h("span", { class: "amount" }, money(e.amountTiyn)) : null),
    h("span", { class: "badge ok" }, e.statusTitle),
    period ? h("p", { class: "muted" }, period) : null,
    h(
      "details",
      {},
      h("summary", {}, t("entitlements.why")),
      h("ul", { class: "reasons" }, e.reasons.map((r) => h("li", { class: r.passed ? "passed" : "failed" }, r.text))),
      h("p", { class: "muted" }, e.reference),
    ),
  );
}

function notDueItem(e) {
  const failed = e.reasons.filter((r) => !r.passed);
  return h(
    "li",
    { "data-entitlement": e.programme, "data-status": e.status },
    h("strong", {}, e.title),
    h("ul", { class: "reasons" }, (failed.length ? failed : e.reasons).map((r) => h("li", { class: r.passed ? "passed" : "failed" }, r.text))),
  );
}
