// The feedback form shared by meals and medicines: 1-5 stars and a comment, once per event.
// No star is chosen beforehand: a preset rating would be counted for those who never chose.
import { gql } from "../api.js";
import { h, message, refusalMessage } from "../dom.js";
import { t } from "../i18n.js";

let formCount = 0;

export function feedbackForm(eventKind, eventId) {
  const name = `rating-${++formCount}`;
  const commentId = `${name}-comment`;
  const comment = h("input", { id: commentId, type: "text", "data-feedback-comment": "" });
  const status = h("div", {});
  const form = h(
    "form",
    { "data-feedback": eventId },
    h(
      "fieldset",
      { class: "stars" },
      h("legend", {}, t("feedback.rate")),
      [1, 2, 3, 4, 5].map((n) =>
        h(
          "label",
          {},
          h("input", { type: "radio", name, value: n, "aria-label": t("feedback.stars", { n }), "data-star": n }),
          h("span", { "aria-hidden": "true" }, ` ${n}★`),
        ),
      ),
    ),
    h("label", { for: commentId }, t("feedback.comment")),
    comment,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("feedback.send"))),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.querySelector(`input[name="${name}"]:checked`);
    if (!chosen) {
      status.replaceChildren(message("error", t("feedback.pick")));
      form.querySelector(`input[name="${name}"]`).focus();
      return;
    }
    const input = { eventKind, eventId, rating: Number(chosen.value), comment: comment.value || null };
    const data = await gql("LeaveFeedback", { input }).catch((e) => ({ error: e }));
    const result = data.error ? { code: "ERROR", message: data.error.message } : data.leaveFeedback;
    if (result.__typename === "FeedbackLeft") {
      form.replaceChildren(message("ok", t("feedback.thanks")));
    } else {
      status.replaceChildren(refusalMessage(result));
    }
  });
  return form;
}
