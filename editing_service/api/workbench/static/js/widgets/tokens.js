// Tokens shaded by a feature's activation: the reviewer sees WHERE a feature fires.
import { h } from "../dom.js";

/** A token as read: WordPiece's "##" continuation glued on, byte-level BPE's "Ġ"/"▁" as a space. */
export function tokenText(token) {
  if (token.startsWith("##")) return { text: token.slice(2), space: false };
  if (token.startsWith("Ġ") || token.startsWith("▁")) return { text: token.slice(1), space: true };
  return { text: token, space: true };
}

/** A line of tokens, each a span shaded by value / scale (scale: the largest value when not given). */
export function shadedTokens(tokens, values, { scale, peak } = {}) {
  const top = scale || Math.max(1e-9, ...values.map((v) => Math.abs(v)));
  const line = h("p", { class: "tokens" });
  tokens.forEach((token, i) => {
    const { text, space } = tokenText(token);
    const value = values[i] || 0;
    const alpha = Math.min(1, Math.abs(value) / top);
    if (space && i > 0) line.append(" ");
    const span = h("span", {
      class: `tok${value > 0 ? " on" : ""}${i === peak ? " peak" : ""}`,
      title: `${token}: ${value.toFixed(4)}`,
      dataset: { value: String(value) },
    }, text);
    if (value > 0) span.style.backgroundColor = `rgba(255, 140, 0, ${(0.12 + 0.88 * alpha).toFixed(3)})`;
    line.append(span);
  });
  return line;
}
