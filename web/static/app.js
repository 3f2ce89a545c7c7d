// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = button.parentElement.querySelector(".copy-source");
  if (!source) return;
  source.select();
  const done = () => { button.textContent = button.dataset.copied || "Copied"; };
  // Refused (no permission, page not focused): the text is selected, so copy it that way.
  const fallback = () => { if (document.execCommand("copy")) done(); };
  if (navigator.clipboard) navigator.clipboard.writeText(source.value).then(done, fallback);
  else fallback();
});
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
// A menu in the top bar closes when the click lands elsewhere (another menu, the page) or
// on Escape, as menus do.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.nav-group[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.nav-group[open]").forEach((menu) => {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  });
});
