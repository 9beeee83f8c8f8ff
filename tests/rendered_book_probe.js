// What a reader of one page of the built book meets, measured in the page once it is typeset.
// tests/test_rendered_book.py evaluates this file (an async arrow function) and reads the
// object it returns. Elements folded away (a hidden solution) are laid out and measured too.
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));

  const SLACK = 1;  // px of rounding allowed
  const article = document.querySelector("article.bd-article") || document.body;
  const shown = (el) => el.getClientRects().length > 0;
  const describe = (el) => {
    const section = el.closest("section[id]");
    const text = el.tagName === "IMG" ? (el.getAttribute("alt") || el.src).split("/").pop()
      : (el.textContent || "").replace(/\s+/g, " ").trim();
    return `${section ? "#" + section.id : "(page)"}: ${text.slice(0, 70)}`;
  };
  const scrolls = (el) => {
    const style = getComputedStyle(el);
    return ["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + SLACK;
  };
  // A scroll cue: the box that scrolls draws its scrollbar (it takes room under the content).
  const cued = (el) => {
    const style = getComputedStyle(el);
    const borders = parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
    return el.offsetHeight - el.clientHeight - borders > 0;
  };
  // The part of the window where `el` can be seen: clipped by every ancestor that hides overflow.
  const visible = (el) => {
    let left = 0, right = document.documentElement.clientWidth, box = null;
    for (let p = el.parentElement; p && p !== document.documentElement; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.overflowX !== "visible") {
        const r = p.getBoundingClientRect();
        left = Math.max(left, r.left + p.clientLeft);
        right = Math.min(right, r.left + p.clientLeft + p.clientWidth);
        if (box === null && ["auto", "scroll"].includes(style.overflowX)) box = p;
      }
    }
    return { left, right, box };
  };

  // Display equations: the typeset formula must fit where it can be seen, or scroll with a cue.
  const equations = [];
  const clipped = [];
  const scrolled = [];  // fit only by scrolling sideways, with a visible scrollbar
  for (const div of article.querySelectorAll("div.math")) {
    if (!shown(div)) continue;
    const math = div.querySelector("mjx-container mjx-math") || div;
    const ink = math.getBoundingClientRect();
    const seen = visible(math);
    const label = div.querySelector(".eqno");
    const what = `${describe(div.closest("section[id]") || div).split(":")[0]} eq. ${
      label ? label.textContent.replace(/\D+/g, "") : "(unnumbered)"}`;
    equations.push(what);
    if (ink.left >= seen.left - SLACK && ink.right <= seen.right + SLACK) continue;
    const box = seen.box || math.parentElement;
    if (seen.box && scrolls(box) && cued(box)) {
      scrolled.push(`${what}: ${Math.round(ink.width)} px of formula in a ${
        Math.round(seen.right - seen.left)} px box that scrolls`);
      continue;
    }
    clipped.push(`${what}: ${Math.round(ink.width)} px of formula, ${
      Math.round(Math.max(0, seen.right - seen.left))} px seen`);
  }

  // Raw TeX: math MathJax did not typeset, a TeX error box, or TeX commands left in the prose.
  const rawTex = [];
  for (const el of document.querySelectorAll(".math, mjx-merror")) {
    if (el.matches("mjx-merror") || !el.querySelector("mjx-container")) {
      rawTex.push(describe(el));
    }
  }
  const skip = "script, style, pre, code, mjx-container, .math, textarea, .highlight";
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const texCommand = /\\(?:begin|end|frac|mathbb|mathcal|mathrm|left|right|sum|int|log|mu|sigma|theta|phi|alpha|beta|[()[\]])(?![a-z])|\$\$/;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(skip)) continue;
    if (texCommand.test(node.textContent)) rawTex.push(describe(node.parentElement));
  }

  // Images: each must have loaded; in the text, each needs a caption and alt text of its own.
  const images = [];
  for (const img of document.querySelectorAll("img")) {
    const src = img.currentSrc || img.src;
    const inText = article.contains(img) && !img.closest(".chapter-opening, .sd-card, nav");
    const alt = (img.getAttribute("alt") || "").trim();
    const figure = img.closest("figure");
    const caption = figure && figure.querySelector("figcaption");
    images.push({
      src, where: describe(img), loaded: img.complete && img.naturalWidth > 0, inText,
      // An alt that is the file's own path (what a notebook output gets by default) says nothing.
      alt: alt !== "" && !/\.(png|jpe?g|gif|svg|webp)$/i.test(alt) && !alt.includes("_images/"),
      caption: Boolean(caption && caption.textContent.trim()),
    });
  }

  // Code and printed output: every line must fit the column, with no sideways scrolling
  // (wideCode). Where the style sheet lets long lines wrap, longCode lists the blocks whose
  // lines would not fit unwrapped: the test requires none at desktop widths.
  const wideCode = [];
  const longCode = [];
  let codeBlocks = 0;
  for (const pre of article.querySelectorAll("pre")) {
    if (!shown(pre)) continue;
    codeBlocks += 1;
    const longest = pre.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "");
    const where = (width) => `${describe(pre).split(":")[0]}: ${width} px in ${
      pre.clientWidth} px; longest line: ${longest.trim().slice(0, 60)}`;
    if (pre.scrollWidth > pre.clientWidth + SLACK) wideCode.push(where(pre.scrollWidth));
    const wrap = pre.style.whiteSpace;
    pre.style.whiteSpace = "pre";
    const unwrapped = pre.scrollWidth;
    pre.style.whiteSpace = wrap;
    if (unwrapped > pre.clientWidth + SLACK) longCode.push(where(unwrapped));
  }

  const links = [...document.querySelectorAll("a[href]")].map((a) => a.href);
  const ids = [...document.querySelectorAll("[id]")].map((el) => el.id);
  return {
    url: location.href, title: document.title, width: document.documentElement.clientWidth,
    pageWidth: document.documentElement.scrollWidth, equations, clipped, scrolled, rawTex,
    images,
    codeBlocks, wideCode, longCode, links, ids,
  };
}
