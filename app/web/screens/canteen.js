// The canteen: paste (or scan) a child's QR token, or pick a pupil from the school's list,
// and serve the meal; the day's meals come from the server (every till of the school).
import { gql, newKey } from "../api.js";
import { h, message, refusalMessage } from "../dom.js";
import { date, money, t } from "../i18n.js";

export const id = "canteen";
export const roles = ["SCHOOL"];
export const requires = ["redeemMeal", "schoolPupils", "schoolMeals"];

const today = () => new Date().toISOString().slice(0, 10);

export async function render(view) {
  const tokenInput = h("textarea", { id: "qr-token", "data-qr-input": "" });
  const mealType = h("select", { id: "meal-type" }, ["LUNCH", "BREAKFAST"].map((m) => h("option", { value: m }, t(`meal.${m}`))));
  const servedOn = h("input", { id: "served-on", type: "date", value: today() });
  const status = h("div", { "data-redeem-status": "" });
  const todayList = h("ul", { class: "plain", "data-today-meals": "" });
  // The list shows the day the canteen is serving (today unless another date is chosen).
  const showToday = async () => {
    // A page of 100 at a time, until the connection says there is no more.
    const schoolMeals = [];
    for (let after = null, more = true; more; ) {
      const page = (await gql("SchoolMeals", { on: servedOn.value || null, after })).schoolMeals;
      schoolMeals.push(...page.edges.map((edge) => edge.node));
      ({ hasNextPage: more, endCursor: after } = page.pageInfo);
    }
    todayList.replaceChildren(
      ...schoolMeals.map((m) => h("li", { class: "row", "data-served": m.id }, h("span", {}, `${m.firstName} ${m.lastName} · ${t(`meal.${m.mealType}`)} · ${date(m.servedOn)}`), h("span", { class: "amount" }, money(m.priceTiyn)))),
    );
    if (!schoolMeals.length) todayList.append(h("li", { class: "muted", "data-empty": "" }, t("canteen.todayEmpty")));
  };
  servedOn.addEventListener("change", showToday);

  const { schoolPupils } = await gql("SchoolPupils");
  const names = new Map(schoolPupils.map((p) => [p.childId, `${p.firstName} ${p.lastName}`]));
  const redeem = async (input, name) => {
    const variables = { input: { idempotencyKey: newKey(), mealType: mealType.value, servedOn: servedOn.value || null, ...input } };
    const data = await gql("RedeemMeal", variables).catch((e) => ({ error: e }));
    const result = data.error ? { code: "ERROR", message: data.error.message } : data.redeemMeal;
    if (result.__typename === "MealRedeemed") {
      const meal = result.meal;
      const who = names.get(meal.childId) || name;
      status.replaceChildren(message("ok", `${t("canteen.served")}: ${who} · ${money(meal.priceTiyn)}`));
      tokenInput.value = "";
      await showToday();
    } else {
      status.replaceChildren(refusalMessage(result));
    }
  };

  view.append(
    h("h2", {}, t("canteen.title")),
    h(
      "div",
      { class: "card" },
      h("label", { for: "qr-token" }, t("canteen.token")),
      tokenInput,
      h("label", { for: "meal-type" }, t("canteen.mealType")),
      mealType,
      h("label", { for: "served-on" }, t("canteen.servedOn")),
      servedOn,
      h("div", { class: "actions" }, h("button", { "data-redeem": "", onclick: () => tokenInput.value.trim() && redeem({ qrToken: tokenInput.value.trim() }, "QR") }, t("canteen.redeem"))),
      status,
    ),
    h("div", { class: "card" }, h("h3", {}, t("canteen.today")), todayList),
    h(
      "div",
      { class: "card" },
      h("h3", {}, t("canteen.pupils")),
      h("ul", { class: "plain" }, schoolPupils.length ? schoolPupils.map((p) =>
        h("li", { class: "row" }, h("span", {}, names.get(p.childId), p.schoolGrade ? ` · ${t("meals.grade", { n: p.schoolGrade })}` : ""),
          h("button", { class: "secondary", "data-serve-pupil": p.childId, "aria-label": t("canteen.serveFor", { name: names.get(p.childId) }), onclick: () => redeem({ childId: p.childId }, names.get(p.childId)) }, t("canteen.redeem"))),
      ) : h("li", { class: "muted", "data-empty": "" }, t("canteen.pupilsEmpty"))),
    ),
  );
  await showToday();
}
