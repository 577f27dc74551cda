// Loading site/data: the manifest and binary points first (enough to draw),
// titles next, URL + excerpt chunks only when a hover card asks for them.
// The format is written by knowledge_map/sitedata.py. The manifest (and
// index.json) are fetched past the browser's cache; every other file as
// FILE?v=<manifest.build>, so a rebuilt map never meets a cached file of the
// map before it (new points with old titles).

async function fetchOk(url, kind, init = undefined) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return kind === "json" ? response.json() : response.arrayBuffer();
}

/** manifest.json, resolved against base (the data folder URL, ending in "/"); revalidated on every load. */
export function loadManifest(base) {
  return fetchOk(base + "manifest.json", "json", { cache: "no-cache" });
}

/** name as this build's file: name?v=<build> (a manifest without a build: name). */
export function versioned(name, manifest) {
  return manifest && manifest.build ? `${name}?v=${encodeURIComponent(manifest.build)}` : name;
}

/** {n, x, y, topic}: Uint16Array coordinates (q / scale = map units) and Uint8Array topic codes. */
export async function loadPoints(base, manifest) {
  const p = manifest.points;
  const buffer = await fetchOk(base + versioned(p.file, manifest), "bin");
  const n = manifest.count;
  if (buffer.byteLength !== p.bytes) throw new Error(`${p.file}: ${buffer.byteLength} bytes, expected ${p.bytes}`);
  return {
    n,
    scale: p.scale,
    x: new Uint16Array(buffer, p.x_offset, n),
    y: new Uint16Array(buffer, p.y_offset, n),
    topic: new Uint8Array(buffer, p.topic_offset, n),
  };
}

/** knowledge.bin as an ArrayBuffer (layout in manifest.knowledge; parsed by knowledge.js). */
export async function loadKnowledge(base, manifest) {
  const k = manifest.knowledge;
  const buffer = await fetchOk(base + versioned(k.file, manifest), "bin");
  if (buffer.byteLength !== k.bytes) throw new Error(`${k.file}: ${buffer.byteLength} bytes, expected ${k.bytes}`);
  return buffer;
}

/** A JSON file of this build (with its manifest), or index.json (without one: revalidated on every load). */
export function loadJson(base, name, manifest = null) {
  return manifest ? fetchOk(base + versioned(name, manifest), "json") : fetchOk(base + name, "json", { cache: "no-cache" });
}

/** Fetches detail chunks (URL + excerpt) on demand, each at most once. */
export class Details {
  constructor(base, manifest) {
    this.base = base + manifest.details.dir + "/";
    this.rows = manifest.details.chunk_rows;
    this.manifest = manifest;
    this.chunks = new Map();
  }

  /** The chunk's promise for row (fetched now if it was not yet). */
  chunkOf(row) {
    const index = Math.floor(row / this.rows);
    if (!this.chunks.has(index)) {
      const name = String(index).padStart(5, "0") + ".json";
      const promise = fetchOk(this.base + versioned(name, this.manifest), "json");
      promise.catch(() => this.chunks.delete(index));
      this.chunks.set(index, promise);
    }
    return this.chunks.get(index);
  }

  /** {url, excerpt} of row; url is null unless http(s). */
  async get(row) {
    const chunk = await this.chunkOf(row);
    const i = row - chunk.start;
    const url = chunk.url[i];
    return { url: typeof url === "string" && /^https?:\/\//i.test(url) ? url : null, excerpt: chunk.excerpt[i] || "" };
  }
}
