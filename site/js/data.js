// Loading site/data: the manifest and binary points first (enough to draw),
// titles next, URL + excerpt chunks only when a hover card asks for them.
// The format is written by knowledge_map/sitedata.py.

async function fetchOk(url, kind) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return kind === "json" ? response.json() : response.arrayBuffer();
}

/** manifest.json, resolved against base (the data folder URL, ending in "/"). */
export function loadManifest(base) {
  return fetchOk(base + "manifest.json", "json");
}

/** {n, x, y, topic}: Uint16Array coordinates (q / scale = map units) and Uint8Array topic codes. */
export async function loadPoints(base, manifest) {
  const p = manifest.points;
  const buffer = await fetchOk(base + p.file, "bin");
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
  const buffer = await fetchOk(base + k.file, "bin");
  if (buffer.byteLength !== k.bytes) throw new Error(`${k.file}: ${buffer.byteLength} bytes, expected ${k.bytes}`);
  return buffer;
}

export function loadJson(base, name) {
  return fetchOk(base + name, "json");
}

/** Fetches detail chunks (URL + excerpt) on demand, each at most once. */
export class Details {
  constructor(base, manifest) {
    this.base = base + manifest.details.dir + "/";
    this.rows = manifest.details.chunk_rows;
    this.chunks = new Map();
  }

  /** The chunk's promise for row (fetched now if it was not yet). */
  chunkOf(row) {
    const index = Math.floor(row / this.rows);
    if (!this.chunks.has(index)) {
      const name = String(index).padStart(5, "0") + ".json";
      const promise = fetchOk(this.base + name, "json");
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
