/**
 * How deeply JSON nests, measured without recursion, so that hostile input (`[[[[…]]]]` thousands
 * deep, a few KB) is refused before anything recursive touches it: JSON.stringify, a validator,
 * a BSON encoder would each overflow the stack (a 500) where these only count.
 */

/**
 * The nesting depth of JSON text (`1` for `{"a":1}`, `0` for a bare value), in one linear pass over
 * the brackets outside strings; it stops counting once past `stopAbove`. Text that is not JSON gets
 * some number: parsing it fails afterwards anyway.
 */
export function jsonTextDepth(text: string, stopAbove: number): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (inString) {
      if (ch === 0x5c) i++ // a backslash escapes the next character, a quote included
      else if (ch === 0x22) inString = false
    } else if (ch === 0x22) {
      inString = true
    } else if (ch === 0x7b || ch === 0x5b) {
      if (++depth > max && (max = depth) > stopAbove) return max
    } else if (ch === 0x7d || ch === 0x5d) {
      depth--
    }
  }
  return max
}

/**
 * The nesting depth of a value (objects and arrays), walked with a stack of its own; it stops once
 * past `stopAbove`, so a value that contains itself ends too.
 */
export function valueDepth(value: unknown, stopAbove: number): number {
  const pending: [unknown, number][] = [[value, 1]]
  let max = 0
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!
    if (current === null || typeof current !== 'object') continue
    if (depth > max && (max = depth) > stopAbove) return max
    for (const child of Object.values(current)) pending.push([child, depth + 1])
  }
  return max
}
