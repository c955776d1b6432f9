// The feedback form shared by meals and medicines: 1-5 stars and a comment, once per event.
import { gql } from "../api.js";
import { h, message } from "../dom.js";
import { t } from "../i18n.js";

let formCount = 0;

export function feedbackForm(eventKind, eventId) {
  const name = `rating-${++formCount}`;
  const comment = h("input", { type: "text", "aria-label": t("feedback.comment"), placeholder: t("feedback.comment"), "data-feedback-comment": "" });
  const status = h("div", {});
  const form = h(
    "form",
    { "data-feedback": eventId },
    h("div", { class: "stars", role: "radiogroup", "aria-label": t("feedback.rate") },
      [1, 2, 3, 4, 5].map((n) =>
        h("label", {}, h("input", { type: "radio", name, value: n, checked: n === 5, style: "width:auto" }), ` ${n}★`),
      ),
    ),
    comment,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("feedback.send"))),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rating = Number(form.querySelector(`input[name="${name}"]:checked`).value);
    const input = { eventKind, eventId, rating, comment: comment.value || null };
    const data = await gql("LeaveFeedback", { input }).catch((e) => ({ error: e }));
    const result = data.error ? { code: "ERROR", message: data.error.message } : data.leaveFeedback;
    if (result.__typename === "FeedbackLeft") {
      form.replaceChildren(message("ok", t("feedback.thanks")));
    } else {
      status.replaceChildren(message("error", `${result.code}: ${result.message}`));
    }
  });
  return form;
}
