// School meals: each pupil's dynamic QR code (an actual QR image of the token, drawn by the
// vendored qrcode-generator) with a countdown, renewed by itself when it runs out; the meal
// history, and feedback on each meal.
import { gql } from "../api.js";
import { h, refusalMessage } from "../dom.js";
import { date, money, t } from "../i18n.js";
import { feedbackForm } from "./feedback.js";

export const id = "meals";
export const roles = ["CITIZEN"];
export const requires = ["myPupils", "mealQrToken", "childMeals", "leaveFeedback"];

export async function render(view) {
  const { myPupils } = await gql("MyPupils");
  view.append(h("h2", {}, t("meals.title")));
  if (!myPupils.length) view.append(h("div", { class: "card muted", "data-empty": "" }, t("meals.empty")));
  for (const pupil of myPupils) view.append(await pupilCard(pupil));
}

async function pupilCard(pupil) {
  const qrBox = h("div", { class: "qr" });
  const history = h("ul", { class: "plain", "data-meal-history": pupil.childId });
  const card = h(
    "div",
    { class: "card", "data-pupil": pupil.childId },
    h("div", { class: "row" }, h("strong", {}, pupil.firstName), h("span", { class: "muted" }, pupil.schoolGrade ? t("meals.grade", { n: pupil.schoolGrade }) : "")),
    pupil.voucher
      ? h("p", { class: "muted" }, `${t("meals.perYear")}: ${money(pupil.voucher.amountTiyn)}`)
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
  if (!childMeals.length) history.append(h("li", { class: "muted", "data-empty": "" }, t("meals.historyEmpty")));
  for (const meal of childMeals) {
    history.append(
      h(
        "li",
        { "data-meal": meal.id },
        h("div", { class: "row" }, h("span", {}, `${date(meal.servedOn)} · ${t(`meal.${meal.mealType}`)}`), h("span", { class: "amount" }, money(meal.priceTiyn))),
        h("div", { class: "muted" }, meal.schoolName),
        feedbackForm("MEAL", meal.id),
      ),
    );
  }
  return card;
}

// Renewed by itself for a few minutes at most: a phone left on the screen should not ask for
// codes (each one audited) all day.
const MAX_RENEWALS = 5;

async function showQr(pupil, box, renewals = 0) {
  box.dataset.generation = String(Number(box.dataset.generation || 0) + 1);
  const generation = box.dataset.generation;
  const data = await gql("MealQrToken", { childId: pupil.childId }).catch((e) => ({ error: e }));
  const result = data.error ? { code: "ERROR", message: data.error.message } : data.mealQrToken;
  if (box.dataset.generation !== generation) return; // a newer code was asked for since
  if (result.__typename !== "MealQrCode") {
    box.replaceChildren(refusalMessage(result));
    return;
  }
  // Type 0 lets the encoder pick the smallest version that holds the token.
  const qr = globalThis.qrcode(0, "M");
  qr.addData(result.token);
  qr.make();
  // Counted on this device's clock from when the code arrived: a phone's clock that is off
  // from the server's would otherwise show a wrong countdown or renew in a loop.
  const deadline = Date.now() + result.validForSeconds * 1000;
  const countdown = h("p", { class: "countdown", "data-qr-countdown": "", role: "timer", "aria-live": "off" });
  box.replaceChildren(
    h("img", { src: qr.createDataURL(8, 16), alt: t("meals.qrAlt"), "data-qr-token": result.token }),
    h("strong", {}, result.schoolName),
    countdown,
    h("p", { class: "muted" }, `${t("meals.qrHint")} ${t("meals.qrRenewed")}`),
  );
  const tick = () => {
    if (!box.isConnected || box.dataset.generation !== generation) return clearInterval(timer);
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    countdown.dataset.seconds = String(left);
    countdown.textContent = left > 0 ? t("meals.qrLeft", { s: left }) : t("meals.qrRenewing");
    if (left === 0) {
      clearInterval(timer);
      if (renewals < MAX_RENEWALS) showQr(pupil, box, renewals + 1);
      else box.replaceChildren(h("button", { "data-show-qr-again": "", onclick: () => showQr(pupil, box) }, t("meals.qr")));
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
}
