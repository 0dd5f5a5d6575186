// UTF-8 sizes, the unit of the pipeline loader's limit, without encoding the text.

/** UTF-8 length of a string (a lone surrogate counts as the 3 bytes of U+FFFD, as when encoded). */
export function byteLength(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** UTF-8 length of a CodeMirror `Text` as `toString()` would give it (lines joined by "\n"). */
export function textByteLength(doc) {
  let bytes = 0;
  for (const chunk of doc.iter()) bytes += byteLength(chunk);
  return bytes;
}
