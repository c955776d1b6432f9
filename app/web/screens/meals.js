// School meals: each pupil's dynamic QR code (an actual QR image of the token, drawn by the
// vendored qrcode-generator), the meal history, and feedback on each meal.
import { gql } from "../api.js";
import { h, message } from "../dom.js";
import { money, t } from "../i18n.js";
import { feedbackForm } from "./feedback.js";

export const id = "meals";
export const roles = ["CITIZEN"];
export const requires = ["myPupils", "mealQrToken", "childMeals", "leaveFeedback"];

export async function render(view) {
  const { myPupils } = await gql("MyPupils");
  view.append(h("h2", {}, t("meals.title")));
  if (!myPupils.length) view.append(h("div", { class: "card" }, t("meals.none")));
  for (const pupil of myPupils) view.append(await pupilCard(pupil));
}

async function pupilCard(pupil) {
  const qrBox = h("div", { class: "qr" });
  const history = h("ul", { class: "plain", "data-meal-history": pupil.childId });
  const card = h(
    "div",
    { class: "card", "data-pupil": pupil.childId },
    h("div", { class: "row" }, h("strong", {}, pupil.firstName), h("span", { class: "muted" }, pupil.schoolGrade ? `${pupil.schoolGrade}` : "")),
    pupil.voucher
      ? h("p", { class: "muted" }, money(pupil.voucher.amountTiyn))
      : h("span", { class: "badge no" }, t("meals.noVoucher")),
    pupil.voucher ? h("div", { class: "actions" }, h("button", { "data-show-qr": "", onclick: () => showQr(pupil, qrBox) }, t("meals.qr"))) : null,
    qrBox,
    h("h3", {}, t("meals.history")),
    history,
  );
  // A page of 100 at a time, until the connection says there is no more.
  const childMeals = [];
  for (let after = null, more = true; more; ) {
    const page = (await gql("ChildMeals", { childId: pupil.childId, after })).childMeals;
    childMeals.push(...page.edges.map((edge) => edge.node));
    ({ hasNextPage: more, endCursor: after } = page.pageInfo);
  }
  if (!childMeals.length) history.append(h("li", { class: "muted" }, t("meals.noHistory")));
  for (const meal of childMeals) {
    history.append(
      h(
        "li",
        { "data-meal": meal.id },
        h("div", { class: "row" }, h("span", {}, `${meal.servedOn} · ${t(`meal.${meal.mealType}`)}`), h("span", { class: "amount" }, money(meal.priceTiyn))),
        h("div", { class: "muted" }, meal.schoolName),
        feedbackForm("MEAL", meal.id),
      ),
    );
  }
  return card;
}

async function showQr(pupil, box) {
  const data = await gql("MealQrToken", { childId: pupil.childId }).catch((e) => ({ error: e }));
  const result = data.error ? { code: "ERROR", message: data.error.message } : data.mealQrToken;
  if (result.__typename !== "MealQrCode") {
    box.replaceChildren(message("error", `${result.code}: ${result.message}`));
    return;
  }
  // Type 0 lets the encoder pick the smallest version that holds the token.
  const qr = globalThis.qrcode(0, "M");
  qr.addData(result.token);
  qr.make();
  box.replaceChildren(
    h("img", { src: qr.createDataURL(8, 16), alt: "QR", "data-qr-token": result.token }),
    h("strong", {}, result.schoolName),
    h("p", { class: "muted" }, `${t("meals.qrHint")} ${new Date(result.expiresAt).toLocaleTimeString()}`),
    h("div", { class: "token" }, result.token),
  );
}
