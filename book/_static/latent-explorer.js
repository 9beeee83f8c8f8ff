/* The live latent-space explorer: a VAE's decoder run in the page, no kernel needed.
 *
 * Every element <div class="latent-explorer" data-model="NAME"> (files in
 * explorer/NAME/ beside this script) or data-manifest="URL" (relative to the page)
 * gets two views: drag a point over the plane of test codes and see E[x | z]; walk
 * between two test digits along the straight line and along slerp. The files are
 * written by tools/export_explorer.py: manifest.json (layer sizes, activations, the
 * plane, the codes) and the weights, little-endian, per layer: W (out, in) row by row,
 * then b (out). window.LatentExplorer = {load, decode, lerp, slerp, mount}.
 */
(function () {
  "use strict";
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const SCRIPT = document.currentScript ? document.currentScript.src : document.baseURI;
  const ACTIVATIONS = {relu: (v) => (v > 0 ? v : 0), sigmoid: (v) => 1 / (1 + Math.exp(-v)),
                       tanh: Math.tanh, identity: (v) => v};

  function half(bits) {  // an IEEE 754 binary16 number, exactly
    const sign = bits & 0x8000 ? -1 : 1, e = (bits >> 10) & 0x1f, f = bits & 0x3ff;
    if (e === 0) return sign * f * 2 ** -24;
    if (e === 31) return f ? NaN : sign * Infinity;
    return sign * (1 + f / 1024) * 2 ** (e - 15);
  }

  async function fetchOk(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response;
  }

  /* The manifest and the weights at manifestUrl: {manifest, layers: [{in, out, activation, W, b}]}. */
  async function load(manifestUrl) {
    const url = new URL(manifestUrl, document.baseURI);
    const manifest = await (await fetchOk(url)).json();
    const {file, dtype} = manifest.weights;
    const size = {float16: 2, float32: 4}[dtype];
    if (!size) throw new Error(`${url}: unknown weights dtype ${dtype}`);
    const view = new DataView(await (await fetchOk(new URL(file, url))).arrayBuffer());
    const numbers = new Float64Array(view.byteLength / size);
    for (let i = 0; i < numbers.length; i++) {
      numbers[i] = size === 2 ? half(view.getUint16(2 * i, true)) : view.getFloat32(4 * i, true);
    }
    let at = 0;
    const layers = manifest.layers.map((l) => ({...l, W: numbers.subarray(at, at += l.in * l.out),
                                                b: numbers.subarray(at, at += l.out)}));
    if (at !== numbers.length || layers[0].in !== manifest.latent_dim) {
      throw new Error(`${file}: ${numbers.length} numbers, the layers of ${url} need ${at}`);
    }
    return {manifest, layers};
  }

  /* E[x | z]: the dense layers applied to z (an array of latent_dim numbers), in float64. */
  function decode(model, z) {
    let h = Float64Array.from(z);
    for (const {in: n, out, W, b, activation} of model.layers) {
      const next = new Float64Array(out), f = ACTIVATIONS[activation];
      for (let o = 0; o < out; o++) {
        let s = b[o];
        for (let i = 0, row = o * n; i < n; i++) s += W[row + i] * h[i];
        next[o] = f(s);
      }
      h = next;
    }
    return h;
  }

  const lerp = (z0, z1, t) => z0.map((v, i) => (1 - t) * v + t * z1[i]);

  /* slerp(z0, z1; t) = sin((1 − t)ω)/sin ω · z0 + sin(tω)/sin ω · z1, cos ω = z0·z1 / (‖z0‖ ‖z1‖);
     linear where sin ω < 1e-7 (parallel or opposite codes), as in the chapter. */
  function slerp(z0, z1, t) {
    const dot = z0.reduce((s, v, i) => s + v * z1[i], 0);
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norm(z0) * norm(z1)))));
    if (Math.sin(omega) < 1e-7) return lerp(z0, z1, t);
    const a = Math.sin((1 - t) * omega) / Math.sin(omega), c = Math.sin(t * omega) / Math.sin(omega);
    return z0.map((v, i) => a * v + c * z1[i]);
  }

  const norm = (z) => Math.sqrt(z.reduce((s, v) => s + v * v, 0));
  const fmt = (v) => (v < 0 ? "−" : "+") + Math.abs(v).toFixed(2);
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };

  function drawImage(canvas, probs) {  // grey levels: 0 black, 1 white, as the chapter's figures
    const ctx = canvas.getContext("2d"), image = ctx.createImageData(canvas.width, canvas.height);
    probs.forEach((p, i) => {
      const v = Math.round(255 * Math.min(1, Math.max(0, p)));
      image.data.set([v, v, v, 255], 4 * i);
    });
    ctx.putImageData(image, 0, 0);
  }

  /* A square plot of the plane [−extent, extent]² with the test codes coloured by digit. */
  function makePlot(canvas, manifest, size = 300) {
    const m = {l: 38, r: 8, t: 8, b: 30}, inner = size - m.l - m.r, dpr = window.devicePixelRatio || 1;
    Object.assign(canvas, {width: Math.round(size * dpr), height: Math.round(size * dpr)});
    Object.assign(canvas.style, {width: `${size}px`, height: `${size}px`});
    const plot = {extent: manifest.plane.extent, canvas, base: null, frame: [m.l, m.t, inner, inner],
      x: (u) => m.l + (u + plot.extent) / (2 * plot.extent) * inner,
      y: (v) => m.t + (plot.extent - v) / (2 * plot.extent) * inner,
      fromClient(cx, cy) {  // client coordinates → plane coordinates, clamped to the plot
        const r = canvas.getBoundingClientRect(), e = plot.extent;
        const u = ((cx - r.left) * size / r.width - m.l) / inner * 2 * e - e;
        const v = e - ((cy - r.top) * size / r.height - m.t) / inner * 2 * e;
        return [Math.min(e, Math.max(-e, u)), Math.min(e, Math.max(-e, v))];
      },
      toClient(u, v) {
        const r = canvas.getBoundingClientRect();
        return {x: r.left + plot.x(u) * r.width / size, y: r.top + plot.y(v) * r.height / size};
      },
      begin() {  // the codes, circles and axes, drawn once per extent and then copied
        const ctx = canvas.getContext("2d");
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        if (plot.base && plot.base.extent === plot.extent) {
          ctx.putImageData(plot.base.pixels, 0, 0);
          return ctx;
        }
        const e = plot.extent, {points, labels} = manifest.codes;
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, size, size);
        ctx.globalAlpha = 0.5;
        points.forEach(([u, v], i) => {
          if (Math.abs(u) > e || Math.abs(v) > e) return;
          ctx.fillStyle = TAB10[labels[i] % 10];
          ctx.fillRect(plot.x(u) - 1, plot.y(v) - 1, 2, 2);
        });
        ctx.globalAlpha = 1;
        ctx.strokeStyle = "#000";
        ctx.setLineDash([2, 3]);
        for (const r of manifest.plane.prior_circles) {
          ctx.beginPath();
          ctx.arc(plot.x(0), plot.y(0), r * inner / (2 * e), 0, 2 * Math.PI);
          ctx.stroke();
        }
        ctx.setLineDash([]);
        ctx.strokeRect(...plot.frame);
        ctx.fillStyle = "#000";
        ctx.font = "10px sans-serif";
        const step = e <= 4 ? 1 : e <= 8 ? 2 : 5;
        for (let k = -Math.floor(e / step) * step; k <= e; k += step) {
          ctx.textAlign = "center";
          ctx.fillText(String(k).replace("-", "−"), plot.x(k), m.t + inner + 12);
          ctx.textAlign = "right";
          ctx.fillText(String(k).replace("-", "−"), m.l - 4, plot.y(k) + 3);
        }
        const [xlabel, ylabel] = manifest.plane.labels;
        ctx.textAlign = "center";
        ctx.fillText(xlabel, m.l + inner / 2, size - 4);
        ctx.fillText(ylabel, 10, m.t + inner / 2);
        plot.base = {extent: e, pixels: ctx.getImageData(0, 0, canvas.width, canvas.height)};
        return ctx;
      },
      marker(ctx, [u, v], shape = "ring") {
        ctx.strokeStyle = ctx.fillStyle = "#000";
        ctx.lineWidth = 2;
        ctx.beginPath();
        if (shape === "square") ctx.rect(plot.x(u) - 4, plot.y(v) - 4, 8, 8);
        else ctx.arc(plot.x(u), plot.y(v), shape === "ring" ? 6 : 4, 0, 2 * Math.PI);
        shape === "ring" ? ctx.stroke() : ctx.fill();
        ctx.lineWidth = 1;
      },
    };
    return plot;
  }

  /* Build both views inside element; resolves to the explorer's API (also element.latentExplorer). */
  async function mount(element) {
    const url = element.dataset.manifest ||
      new URL(`explorer/${element.dataset.model}/manifest.json`, SCRIPT).href;
    const model = await load(url);
    const {manifest} = model, {origin, axes} = manifest.plane;
    const [height, width] = manifest.image_shape.slice(-2);
    const toLatent = ([u, v]) => origin.map((o, j) => o + u * axes[0][j] + v * axes[1][j]);
    const toPlane = (z) => axes.map((a) => a.reduce((s, aj, j) => s + aj * (z[j] - origin[j]), 0));
    const image = () => el("canvas", {className: "lx-image", width, height});
    const key = el("p", {className: "lx-key"}, "digits: ",
      ...TAB10.map((c, k) => el("span", {style: `--lx-colour: ${c}`, textContent: String(k)})));

    // View 1: the point under the pointer, decoded.
    const plot = makePlot(el("canvas", {className: "lx-plot", tabIndex: 0,
                                        ariaLabel: "latent plane: drag the point or use the arrow keys"}), manifest);
    const pointImage = image(), pointText = el("p", {className: "lx-readout"});
    const api = {model, point: [0, 0], z: null, output: null, clientPoint: (u, v) => plot.toClient(u, v)};
    api.setPoint = (u, v) => {
      api.point = [u, v];
      api.z = toLatent(api.point);
      api.output = decode(model, api.z);
      drawImage(pointImage, api.output);
      plot.marker(plot.begin(), api.point);
      const [a, b] = manifest.plane.labels;
      pointText.textContent = `${a} = ${fmt(u)}, ${b} = ${fmt(v)}: decoded E[x | z]`;
      return api.output;
    };
    let dragging = false;
    const follow = (event) => api.setPoint(...plot.fromClient(event.clientX, event.clientY));
    plot.canvas.addEventListener("pointerdown", (event) => {
      dragging = true;
      try { plot.canvas.setPointerCapture(event.pointerId); } catch (_) { /* synthetic events */ }
      follow(event);
    });
    plot.canvas.addEventListener("pointermove", (event) => dragging && follow(event));
    for (const type of ["pointerup", "pointercancel"]) {
      plot.canvas.addEventListener(type, () => { dragging = false; });
    }
    plot.canvas.addEventListener("keydown", (event) => {
      const d = event.shiftKey ? 0.5 : 0.1, e = plot.extent;
      const move = {ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, d], ArrowDown: [0, -d]}[event.key];
      if (!move) return;
      event.preventDefault();
      api.setPoint(...api.point.map((p, i) => Math.min(e, Math.max(-e, p + move[i]))));
    });

    // View 2: linear and spherical paths between two test digits.
    const walkPlot = makePlot(el("canvas", {className: "lx-plot"}), manifest, 260);
    const ends = manifest.endpoints;
    const choose = (selected) => el("select", {}, ...ends.map((e, i) => el("option",
      {value: i, selected: i === selected, textContent: `a ${e.label} (test image ${e.index})`})));
    const [from, to] = manifest.default_endpoints.map(choose);
    const t = el("input", {type: "range", min: 0, max: 1, step: 0.01, value: 0.5});
    const tText = el("span", {className: "lx-readout"});
    const images = {linear: image(), slerp: image()};
    const texts = {linear: el("p", {className: "lx-readout"}), slerp: el("p", {className: "lx-readout"})};
    api.setWalk = (i0, i1, tValue) => {
      [from.value, to.value, t.value] = [i0, i1, tValue];
      const [z0, z1] = [ends[i0].z, ends[i1].z], paths = {linear: lerp, slerp};
      const curves = Object.values(paths).map((f) => Array.from({length: 101}, (_, k) => toPlane(f(z0, z1, k / 100))));
      const far = Math.max(...curves.flat(2).map(Math.abs)) * 1.05;
      walkPlot.extent = Math.min(4 * manifest.plane.extent, Math.max(manifest.plane.extent, Math.ceil(far)));
      const ctx = walkPlot.begin();
      ctx.save();
      ctx.beginPath();
      ctx.rect(...walkPlot.frame);
      ctx.clip();  // a path may leave the plot: its norm is printed below the images
      curves.forEach((curve, k) => {
        ctx.setLineDash(k ? [5, 3] : []);
        ctx.beginPath();
        curve.forEach(([u, v], j) => (j ? ctx.lineTo : ctx.moveTo).call(ctx, walkPlot.x(u), walkPlot.y(v)));
        ctx.stroke();
      });
      ctx.setLineDash([]);
      api.walk = {from: i0, to: i1, t: tValue};
      tText.textContent = `t = ${tValue.toFixed(2)}`;
      Object.entries(paths).forEach(([name, f], k) => {
        const z = f(z0, z1, tValue), output = decode(model, z);
        api.walk[name] = {z, output};
        drawImage(images[name], output);
        walkPlot.marker(ctx, toPlane(z), k ? "square" : "dot");
        texts[name].textContent = `${name}${k ? " (dashed, ■)" : " (solid, ●)"}: ‖z‖ = ${norm(z).toFixed(2)}`;
      });
      ctx.restore();
      return api.walk;
    };
    const rewalk = () => api.setWalk(Number(from.value), Number(to.value), Number(t.value));
    for (const control of [from, to]) control.addEventListener("change", rewalk);
    t.addEventListener("input", rewalk);

    const panel = (...children) => el("div", {className: "lx-panel"}, ...children);
    element.replaceChildren(
      el("p", {className: "lx-caption"}, `Drag the point (or focus the plot and use the arrow keys): `,
         `the decoder of ${manifest.title}, running in this page. Dots: ${manifest.codes.what}.`),
      el("div", {className: "lx-row"}, panel(plot.canvas, key), panel(pointImage, pointText)),
      el("p", {className: "lx-caption"}, "Walk from one test digit to another, ",
         "along the straight line and along slerp; both decoded at the same t."),
      el("div", {className: "lx-controls"}, el("label", {}, "from ", from), el("label", {}, "to ", to),
         el("label", {}, t, " ", tText)),
      el("div", {className: "lx-row"}, panel(walkPlot.canvas),
         panel(images.linear, texts.linear), panel(images.slerp, texts.slerp)));
    api.canvases = {plot: plot.canvas, image: pointImage, walkPlot: walkPlot.canvas, ...images};
    api.controls = {from, to, t};
    api.setPoint(0, 0);
    rewalk();
    element.latentExplorer = api;
    element.dataset.state = "ready";
    return api;
  }

  function mountAll() {
    for (const element of document.querySelectorAll(".latent-explorer:not([data-state])")) {
      element.dataset.state = "loading";
      element.latentExplorerReady = mount(element).catch((error) => {
        element.dataset.state = "error";
        element.replaceChildren(el("p", {className: "lx-error"},
          `The live explorer could not load its data (${error.message}). `,
          "It is written when the book is built: python tools/export_explorer.py (make book runs it)."));
        throw error;
      });
      element.latentExplorerReady.catch(() => {});  // reported in the page, not as unhandled
    }
  }

  window.LatentExplorer = {load, decode, lerp, slerp, mount};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
