// Finds where JSON text first goes wrong, for messages V8 gives without a
// position (e.g. "Unexpected token 'x', ... is not valid JSON").

const WS = new Set([" ", "\t", "\n", "\r"]);
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// JSON forbids raw control characters in strings.
// deno-lint-ignore no-control-regex
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

/** The offset of the first syntax error in `text` (its length if cut short). */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const skip = () => {
    while (i < text.length && WS.has(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const match = (re: RegExp) => {
    re.lastIndex = i;
    if (!re.test(text)) fail();
    i = re.lastIndex;
  };
  const value = (): void => {
    skip();
    const c = text[i];
    if (c === "{") {
      i++;
      skip();
      if (text[i] === "}") return void i++;
      while (true) {
        skip();
        if (text[i] !== '"') fail();
        match(STRING);
        skip();
        if (text[i] !== ":") fail();
        i++;
        value();
        skip();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    } else if (c === "[") {
      i++;
      skip();
      if (text[i] === "]") return void i++;
      while (true) {
        value();
        skip();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    } else if (c === '"') match(STRING);
    else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      match(NUMBER);
    } else {
      for (const word of ["true", "false", "null"]) {
        if (text.startsWith(word, i)) return void (i += word.length);
      }
      fail();
    }
  };
  try {
    value();
    skip();
    return i < text.length ? i : text.length;
  } catch (at) {
    return Math.min(at as number, text.length);
  }
}
