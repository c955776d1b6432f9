// State spending on the family this year, by category and by month, drawn as SVG bars.
import { gql } from "../api.js";
import { h, svg } from "../dom.js";
import { money, month, t } from "../i18n.js";

export const id = "spending";
export const roles = ["CITIZEN"];
export const requires = ["me"];

export async function render(view) {
  const year = new Date().getUTCFullYear();
  const { me } = await gql("Spending", { year });
  const s = me.spending;
  view.append(h("h2", {}, t("spending.title")));
  if (!s || Number(s.totalTiyn) === 0) view.append(h("div", { class: "card muted", "data-empty": "" }, t("spending.none")));
  if (!s) return;
  view.append(
    h(
      "div",
      { class: "card" },
      h("div", { class: "row" }, h("span", {}, `${t("spending.total")} ${year}`), h("span", { class: "amount", "data-total": s.totalTiyn }, money(s.totalTiyn))),
      h("ul", { class: "plain" }, s.services.map((x) =>
        h("li", { class: "row", "data-service": x.reason }, h("span", {}, t(x.reason === "MEAL_SERVED" ? "spending.meals" : "spending.medicines")), h("strong", {}, x.count)),
      )),
    ),
    h("div", { class: "card" }, h("h3", {}, t("spending.byCategory")), categoryChart(s.byCategory, t("spending.byCategory"))),
    h("div", { class: "card" }, h("h3", {}, t("spending.byMonth")), monthChart(s.byMonth, t("spending.byMonth"))),
  );
}

// Horizontal bars, one per category with spending, longest = the largest amount.
function categoryChart(totals, label) {
  const rows = totals.filter((c) => Number(c.amountTiyn) > 0);
  const max = Math.max(1, ...rows.map((c) => Number(c.amountTiyn)));
  const width = 340;
  const rowHeight = 40;
  return svg(
    "svg",
    { class: "chart", "data-chart": "category", viewBox: `0 0 ${width} ${Math.max(rows.length, 1) * rowHeight}`, width: "100%", role: "img", "aria-label": `${label}: ${rows.map((c) => `${c.title} ${money(c.amountTiyn)}`).join(", ")}` },
    rows.map((c, i) => {
      const length = Math.max(2, (Number(c.amountTiyn) / max) * (width - 10));
      return svg(
        "g",
        { "data-category": c.category, "data-amount": c.amountTiyn },
        svg("text", { x: 0, y: i * rowHeight + 12 }, `${c.title} · ${money(c.amountTiyn)}`),
        svg("rect", { class: `bar-rect ${c.category}`, x: 0, y: i * rowHeight + 17, width: length, height: 14, rx: 3 }),
      );
    }),
  );
}

// Twelve vertical bars, January to December.
function monthChart(totals, label) {
  const byMonth = new Map(totals.map((m) => [m.month, Number(m.amountTiyn)]));
  const max = Math.max(1, ...byMonth.values());
  const barWidth = 22;
  const gap = 6;
  const height = 120;
  const bars = [];
  for (let m = 1; m <= 12; m++) {
    const value = byMonth.get(m) || 0;
    const barHeight = value ? Math.max(2, (value / max) * height) : 0;
    const x = (m - 1) * (barWidth + gap);
    bars.push(
      svg(
        "g",
        { "data-month": m, "data-amount": value },
        svg("title", {}, `${month(m)}: ${money(value)}`),
        svg("rect", { class: "bar-rect", x, y: height - barHeight, width: barWidth, height: barHeight, rx: 3 }),
        svg("text", { x: x + barWidth / 2, y: height + 14, "text-anchor": "middle" }, month(m)),
      ),
    );
  }
  const spoken = [...byMonth.entries()].filter(([, v]) => v > 0).map(([m, v]) => `${month(m)} ${money(v)}`).join(", ");
  return svg("svg", { class: "chart", "data-chart": "month", viewBox: `0 0 ${12 * (barWidth + gap)} ${height + 20}`, width: "100%", role: "img", "aria-label": `${label}: ${spoken}` }, bars);
}
