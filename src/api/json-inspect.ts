// Finds what a parsed JSON value holds that Postgres or V8 cannot take: text
// with U+0000 or a lone UTF-16 surrogate (`text` and `jsonb` refuse both),
// numbers that overflowed to Infinity (JSON.stringify would store null), and
// nesting beyond a bound. It walks with an explicit stack, never recursion, so
// a document nested thousands of levels deep cannot overflow ours.
import { bodyTooDeep, invalidNumber, invalidText } from '../errors.js'

export type JsonFlaw = { kind: 'text' | 'number' | 'depth'; path: string }

// A `u` regex sees a well-formed surrogate pair as one code point, so \p{Cs}
// matches only the lone ones. (String.prototype.isWellFormed is ES2024: not in
// this project's lib, though Node 20 has it.)
const LONE_SURROGATE = /\p{Cs}/u

/** True when Postgres can store the string as text. */
export function isStorableText(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s)
}

interface Frame {
  value: unknown
  /** 1 for the root; a child is one deeper than its container. */
  level: number
  parent?: Frame
  key?: string | number
}

const PLAIN_KEY = /^[A-Za-z0-9_-]{1,64}$/

function segment(key: string | number): string {
  if (typeof key === 'number') return `[${key}]`
  if (PLAIN_KEY.test(key)) return `.${key}`
  // JSON-escaped (so NUL and lone surrogates print as \u0000, \ud800) and cut short.
  return `[${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}]`
}

/** `body.metadata.tags[2]`: built only when a flaw is found. */
function pathOf(root: string, frame: Frame, key?: string): string {
  const parts: string[] = key === undefined ? [] : [segment(key)]
  for (let f: Frame | undefined = frame; f?.key !== undefined; f = f.parent) parts.push(segment(f.key))
  return root + parts.reverse().join('')
}

/**
 * The first flaw of `value`, or undefined. Containers nested more than
 * `maxDepth` levels (the root object is level 1) are a `depth` flaw; object
 * keys are checked like string values.
 */
export function inspectJson(value: unknown, root: string, maxDepth: number): JsonFlaw | undefined {
  const stack: Frame[] = [{ value, level: 1 }]
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const v = frame.value
    if (typeof v === 'string') {
      if (!isStorableText(v)) return { kind: 'text', path: pathOf(root, frame) }
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { kind: 'number', path: pathOf(root, frame) }
    } else if (Array.isArray(v)) {
      if (frame.level > maxDepth) return { kind: 'depth', path: pathOf(root, frame) }
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], level: frame.level + 1, parent: frame, key: i })
    } else if (v !== null && typeof v === 'object') {
      if (frame.level > maxDepth) return { kind: 'depth', path: pathOf(root, frame) }
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        if (!isStorableText(key)) return { kind: 'text', path: pathOf(root, frame, key) }
        stack.push({ value: (v as Record<string, unknown>)[key], level: frame.level + 1, parent: frame, key })
      }
    }
  }
  return undefined
}

/** The 400 problem for a flaw found with `maxDepth`. */
export function flawError(flaw: JsonFlaw, maxDepth: number) {
  switch (flaw.kind) {
    case 'text':
      return invalidText(flaw.path)
    case 'number':
      return invalidNumber(flaw.path)
    case 'depth':
      return bodyTooDeep(flaw.path, maxDepth)
  }
}
