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
})();
