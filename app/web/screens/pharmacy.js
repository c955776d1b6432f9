// The pharmacy: find the patient's e-prescription by its id, check identity, dispense; the
// server checks the drug, the quantity left and the expiry again when dispensing.
import { gql, newKey } from "../api.js";
import { h, message, refusalMessage } from "../dom.js";
import { date, money, t } from "../i18n.js";

export const id = "pharmacy";
export const roles = ["PHARMACY"];
export const requires = ["dispenseMedicine", "pharmacyDispensings", "prescription"];

export async function render(view) {
  const field = (name, attrs = {}) => h("input", { id: `rx-${name}`, name, ...attrs });
  const prescription = field("prescription");
  const drug = field("drug");
  const quantity = field("quantity", { type: "number", min: 1, value: 1 });
  const method = h("select", { id: "rx-identity" }, ["EGOV_QR", "FACE_ID", "FALLBACK"].map((m) => h("option", { value: m }, t(`identity.${m}`))));
  const REASONS = ["NO_SMARTPHONE", "FACE_ID_FAILED", "CAMERA_UNAVAILABLE", "EGOV_UNAVAILABLE"];
  const reasonCode = h("select", { id: "rx-reason-code" }, REASONS.map((r) => h("option", { value: r }, t(`fallback.${r}`))));
  const reason = field("reason");
  const status = h("div", { "data-dispense-status": "" });
  const found = h("div", { "data-prescription": "" });
  const find = async () => {
    const externalId = prescription.value.trim();
    if (!externalId) return;
    const data = await gql("Prescription", { externalId }).catch((e) => ({ error: e }));
    if (data.error) {
      found.replaceChildren(refusalMessage({ code: data.error.code === "NOT_FOUND" ? "NOT_FOUND" : "ERROR" }));
      return;
    }
    const rx = data.prescription;
    drug.value = rx.drugCode;
    quantity.value = Math.max(1, Math.min(rx.remaining, Number(quantity.value) || 1));
    found.replaceChildren(
      message(rx.expired || rx.remaining === 0 ? "error" : "ok",
        `${t("pharmacy.patient")}: ${rx.patientName} · ${drugLabel(rx)} · ${t("pharmacy.remaining")}: ${rx.remaining}/${rx.quantity} · ${t("pharmacy.validUntil")} ${date(rx.validUntil)}${rx.expired ? ` · ${t("pharmacy.expired")}` : ""}`),
    );
  };
  // One key per filled-in form: a retry of the same dispensing is not a second one.
  let key = newKey();
  const dispense = async () => {
    const input = {
      idempotencyKey: key,
      prescriptionId: prescription.value.trim(),
      drugCode: drug.value.trim(),
      quantity: Number(quantity.value),
      identityMethod: method.value,
      identityReasonCode: method.value === "FALLBACK" ? reasonCode.value : null,
      identityReason: method.value === "FALLBACK" ? reason.value.trim() || null : null,
    };
    const data = await gql("DispenseMedicine", { input }).catch((e) => ({ error: e }));
    const result = data.error ? { code: "ERROR", message: data.error.message } : data.dispenseMedicine;
    if (result.__typename === "MedicineDispensed") {
      const d = result.dispensing;
      status.replaceChildren(message("ok", `${t("pharmacy.done")}: ${drugLabel(d)} × ${d.quantity} · ${money(d.amountTiyn)}`));
      key = newKey();
    } else {
      status.replaceChildren(refusalMessage(result));
    }
  };
  const { pharmacyDispensings } = await gql("PharmacyDispensings");
  view.append(
    h("h2", {}, t("pharmacy.title")),
    h(
      "div",
      { class: "card" },
      h("label", { for: "rx-prescription" }, t("pharmacy.prescription")), prescription,
      h("div", { class: "actions" }, h("button", { class: "secondary", "data-find": "", onclick: find }, t("pharmacy.find"))),
      found,
      h("label", { for: "rx-drug" }, t("pharmacy.drug")), drug,
      h("label", { for: "rx-quantity" }, t("pharmacy.quantity")), quantity,
      h("label", { for: "rx-identity" }, t("pharmacy.identity")), method,
      h("label", { for: "rx-reason-code" }, t("pharmacy.reasonCode")), reasonCode,
      h("label", { for: "rx-reason" }, t("pharmacy.reason")), reason,
      h("div", { class: "actions" }, h("button", { "data-dispense": "", onclick: dispense }, t("pharmacy.dispense"))),
      status,
    ),
    h("div", { class: "card" }, h("h3", {}, t("pharmacy.recent")),
      h("ul", { class: "plain" }, pharmacyDispensings.length ? pharmacyDispensings.map((d) =>
        h("li", { class: "row" }, h("span", {}, `${date(d.dispensedOn)} · ${drugLabel(d)} × ${d.quantity} · ${t(`identity.${d.identityMethod}`)}`), h("span", { class: "amount" }, money(d.amountTiyn))),
      ) : h("li", { class: "muted", "data-empty": "" }, t("pharmacy.recentEmpty"))),
    ),
  );
}

// The drug's name with its ATC code (the code is what the pharmacist checks on the pack).
function drugLabel(d) {
  return d.drugName ? `${d.drugName} (${d.drugCode})` : d.drugCode;
}
