// The portal's copy and share buttons (a static file: the CSP allows no inline script).
document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy-from]");
  if (copy) {
    const source = document.getElementById(copy.dataset.copyFrom);
    if (!source) return;
    source.select();
    const done = () => { copy.textContent = copy.dataset.done || copy.textContent; };
    if (navigator.clipboard) navigator.clipboard.writeText(source.value).then(done, () => {});
    return;
  }
  const share = event.target.closest("[data-share-from]");
  if (share && navigator.share) {
    const text = document.getElementById(share.dataset.shareFrom)?.value || "";
    navigator.share({ text, url: share.dataset.shareUrl }).catch(() => {});
  }
});
if (navigator.share) {
  document.querySelectorAll("[data-share-from]").forEach((button) => { button.hidden = false; });
}
