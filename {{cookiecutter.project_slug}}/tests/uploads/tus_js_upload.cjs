"use strict";
// tus-js-client (npm) under Node, as a browser uses it, against a real `serve`: the upload is
// stopped half way, then a new Upload of the same file resumes it from the offset the server
// reports. Run by tests/uploads/test_scanning.py with NODE_PATH on the tests' npm cache; prints
// one JSON line: the upload's URL and the [method, Upload-Offset] of every request each sent.
const fs = require("node:fs");
const tus = require("tus-js-client");

const { TUS_ENDPOINT, TUS_FILE, TUS_API_KEY, TUS_CHUNK_SIZE } = process.env;
const size = fs.statSync(TUS_FILE).size;

function send(where, stopAt) {
  const requests = [];
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(fs.createReadStream(TUS_FILE), {
      ...where,
      chunkSize: Number(TUS_CHUNK_SIZE),
      retryDelays: null,
      storeFingerprintForResuming: false,
      headers: { Authorization: `Bearer ${TUS_API_KEY}` },
      metadata: { filename: "browser.txt", filetype: "text/plain" },
      onBeforeRequest: (request) => {
        requests.push([request.getMethod(), request.getHeader("Upload-Offset") ?? null]);
      },
      onChunkComplete: (_, sent) => {
        if (stopAt !== undefined && sent >= stopAt) {
          upload.abort().then(() => resolve({ url: upload.url, requests }), reject);
        }
      },
      onSuccess: () => resolve({ url: upload.url, requests }),
      onError: reject,
    });
    upload.start();
  });
}

(async () => {
  const first = await send({ endpoint: TUS_ENDPOINT }, size / 2);
  const resumed = await send({ uploadUrl: first.url });
  const report = { url: first.url, first: first.requests, resumed: resumed.requests };
  process.stdout.write(`${JSON.stringify(report)}\n`);
})().catch((error) => {
  process.stderr.write(`${error}\n`);
  process.exit(1);
});
