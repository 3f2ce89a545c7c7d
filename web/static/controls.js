// Behaviour of form controls, from a static file: the CSP (script-src 'self', no eval)
// ignores inline handlers (onchange=, onclick=, hx-on), so pages mark controls with data
// attributes and this file acts on them. Every page still works without it.
(function () {
  if (window.retainControls) return; // loaded twice (staff and portal templates): once is enough
  window.retainControls = true;

  // <select data-autosubmit>: choosing an option submits its form (a filter), as the
  // form's own submit button would (which <noscript> shows when this file cannot run).
  document.addEventListener("change", (event) => {
    const field = event.target.closest("[data-autosubmit]");
    if (field && field.form) field.form.requestSubmit();
  });

  // <form data-replace-url="/path?key=…">: the address of this page becomes that one, so
  // going Back to it after submitting shows the same one-time form key, and a second
  // submit replays the first answer instead of doing the same thing twice.
  function replaceUrl() {
    const holder = document.querySelector("[data-replace-url]");
    if (!holder) return;
    const wanted = new URL(holder.getAttribute("data-replace-url"), window.location.href);
    if (wanted.origin !== window.location.origin) return;
    if (wanted.href !== window.location.href) {
      window.history.replaceState(window.history.state, "", wanted.href);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", replaceUrl);
  else replaceUrl();

  // A form drawn again with its problems (`_form.html`): the first field with a problem, or
  // the summary of what was refused when no field has one, takes the focus, and the page
  // scrolls so that it and its message are in view, with the summary above it when both
  // fit. The template's `autofocus` focuses the field without this file, but a browser
  // scrolls only as far as the field itself (its message can stay below the fold).
  const CONTROLS = "input:not([type=hidden]), select, textarea, button";
  const MARGIN = 16;

  function problemTarget() {
    const summary = document.getElementById("form-problems");
    const invalid = document.querySelector('[aria-invalid="true"]');
    if (!invalid) return summary ? { focus: summary, show: [summary], summary: null } : null;
    const focus = invalid.matches(CONTROLS) ? invalid : invalid.querySelector(CONTROLS) || invalid;
    const message = invalid.id ? document.getElementById(invalid.id + "-error") : null;
    const before = summary && summary.compareDocumentPosition(invalid) & Node.DOCUMENT_POSITION_FOLLOWING;
    return { focus, show: [invalid, message].filter(Boolean), summary: before ? summary : null };
  }

  function bringIntoView(target) {
    const boxes = target.show.map((el) => el.getBoundingClientRect());
    let top = Math.min(...boxes.map((b) => b.top));
    const bottom = Math.max(...boxes.map((b) => b.bottom));
    const room = window.innerHeight - 2 * MARGIN;
    if (target.summary) {
      const summaryTop = target.summary.getBoundingClientRect().top;
      if (bottom - summaryTop <= room) top = summaryTop;
    }
    if (bottom - top <= room) window.scrollBy(0, top - MARGIN);
    else target.show[0].scrollIntoView({ block: "start" });
  }

  let target = null;
  let moved = false; // the person scrolled or typed: the page stays where they put it
  function showProblem() {
    target = problemTarget();
    if (!target) return;
    if (target.focus === target.show[0] && !target.focus.matches(CONTROLS)) {
      target.focus.setAttribute("tabindex", "-1"); // the summary: focusable by script only
    }
    target.focus.focus({ preventScroll: true });
    bringIntoView(target);
    for (const name of ["wheel", "touchmove", "keydown", "mousedown"]) {
      window.addEventListener(name, () => { moved = true; }, { once: true, passive: true });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showProblem);
  else showProblem();
  // Once images and charts have taken their room, the field may have moved: again.
  window.addEventListener("load", () => {
    window.requestAnimationFrame(() => {
      if (target && !moved && document.activeElement === target.focus) bringIntoView(target);
    });
  });
})();
