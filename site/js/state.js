// The page's one state object and its view. Every field the page keeps is
// declared here, with what it holds; the object is sealed, so a module that
// assigns a field not declared here fails loudly instead of adding it.
// Data text in it (titles, labels, questions) is shown as text only.
import { View } from "./view.js";

/** The map view (centre and zoom); modules change it and then ask for a frame. */
export const view = new View();

export const state = Object.seal({
  // ---- the map on show (data/index.json, then data/<id>/)
  maps: [], // the index's valid entries [{id, model, count}], in its order (maps.js listedMaps)
  map: null, // the entry on show
  base: "", // its data folder URL, "data/<id>/"
  manifest: null, // its manifest.json
  points: null, // {n, scale, x, y, topic} (data.js loadPoints)
  index: null, // hover lookup grid over the points (render.js buildIndex); null until built
  titles: null, // every title, in row order; null until fetched (after the first frame)
  folded: null, // lower-cased titles for search (search.js foldTitles)
  labels: null, // label levels (labels.json), null when there are none
  details: null, // URL and excerpt chunks, fetched on demand (data.js Details)
  world: null, // {xs, ys}: article positions in map units, for the heat layer and the focus
  lists: null, // each question's neighbour list (knowledge.bin, knowledge.js parseLists)

  // ---- quiz and estimate
  quiz: null, // the Quiz (quiz.js): questions, answers, current question, focus
  articles: null, // the estimate at every article (knowledge.js articleState)
  heatGrid: null, // the heat layer's raster of article values, [gy * n + gx]
  confidenceGrid: null, // share of the estimate that is evidence, not prior, same raster

  // ---- interaction
  hover: -1, // row under the mouse, -1 for none
  pinned: -1, // row whose card stays open (clicked, tapped or searched), -1 for none
  highlight: -1, // row found by search or picked to read next, -1 for none
  flying: false, // a fly-to animation is running
  lastPointer: null, // [clientX, clientY] of the last pointer move, for the readout after an answer
  layers: { points: true, density: true, heat: true, labels: true }, // layer switches
  placedLabels: [], // labels drawn in the last frame [{text, cell, size, x, y, box}] (labels.js placeLabels)
  labelLevel: null, // grid size n of the label level drawn in the last frame
  hashTimer: 0, // pending share-link update (setTimeout id)

  // ---- drawing
  dpr: 1, // device pixels per CSS pixel (at most 2)
  pointImage: null, // ImageData the points are rasterised into, the size of the point canvas
  pointBuffer: null, // the same pixels as packed RGBA (Uint32Array)
  palette: null, // packed RGBA colour per topic code (render.js packedPalette)
  densityCanvas: document.createElement("canvas"), // density layer, drawn once, scaled onto the map
  densityReady: false, // densityCanvas holds the layer
  heatCanvas: document.createElement("canvas"), // knowledge layer, redrawn after each answer
  renderQueued: false, // a frame is requested and not drawn yet

  // ---- measurements (tests and benchmarks read them)
  frameLog: [], // [{at, ms}] per drawn frame, the last 1,000 to 2,000
  firstRenderMs: null, // performance.now() when the first frame was drawn
});
