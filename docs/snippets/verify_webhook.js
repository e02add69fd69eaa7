// Verifying a keygate webhook in Node (its crypto module only). `secret` is the endpoint's
// `whsec_…`; the headers and the raw body (a Buffer) are as they arrived.
const crypto = require("node:crypto");

function verify(secret, id, timestamp, signature, body) {
  // Refuse replays: the timestamp must be within five minutes of now.
  const sent = Number.parseInt(timestamp, 10);
  if (!Number.isFinite(sent) || Math.abs(Date.now() / 1000 - sent) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  const expected = crypto.createHmac("sha256", key).update(signed).digest("base64");
  // Several signatures while a rolled secret's grace lasts: any may match.
  return signature.split(" ").some((candidate) => {
    if (!candidate.startsWith("v1,")) return false;
    const given = Buffer.from(candidate.slice(3));
    return given.length === expected.length && crypto.timingSafeEqual(given, Buffer.from(expected));
  });
}

module.exports = { verify };
