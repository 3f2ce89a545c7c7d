// The finance queue (web/templates/finance/queue.html), from a static file (the CSP runs no
// inline script): a "select all" box per section, and a live total of the ticked receipts.
// Each row carries its amount booked in the base currency, in whole minor units
// (data-base-minor), so the total is an exact sum of booked amounts, as the section's total
// and the ROI report sum them: BigInt, never floating point. The page works without this
// file: the boxes stay hidden and the buttons act on whatever is ticked.
(function () {
  if (window.retainQueue) return;
  window.retainQueue = true;

  // 123456n at 2 units, "CNY" → "1,234.56 CNY" (as core.money.format_amount writes it).
  function format(minor, units, currency) {
    const negative = minor < 0n;
    let digits = (negative ? -minor : minor).toString().padStart(units + 1, "0");
    const whole = digits.slice(0, digits.length - units);
    const fraction = units ? "." + digits.slice(digits.length - units) : "";
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "-" : "") + grouped + fraction + " " + currency;
  }

  function boxes(form) {
    return Array.from(form.querySelectorAll("input[type=checkbox][name=ids]"));
  }

  function update(form) {
    const all = boxes(form);
    const ticked = all.filter((box) => box.checked);
    let total = 0n;
    let known = true;
    for (const box of ticked) {
      const minor = box.getAttribute("data-base-minor");
      if (minor === null || minor === "") known = false; // no rate: no amount to add
      else total += BigInt(minor);
    }
    const units = parseInt(form.getAttribute("data-minor-units") || "2", 10);
    const currency = form.getAttribute("data-currency") || "";
    const count = form.querySelector("[data-selected-count]");
    const amount = form.querySelector("[data-selected-amount]");
    if (count) count.textContent = String(ticked.length);
    if (amount) amount.textContent = known ? format(total, units, currency) : "—";
    const every = form.querySelector("[data-select-all]");
    if (every) {
      every.checked = all.length > 0 && ticked.length === all.length;
      every.indeterminate = ticked.length > 0 && ticked.length < all.length;
    }
  }

  document.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-queue]");
    if (!form) return;
    if (event.target.matches("[data-select-all]")) {
      for (const box of boxes(form)) box.checked = event.target.checked;
    }
    update(form);
  });

  function start() {
    for (const form of document.querySelectorAll("form[data-queue]")) {
      for (const hidden of form.querySelectorAll("[data-select-all], [data-selected]")) {
        hidden.hidden = false;
      }
      update(form); // boxes the browser kept ticked (Back, a form drawn again) count too
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
